import ChorusCore
import ChorusGateway
import Foundation
import Testing

@Suite struct FlatJSONTests {
    @Test func readsTopLevelMembersAndValidatesTheRest() throws {
        let text = #"{"type":"message","inboxSeq":42,"seq":-7,"x":[1,{"a":"}"}],"o":{"k":[true]},"b":true,"n":null,"f":1.5e3,"body":"a:b","ids":["u1","u2"]}"#
        let v = try #require(FlatJSON.parse(Array(text.utf8)))
        #expect(v.string("type") == "message")
        #expect(v.integer("inboxSeq") == 42)
        #expect(v.integer("seq") == -7)
        #expect(v["x"] == .array([.integer(1), .other]))
        #expect(v["o"] == .other && v["b"] == .other && v["n"] == .other && v["f"] == .other)
        #expect(v.string("body") == "a:b")
        #expect(v["ids"] == .array([.string("u1"), .string("u2")]))
    }

    @Test func decodesEscapesLikeFoundation() throws {
        let text = #"{"s":"q\"b\\s\/n\nt\tu\u00e9p\ud83d\ude00"}"#
        let v = try #require(FlatJSON.parse(Array(text.utf8)))
        let foundation = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        #expect(v.string("s") == foundation["s"] as? String)
        #expect(v.string("s") == "q\"b\\s/n\nt\tu\u{e9}p\u{1F600}")
    }

    @Test func hugeIntegersAreNotIntegers() throws {
        let v = try #require(FlatJSON.parse(Array(#"{"a":99999999999999999999,"b":9223372036854775807}"#.utf8)))
        #expect(v["a"] == .other)
        #expect(v.integer("b") == Int64.max)
    }

    @Test(arguments: [
        #"{"a":1"#, #"{"a" 1}"#, "", "[]", #"{"a":"x}"#, #"{"a":tru}"#, #"{"a":1,}"#, #"{"a":"\u12"}"#, #"{"a":01}"#,
        #"{"a":1.}"#, #"{"a":-}"#, #"{"a":1e}"#, "{\"a\":\"tab\there\"}", #"{"a":"\q"}"#, #"{"a":1} x"#, #"{"a":[1,]}"#,
        #"{"a":{"b"}}"#, #"{a:1}"#,
    ])
    func rejectsMalformed(_ text: String) {
        #expect(FlatJSON.parse(Array(text.utf8)) == nil)
    }

    @Test func deepNestingIsRefusedNotACrash() {
        let deep = #"{"a":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(FlatJSON.parse(Array(deep.utf8)) == nil)
        let ok = #"{"a":"# + String(repeating: "[", count: 31) + String(repeating: "]", count: 31) + "}"
        #expect(FlatJSON.parse(Array(ok.utf8)) != nil)
    }
}

@Suite struct JSONObjectWriterTests {
    @Test func writesExactBytes() {
        var w = JSONObjectWriter()
        w.string("type", "ack")
        w.integer("seq", UInt64(12))
        w.integer("neg", -3)
        w.string("body", "a\"b\\c\n\u{01}\u{1F}é/")
        #expect(String(decoding: w.finished(), as: UTF8.self) == #"{"type":"ack","seq":12,"neg":-3,"body":"a\"b\\c\n\u0001\u001fé/"}"#)
        #expect(JSONObjectWriter().finished() == Array("{}".utf8))
    }

    @Test func writesATextAndANumberAsTheStringTheyMake() {
        for (text, number) in [("c_abcdefghijklm", UInt64(1042)), ("", 0), ("q\"\\\n", UInt64.max)] {
            var joined = JSONObjectWriter(), parts = JSONObjectWriter()
            joined.string("messageId", "\(text):\(number)")
            parts.string("messageId", text, UInt8(ascii: ":"), number)
            #expect(parts.finished() == joined.finished())
        }
        let m = MessageRecord(conversationId: "c_abcdefghijklm", seq: 7, from: "u", body: "", ts: 0, clientMsgId: "k")
        #expect(m.messageId == "c_abcdefghijklm:7")
    }

    @Test func everyStringRoundTripsThroughFoundationAndFlatJSON() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let scalars = (0..<Int.random(in: 0...24, using: &rng)).map { _ -> Character in
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: return Character(Unicode.Scalar(UInt8.random(in: 0..<0x20, using: &rng)))
                case 1: return ["\"", "\\", "/"].randomElement(using: &rng)!
                case 2: return Character(Unicode.Scalar(UInt32.random(in: 0x80...0xD7FF, using: &rng))!)
                default: return Character(Unicode.Scalar(UInt8.random(in: 0x20..<0x7F, using: &rng)))
                }
            }
            let s = String(scalars)
            var w = JSONObjectWriter()
            w.string("s", s)
            let bytes = w.finished()
            let foundation = try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
            #expect(foundation["s"] as? String == s)
            #expect(FlatJSON.parse(bytes)?.string("s") == s)
        }
    }
}
