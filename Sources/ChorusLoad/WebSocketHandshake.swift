import Crypto
import Foundation
import Glibc

/// The client side of the RFC 6455 opening handshake over a blocking socket. On success the socket
/// holds nothing but WebSocket frames, ready to hand to NIO (`ClientBootstrap.withConnectedSocket`).
public enum WebSocketHandshake {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// The `Sec-WebSocket-Accept` value a server must return for `key` (RFC 6455 section 4.2.2).
    public static func acceptValue(forKey key: String) -> String {
        Data(Insecure.SHA1.hash(data: Data((key + guid).utf8))).base64EncodedString()
    }

    /// Connects, upgrades with a bearer token and verifies the `101` answer. Returns the socket.
    public static func open(host: String, port: Int, path: String = "/v1/ws", token: String) throws -> Int32 {
        let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer \(token)\r\n\r\n"
        let fd = try PlainHTTPClient.connect(host: host, port: port)
        do {
            try PlainHTTPClient.sendAll(fd, Array(request.utf8))
            let head = try PlainHTTPClient.parse(PlainHTTPClient.readHead(fd))
            guard head.status == 101 else {
                throw PlainHTTPClient.Failure(description: "WebSocket upgrade answered \(head.status)")
            }
            guard head.headers["sec-websocket-accept"] == acceptValue(forKey: key) else {
                throw PlainHTTPClient.Failure(description: "WebSocket upgrade: wrong Sec-WebSocket-Accept")
            }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }
}
