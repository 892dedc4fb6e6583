import ChorusCore
/// Writes the members of one flat JSON object into any `ByteSink` (RFC 8259 escaping: quote,
/// backslash and control characters; everything else passes through as UTF-8). The output is passed
/// to each call, never held, so a buffer is written in place and never copied. Pure and
/// allocation-free: server frames are written tens of thousands of times a second, straight into
/// the buffer that is sent.
public struct JSONMembers: Sendable {
    @usableFromInline var empty = true

    /// Starts an object at the end of `out`.
    @inlinable public init(opening out: inout some ByteSink) { out.appendByte(UInt8(ascii: "{")) }

    /// Ends the object.
    @inlinable public func close(_ out: inout some ByteSink) { out.appendByte(UInt8(ascii: "}")) }

    @inlinable mutating func key(_ name: String, _ out: inout some ByteSink) {
        if !empty { out.appendByte(UInt8(ascii: ",")) }
        empty = false
        JSONText.appendQuoted(name, to: &out)
        out.appendByte(UInt8(ascii: ":"))
    }

    @inlinable public mutating func string(_ name: String, _ value: String, into out: inout some ByteSink) {
        key(name, &out)
        JSONText.appendQuoted(value, to: &out)
    }

    /// A string value made of `text`, an ASCII `separator` and `number` in decimal (a message's
    /// `conversationId:seq`), written without building the string first.
    @inlinable public mutating func string(_ name: String, _ text: String, _ separator: UInt8, _ number: some BinaryInteger, into out: inout some ByteSink) {
        precondition(separator >= 0x20 && separator < 0x7F && separator != UInt8(ascii: "\"") && separator != UInt8(ascii: "\\"))
        key(name, &out)
        out.appendByte(UInt8(ascii: "\""))
        JSONText.appendEscaped(text, to: &out)
        out.appendByte(separator)
        DecimalDigits.append(number, to: &out)
        out.appendByte(UInt8(ascii: "\""))
    }

    @inlinable public mutating func integer(_ name: String, _ value: some BinaryInteger, into out: inout some ByteSink) {
        key(name, &out)
        DecimalDigits.append(value, to: &out)
    }
}

/// `JSONMembers` writing into an array of its own.
public struct JSONObjectWriter: Sendable {
    public private(set) var bytes: [UInt8]
    private var members: JSONMembers

    public init(capacity: Int = 160) {
        bytes = []
        bytes.reserveCapacity(capacity)
        members = JSONMembers(opening: &bytes)
    }

    public mutating func string(_ name: String, _ value: String) { members.string(name, value, into: &bytes) }

    /// See `JSONMembers.string(_:_:_:_:into:)`.
    public mutating func string(_ name: String, _ text: String, _ separator: UInt8, _ number: some BinaryInteger) {
        members.string(name, text, separator, number, into: &bytes)
    }

    public mutating func integer(_ name: String, _ value: some BinaryInteger) { members.integer(name, value, into: &bytes) }

    /// The finished object. Consuming: the writer's own buffer is closed and handed over, not copied.
    public consuming func finished() -> [UInt8] {
        members.close(&bytes)
        return bytes
    }
}

/// JSON string escaping. Inlinable: specialized for the gateway's `ByteBuffer` where it is used.
public enum JSONText {
    @usableFromInline static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    @inlinable public static func appendQuoted(_ s: String, to out: inout some ByteSink) {
        out.appendByte(UInt8(ascii: "\""))
        appendEscaped(s, to: &out)
        out.appendByte(UInt8(ascii: "\""))
    }

    /// `s` as the inside of a JSON string: escaped, without the quotes.
    @inlinable static func appendEscaped(_ s: String, to out: inout some ByteSink) {
        var s = s
        s.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            var plainFrom = 0
            for (i, b) in utf8.enumerated() where b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                out.appendBytes(UnsafeRawBufferPointer(rebasing: raw[plainFrom..<i]))
                plainFrom = i + 1
                out.appendByte(UInt8(ascii: "\\"))
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.appendByte(b)
                case 0x0A: out.appendByte(UInt8(ascii: "n"))
                case 0x0D: out.appendByte(UInt8(ascii: "r"))
                case 0x09: out.appendByte(UInt8(ascii: "t"))
                case 0x08: out.appendByte(UInt8(ascii: "b"))
                case 0x0C: out.appendByte(UInt8(ascii: "f"))
                default:
                    for c in [UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]] { out.appendByte(c) }
                }
            }
            out.appendBytes(UnsafeRawBufferPointer(rebasing: raw[plainFrom...]))
        }
    }
}
