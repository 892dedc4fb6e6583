/// Writes one flat JSON object straight into bytes (RFC 8259 escaping: quote, backslash and control
/// characters; everything else passes through as UTF-8). Pure and allocation-light: server frames are
/// written tens of thousands of times a second.
public struct JSONObjectWriter: Sendable {
    public private(set) var bytes: [UInt8]
    private var empty = true

    public init(capacity: Int = 160) {
        bytes = []
        bytes.reserveCapacity(capacity)
        bytes.append(UInt8(ascii: "{"))
    }

    private mutating func key(_ name: String) {
        if !empty { bytes.append(UInt8(ascii: ",")) }
        empty = false
        Self.appendQuoted(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
    }

    public mutating func string(_ name: String, _ value: String) {
        key(name)
        Self.appendQuoted(value, to: &bytes)
    }

    /// A string value made of `text`, an ASCII `separator` and `number` in decimal (a message's
    /// `conversationId:seq`), written without building the string first.
    public mutating func string(_ name: String, _ text: String, _ separator: UInt8, _ number: some BinaryInteger) {
        precondition(separator >= 0x20 && separator < 0x7F && separator != UInt8(ascii: "\"") && separator != UInt8(ascii: "\\"))
        key(name)
        bytes.append(UInt8(ascii: "\""))
        Self.appendEscaped(text, to: &bytes)
        bytes.append(separator)
        DecimalDigits.append(number, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func integer(_ name: String, _ value: some BinaryInteger) {
        key(name)
        DecimalDigits.append(value, to: &bytes)
    }

    /// The finished object. Consuming: the writer's own buffer is closed and handed over, not copied.
    public consuming func finished() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    public static func appendQuoted(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        appendEscaped(s, to: &out)
        out.append(UInt8(ascii: "\""))
    }

    /// `s` as the inside of a JSON string: escaped, without the quotes.
    static func appendEscaped(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { utf8 in
            var plainFrom = 0
            for (i, b) in utf8.enumerated() where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                out.append(contentsOf: utf8[plainFrom..<i])
                plainFrom = i + 1
                out.append(UInt8(ascii: "\\"))
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(b)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                default: out.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
                }
            }
            out.append(contentsOf: utf8[plainFrom...])
        }
    }
}
