import Foundation

/// One re-engagement email as RFC 5322 text: headers (From, To, Subject, Date, Message-ID, MIME,
/// the RFC 8058 one-click unsubscribe pair) and a `multipart/alternative` body with a plain-text and
/// an HTML part. Pure. Header values are sanitised (no CR or LF can reach a header, so no input
/// adds one) and non-ASCII ones RFC 2047-encoded; the body is base64 (no line over 76 characters,
/// no dot-stuffing surprises).
public struct EmailMessage: Sendable, Equatable {
    public var from: String
    public var to: String
    public var subject: String
    public var dateMs: Int64
    public var messageId: String
    public var unsubscribeURL: String
    public var text: String
    public var html: String

    public init(from: String, to: String, subject: String, dateMs: Int64, messageId: String, unsubscribeURL: String, text: String, html: String) {
        self.from = from
        self.to = to
        self.subject = subject
        self.dateMs = dateMs
        self.messageId = messageId
        self.unsubscribeURL = unsubscribeURL
        self.text = text
        self.html = html
    }

    /// The message, lines ending in CRLF. `boundary` separates the parts (it must not occur in them;
    /// base64 bodies cannot contain its `=_` prefix).
    public func rendered(boundary: String = "=_chorus_alt") -> String {
        var lines = [
            "From: " + Self.header(from),
            "To: " + Self.header(to),
            "Subject: " + Self.header(subject),
            "Date: " + Self.rfc5322Date(dateMs),
            "Message-ID: " + Self.header(messageId),
            "MIME-Version: 1.0",
            "List-Unsubscribe: <" + Self.header(unsubscribeURL) + ">",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
            "",
            "--" + boundary,
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "",
        ]
        lines += Self.base64Lines(Array(text.utf8))
        lines += ["--" + boundary, "Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: base64", ""]
        lines += Self.base64Lines(Array(html.utf8))
        lines += ["--" + boundary + "--", ""]
        return lines.joined(separator: "\r\n")
    }

    /// A header value: control characters (CR and LF above all) become spaces; a value with
    /// non-ASCII characters is an RFC 2047 encoded word (UTF-8, base64).
    public static func header(_ value: String) -> String {
        let clean = String(value.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
        guard clean.unicodeScalars.contains(where: { $0.value > 0x7E }) else { return clean }
        // Encoded words of at most 45 bytes of input each (60 base64 characters).
        var words: [String] = []
        var chunk: [UInt8] = []
        for ch in clean {
            let bytes = Array(String(ch).utf8)
            if chunk.count + bytes.count > 45 {
                words.append("=?UTF-8?B?" + base64(chunk) + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?" + base64(chunk) + "?=") }
        return words.joined(separator: "\r\n ")
    }

    /// Standard base64 of `bytes` (MIME bodies, encoded words, SMTP AUTH).
    public static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    static func base64Lines(_ bytes: [UInt8]) -> [String] {
        let all = base64(bytes)
        var lines: [String] = []
        var start = all.startIndex
        while start < all.endIndex {
            let end = all.index(start, offsetBy: 76, limitedBy: all.endIndex) ?? all.endIndex
            lines.append(String(all[start..<end]))
            start = end
        }
        return lines
    }

    /// `Sun, 22 Nov 2026 10:51:33 +0000` for a Unix time in ms (UTC).
    public static func rfc5322Date(_ ms: Int64) -> String {
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let secondsOfDay = (ms / 1000) - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday
        let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(names[Int(weekday)]), \(day) \(months[Int(month - 1)]) \(year) "
            + "\(two(secondsOfDay / 3600)):\(two(secondsOfDay / 60 % 60)):\(two(secondsOfDay % 60)) +0000"
    }
}
