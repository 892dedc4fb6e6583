/// One SMTP reply (RFC 5321 section 4.2): a code and its text lines. Pure.
public struct SMTPReply: Sendable, Equatable {
    public var code: Int
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    public var isPositive: Bool { (200..<400).contains(code) }
    public var isPermanent: Bool { code >= 500 }
    public var text: String { "\(code) " + lines.joined(separator: " / ") }

    /// EHLO keywords (upper-cased), from a 250 reply's lines after the first.
    public var extensions: Set<String> {
        Set(lines.dropFirst().compactMap { $0.split(separator: " ").first.map { $0.uppercased() } })
    }
}

/// Assembles replies from lines (`250-first`, `250-more`, `250 last`). Pure; bounded: at most
/// `maxLines` lines per reply. A malformed line is an error (the connection is dropped).
public struct SMTPReplyParser: Sendable {
    public enum Failure: Error, Equatable, Sendable {
        case malformed(String)
        case tooManyLines
    }

    public let maxLines: Int
    private var code: Int?
    private var lines: [String] = []

    public init(maxLines: Int = 128) { self.maxLines = maxLines }

    /// Feeds one line (without CRLF); returns a reply when the line ends one.
    public mutating func feed(_ line: String) throws(Failure) -> SMTPReply? {
        let bytes = Array(line.utf8)
        guard bytes.count >= 3, bytes[0...2].allSatisfy({ (0x30...0x39).contains($0) }), let c = Int(String(decoding: bytes[0...2], as: UTF8.self)),
            (200...599).contains(c)
        else { throw .malformed(line) }
        if let code, code != c { throw .malformed(line) }
        let separator = bytes.count > 3 ? bytes[3] : 0x20
        guard separator == 0x20 || separator == 0x2D else { throw .malformed(line) }
        guard lines.count < maxLines else { throw .tooManyLines }
        code = c
        lines.append(bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : "")
        guard separator == 0x20 else { return nil }
        defer {
            code = nil
            lines = []
        }
        return SMTPReply(code: c, lines: lines)
    }
}

/// The DATA payload of a message (RFC 5321 section 4.5.2): CRLF line ends, every line that starts
/// with a dot gets another, and the terminating `CRLF . CRLF`. Pure.
public func smtpDataPayload(_ message: String) -> [UInt8] {
    var out: [UInt8] = []
    let bytes = Array(message.utf8)
    out.reserveCapacity(bytes.count + 16)
    var atLineStart = true
    var i = 0
    while i < bytes.count {
        let b = bytes[i]
        if atLineStart && b == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
        if b == 0x0A && (i == 0 || bytes[i - 1] != 0x0D) { out.append(0x0D) }  // a bare LF becomes CRLF
        if b == 0x0D && (i + 1 >= bytes.count || bytes[i + 1] != 0x0A) {  // a bare CR becomes CRLF
            out += [0x0D, 0x0A]
            atLineStart = true
            i += 1
            continue
        }
        out.append(b)
        atLineStart = b == 0x0A
        i += 1
    }
    if !(out.count >= 2 && out[out.count - 2] == 0x0D && out[out.count - 1] == 0x0A) { out += [0x0D, 0x0A] }
    out += Array(".\r\n".utf8)
    return out
}
