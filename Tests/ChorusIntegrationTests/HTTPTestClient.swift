import Foundation
import Glibc

/// A deliberately small HTTP/1.1 client over a real TCP socket (one request per connection), so
/// integration tests talk to the `chorus` binary exactly as any outside client would.
struct HTTPTestResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var text: String { String(decoding: body, as: UTF8.self) }
}

enum HTTPTestClient {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func request(
        port: Int, _ method: String, _ path: String, json: [String: Any]? = nil, token: String? = nil, rawBody: String? = nil
    ) throws -> HTTPTestResponse {
        var body = [UInt8]()
        if let json { body = [UInt8](try JSONSerialization.data(withJSONObject: json)) }
        if let rawBody { body = Array(rawBody.utf8) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        if !body.isEmpty { head += "Content-Type: application/json\r\n" }
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        head += "\r\n"
        let fd = try connect(port: port)
        defer { close(fd) }
        try sendAll(fd, Array(head.utf8) + body)
        return try parse(readAll(fd))
    }

    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw Failure(description: "connect to \(port): errno \(errno)")
        }
        return fd
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
            sent += n
        }
    }

    static func readAll(_ fd: Int32) throws -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return out }
            guard n > 0 else { throw Failure(description: "recv: errno \(errno)") }
            out += buf[0..<n]
        }
    }

    static func parse(_ raw: [UInt8]) throws -> HTTPTestResponse {
        let sep: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, raw.count - 3)).first(where: { Array(raw[$0..<$0 + 4]) == sep }) else {
            throw Failure(description: "no HTTP head in \(raw.count) bytes")
        }
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
        return HTTPTestResponse(status: status, headers: headers, body: body)
    }
}

/// A `chorus serve` process on a free port, stopped by PID at the end of the test.
final class ServerProcess {
    let child: Child
    let port: Int
    let data: String

    init(data: String, extra: [String] = []) throws {
        self.data = data
        child = try Child(
            ["serve", "--http", "127.0.0.1:0", "--data", data, "--insecure-fast-password-hash"] + extra,
            stderrPath: data + ".stderr.log")
        guard let line = child.readLine(), line.contains("listening on http://127.0.0.1:"),
            let port = Int(line.split(separator: ":")[2].prefix(while: { $0.isNumber }))
        else {
            child.kill()
            throw HTTPTestClient.Failure(description: "server did not report its port: \(child.wait().stderr)")
        }
        self.port = port
    }

    func request(_ method: String, _ path: String, json: [String: Any]? = nil, token: String? = nil) throws -> HTTPTestResponse {
        try HTTPTestClient.request(port: port, method, path, json: json, token: token)
    }

    /// SIGTERM and wait: returns the exit status and stderr.
    func stop() -> (status: Int32, stderr: String) {
        child.kill(SIGTERM)
        return child.wait()
    }

    /// SIGKILL and wait.
    func crash() {
        child.kill(SIGKILL)
        _ = child.wait()
    }
}
