import ChorusLoad
import Foundation
import Glibc

/// Integration tests use the same small blocking client as `chorus load`.
typealias HTTPTestResponse = PlainHTTPResponse

enum HTTPTestClient {
    typealias Failure = PlainHTTPClient.Failure

    static func request(
        port: Int, _ method: String, _ path: String, json: [String: Any]? = nil, token: String? = nil, rawBody: String? = nil
    ) throws -> HTTPTestResponse {
        try PlainHTTPClient.request(port: port, method, path, json: json, token: token, rawBody: rawBody)
    }

    static func connect(port: Int) throws -> Int32 { try PlainHTTPClient.connect(port: port) }
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws { try PlainHTTPClient.sendAll(fd, bytes) }
    static func readAll(_ fd: Int32) throws -> [UInt8] { try PlainHTTPClient.readAll(fd) }
    static func parse(_ raw: [UInt8]) throws -> HTTPTestResponse { try PlainHTTPClient.parse(raw) }
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
