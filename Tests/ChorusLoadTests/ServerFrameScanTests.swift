import ChorusCore
import ChorusGateway
import ChorusLoad
import Testing

@Suite struct ServerFrameScanTests {
    func scan<T>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) -> T) -> T { bytes.withUnsafeBytes(body) }

    func value(_ key: String, _ bytes: [UInt8]) -> String? {
        scan(bytes) { b in
            ServerFrameScan.stringValue(Array("\"\(key)\":\"".utf8), in: b).map { String(decoding: b[$0], as: UTF8.self) }
        }
    }

    func object(_ members: [(String, String)]) -> [UInt8] {
        var w = JSONObjectWriter()
        for (k, v) in members { w.string(k, v) }
        w.integer("seq", 7)
        return w.finished()
    }

    @Test func readsTheKindOfEachFrame() {
        for (type, kind) in [("ack", ServerFrameScan.Kind.ack), ("message", .message), ("hello", .hello), ("error", .error), ("synced", .other), ("acks", .other)] {
            #expect(scan(object([("type", type)])) { ServerFrameScan.kind($0) } == kind)
        }
        #expect(scan(Array(#"{"seq":1}"#.utf8)) { ServerFrameScan.kind($0) } == .other)
    }

    @Test func aKeyQuotedInsideAStringIsNotAKey() {
        // The body holds the text of a member; escaped, it cannot match the pattern.
        let decoy = object([("type", "message"), ("body", #"x","clientMsgId":"evil"#)])
        #expect(value("clientMsgId", decoy) == nil)
        let real = object([("type", "message"), ("body", #"x","clientMsgId":"evil"#), ("clientMsgId", "run-1-5")])
        #expect(value("clientMsgId", real) == "run-1-5")
    }

    @Test func escapedValuesAreLeftToTheFullParser() {
        #expect(value("body", object([("body", "a\\b")])) == nil)
        #expect(value("body", object([("body", "tab\there")])) == nil)
        #expect(value("body", Array(#"{"body":"unterminated"#.utf8)) == nil)
    }

    /// On random objects the scan agrees with the full parser wherever it answers, and answers for
    /// every value that needs no escape.
    @Test func agreesWithFlatJSONOnRandomObjects() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("ab:-x0\"\\\u{1}é😀\",:{}")
        for _ in 0..<2_000 {
            let keys = ["type", "clientMsgId", "conversationId", "body"].shuffled(using: &rng).prefix(Int.random(in: 1...4, using: &rng))
            let members = keys.map { k in (k, String((0..<Int.random(in: 0...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })) }
            let bytes = object(members)
            let parsed = FlatJSON.parse(bytes)!
            for (k, v) in members {
                let plain = !v.utf8.contains { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 }
                let scanned = value(k, bytes)
                #expect(scanned == (plain ? v : nil))
                if let scanned { #expect(parsed.string(k) == scanned) }
            }
        }
    }

    @Test func decimalsAreDigitsOnlyAndBounded() {
        func dec(_ s: String) -> UInt64? { scan(Array(s.utf8)) { ServerFrameScan.decimal($0, 0..<$0.count) } }
        #expect(dec("0") == 0)
        #expect(dec("18446744073709551615") == UInt64.max)
        #expect(dec("18446744073709551616") == nil)
        #expect(dec("") == nil)
        #expect(dec("12a") == nil)
        #expect(dec("-1") == nil)
    }
}
