/// Reads the few fields the generator needs from a server frame by scanning its compact JSON, not
/// parsing it into a dictionary (about a tenth of the generator's CPU per message before).
///
/// Sound for any JSON object: the pattern `"name":` cannot occur inside a JSON string, where every
/// quote is escaped, and a string *value* is never followed by a colon; so a match is a key. A value
/// holding a backslash (an escape) is not decoded here: the scan answers nil (the generator's own
/// ids and bodies are plain ASCII, so the server never escapes them). Nested objects are not told
/// apart from the top level; server frames of the kinds read here (`ack`, `message`, `error`) are
/// flat.
public enum ServerFrameScan {
    public enum Kind: Equatable, Sendable { case hello, ack, message, error, other }

    static let typeKey = pattern("type")
    static let clientMsgIdKey = pattern("clientMsgId")
    static let conversationIdKey = pattern("conversationId")
    static let bodyKey = pattern("body")
    static let refKey = pattern("ref")
    static let codeKey = pattern("code")

    /// `"name":"`, the start of a string member.
    static func pattern(_ name: String) -> [UInt8] { Array("\"\(name)\":\"".utf8) }

    /// The frame's `type`; `.other` for any other value or none.
    public static func kind(_ b: UnsafeRawBufferPointer) -> Kind {
        guard let r = stringValue(typeKey, in: b) else { return .other }
        switch r.count {
        case 3 where matches(b, r, "ack"): return .ack
        case 5 where matches(b, r, "hello"): return .hello
        case 5 where matches(b, r, "error"): return .error
        case 7 where matches(b, r, "message"): return .message
        default: return .other
        }
    }

    /// The byte range of the string value of the member whose `"name":"` is `key`; nil when absent,
    /// unterminated, or escaped.
    public static func stringValue(_ key: [UInt8], in b: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let start = end(of: key, in: b) else { return nil }
        var i = start
        while i < b.count {
            switch b[i] {
            case UInt8(ascii: "\""): return start..<i
            case UInt8(ascii: "\\"): return nil
            default: i += 1
            }
        }
        return nil
    }

    /// Whether `b[r]` is exactly `s`.
    public static func matches(_ b: UnsafeRawBufferPointer, _ r: Range<Int>, _ s: StaticString) -> Bool {
        guard r.count == s.utf8CodeUnitCount else { return false }
        let p = s.utf8Start
        for (k, i) in r.enumerated() where b[i] != p[k] { return false }
        return true
    }

    /// Whether `b[r]` is exactly `bytes`.
    public static func matches(_ b: UnsafeRawBufferPointer, _ r: Range<Int>, _ bytes: [UInt8]) -> Bool {
        r.count == bytes.count && zip(r, bytes).allSatisfy { b[$0] == $1 }
    }

    /// The decimal number in `b[r]` (at least one digit, nothing else, no overflow).
    public static func decimal(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> UInt64? {
        guard !r.isEmpty else { return nil }
        var v: UInt64 = 0
        for i in r {
            let d = b[i] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1, !o2 else { return nil }
            v = s
        }
        return v
    }

    /// The index just past the first occurrence of `p` in `b`.
    static func end(of p: [UInt8], in b: UnsafeRawBufferPointer) -> Int? {
        guard let first = p.first, b.count >= p.count else { return nil }
        var i = 0
        let last = b.count - p.count
        outer: while i <= last {
            if b[i] == first {
                for k in 1..<p.count where b[i + k] != p[k] {
                    i += 1
                    continue outer
                }
                return i + p.count
            }
            i += 1
        }
        return nil
    }
}
