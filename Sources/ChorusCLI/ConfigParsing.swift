/// Parsers for `chorus serve` option values. Pure; each error message says what was expected.
public enum ConfigParsing {
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// `10d`, `36h`, `15m`, `2s`, `500ms` (a whole number and one unit) to milliseconds.
    public static func durationMs(_ text: String) throws(Failure) -> Int64 {
        let units: [(String, Int64)] = [("ms", 1), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let digits = text.dropLast(suffix.count)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int64(digits), n > 0,
                n <= Int64.max / scale
            else { break }
            return n * scale
        }
        throw Failure("expected a duration such as 10d, 36h, 15m, 2s or 500ms, got '\(text)'")
    }

    /// `HOST:PORT` with a port in 1...65535 (0 allowed when `allowEphemeral`, for tests).
    public static func hostPort(_ text: String, allowEphemeral: Bool = true) throws(Failure) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":") else { throw Failure("expected HOST:PORT, got '\(text)'") }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]),
            port <= 65535, port >= (allowEphemeral ? 0 : 1)
        else { throw Failure("expected HOST:PORT with a port 1-65535, got '\(text)'") }
        return (host, port)
    }

    /// `ID@HOST:PORT`.
    public static func peer(_ text: String) throws(Failure) -> (id: String, host: String, port: Int) {
        guard let at = text.firstIndex(of: "@"), at != text.startIndex else { throw Failure("expected ID@HOST:PORT, got '\(text)'") }
        let (host, port) = try hostPort(String(text[text.index(after: at)...]), allowEphemeral: false)
        return (String(text[..<at]), host, port)
    }
}
