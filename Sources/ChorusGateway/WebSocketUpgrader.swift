import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The WebSocket handshake (RFC 6455 4.2) for NIO's HTTP upgrade handler. Unlike NIO's own upgrader it
/// adds no frame handlers of its own: `upgradePipeline` installs the connection's whole WebSocket
/// pipeline (`WebSocketCodecHandler` and a session handler).
struct WebSocketUpgrader: HTTPServerProtocolUpgrader, Sendable {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    let supportedProtocol = "websocket"
    /// Headers the `Connection` header must name: none (the key and version are checked below).
    let requiredUpgradeHeaders: [String] = []
    /// Extra response headers to upgrade with, or nil to refuse (the request then stays HTTP).
    let shouldUpgrade: @Sendable (Channel, HTTPRequestHead) -> EventLoopFuture<HTTPHeaders?>
    let upgradePipeline: @Sendable (Channel, HTTPRequestHead) -> EventLoopFuture<Void>

    /// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
    static func accept(key: String) -> String {
        Data(Insecure.SHA1.hash(data: Array((key + guid).utf8))).base64EncodedString()
    }

    func buildUpgradeResponse(channel: Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders)
        -> EventLoopFuture<HTTPHeaders>
    {
        let keys = upgradeRequest.headers["Sec-WebSocket-Key"]
        guard keys.count == 1, upgradeRequest.headers["Sec-WebSocket-Version"] == ["13"] else {
            return channel.eventLoop.makeFailedFuture(NIOWebSocketUpgradeError.invalidUpgradeHeader)
        }
        return shouldUpgrade(channel, upgradeRequest).flatMapThrowing { extra in
            guard var headers = extra else { throw NIOWebSocketUpgradeError.unsupportedWebSocketTarget }
            headers.replaceOrAdd(name: "Upgrade", value: "websocket")
            headers.add(name: "Sec-WebSocket-Accept", value: Self.accept(key: keys[0]))
            headers.replaceOrAdd(name: "Connection", value: "upgrade")
            return headers
        }
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        upgradePipeline(context.channel, upgradeRequest)
    }
}
