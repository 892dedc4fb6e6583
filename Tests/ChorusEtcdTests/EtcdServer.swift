import Foundation
import Glibc

/// A real etcd (Debian's `etcd-server`) on free loopback ports with its own data directory,
/// stopped by PID when the test ends.
final class EtcdServer: @unchecked Sendable {
    let clientPort: Int
    let peerPort: Int
    let dataDir: String
    private var process: Process?

    var url: String { "http://127.0.0.1:\(clientPort)" }

    init() throws {
        clientPort = try Self.freePort()
        peerPort = try Self.freePort()
        dataDir = NSTemporaryDirectory() + "chorus-etcd-\(getpid())-\(clientPort)"
        try start()
    }

    static func binary() throws -> String {
        for path in ["/usr/bin/etcd", "/usr/local/bin/etcd"] where FileManager.default.isExecutableFile(atPath: path) { return path }
        throw Failure("etcd not found: `bash scripts/deps.sh --test` installs Debian's etcd-server")
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Self.binary())
        let peer = "http://127.0.0.1:\(peerPort)"
        p.arguments = [
            "--name", "test", "--data-dir", dataDir,
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "test=\(peer)", "--log-level", "error",
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        // Ready once it answers on its client port (it takes a few hundred ms to elect itself).
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if Self.answers(port: clientPort) { return }
            guard p.isRunning else { throw Failure("etcd exited with \(p.terminationStatus)") }
            usleep(20_000)
        }
        throw Failure("etcd did not become ready in 20 s")
    }

    /// SIGKILL, as a crash.
    func kill() {
        guard let p = process else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(atPath: dataDir)
    }

    /// True once `GET /health` answers `{"health":"true"}` (a raw socket: Foundation on Linux has no
    /// HTTP in `Data(contentsOf:)`).
    static func answers(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return false }
        let request = Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { return false }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            answer += buffer[..<n]
        }
        return String(decoding: answer, as: UTF8.self).contains("\"health\":\"true\"")
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw Failure("no free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
