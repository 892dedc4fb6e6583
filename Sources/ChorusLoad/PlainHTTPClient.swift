import Foundation
import Glibc

/// One HTTP/1.1 response as read off the wire.
public struct PlainHTTPResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    public var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A deliberately small blocking HTTP/1.1 client over a real TCP socket, one request per connection.
/// Used by `chorus load` for set-up and by the integration tests, so both talk to the server exactly
/// as any outside client would. Every socket has a 10 s receive timeout: nothing here hangs forever.
public enum PlainHTTPClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Sends one request with `Connection: close` and reads the whole response.
    public static func request(
        host: String = "127.0.0.1", port: Int, _ method: String, _ path: String, json: [String: Any]? = nil,
        token: String? = nil, rawBody: String? = nil
    ) throws -> PlainHTTPResponse {
        var body = [UInt8]()
        if let json { body = [UInt8](try JSONSerialization.data(withJSONObject: json)) }
        if let rawBody { body = Array(rawBody.utf8) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        if !body.isEmpty { head += "Content-Type: application/json\r\n" }
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        head += "\r\n"
        let fd = try connect(host: host, port: port)
        defer { close(fd) }
        try sendAll(fd, Array(head.utf8) + body)
        return try parse(readAll(fd))
    }

    /// A connected blocking TCP socket with a 10 s receive timeout.
    public static func connect(host: String = "127.0.0.1", port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr(host)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let err = errno
            close(fd)
            throw Failure(description: "connect to \(host):\(port): errno \(err)")
        }
        return fd
    }

    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
            sent += n
        }
    }

    public static func readAll(_ fd: Int32) throws -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return out }
            guard n > 0 else { throw Failure(description: "recv: errno \(errno)") }
            out += buf[0..<n]
        }
    }

    /// Reads exactly one HTTP head (up to and including the blank line) and nothing after it, so the
    /// bytes that follow (a WebSocket's first frame) stay in the socket for whoever reads next.
    /// At most 16 KiB of head.
    static func readHead(_ fd: Int32) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let peeked = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_PEEK)) }
            guard peeked > 0 else { throw Failure(description: "connection closed during the HTTP head (errno \(errno))") }
            if let end = headEnd(buf[0..<peeked]) {
                let take = end + 4
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, take, Int32(MSG_WAITALL)) }
                guard n == take else { throw Failure(description: "short read of the HTTP head") }
                return Array(buf[0..<take])
            }
            guard peeked < buf.count else { throw Failure(description: "HTTP head over 16 KiB") }
            // The head is incomplete: wait for more bytes without busy-spinning.
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 10_000)
        }
    }

    static func headEnd(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= 4 else { return nil }
        let base = bytes.startIndex
        for i in base...(bytes.endIndex - 4)
        where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i - base
        }
        return nil
    }

    /// Parses a status line, headers and body (cut at Content-Length).
    public static func parse(_ raw: [UInt8]) throws -> PlainHTTPResponse {
        guard let end = headEnd(raw[...]) else { throw Failure(description: "no HTTP head in \(raw.count) bytes") }
        let lines = String(decoding: raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw Failure(description: "bad status line \(lines[0])") }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(raw[(end + 4)...])
        if let length = headers["content-length"].flatMap(Int.init), body.count > length { body = Array(body[..<length]) }
        return PlainHTTPResponse(status: status, headers: headers, body: body)
    }
}
