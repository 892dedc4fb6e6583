import ChorusCore
import ChorusEngine
import NIOCore

/// Frames only, for one WebSocket connection on this node: hands client frames to its
/// `SessionDriver`, answers pings, reports close, oversize and end of connection.
final class WebSocketSessionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketServerFraming.Message
    typealias OutboundOut = ByteBuffer

    private let driver: SessionDriver

    init(services: SessionServices, user: UserRecord, tokenHash: TokenHash) {
        driver = SessionDriver(services: services, user: user, tokenHash: tokenHash)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        driver.start(outlet: .channel(context.channel), watchSilence: true)
    }

    func handlerRemoved(context: ChannelHandlerContext) { driver.end() }

    func channelInactive(context: ChannelHandlerContext) {
        driver.end()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        driver.lastSeen = .now()
        let message = unwrapInboundIn(data)
        if driver.session?.isClosing ?? false {
            // The server sent its close frame: data is dropped; the client's close ends the connection.
            if case .close = message { context.close(promise: nil) }
            return
        }
        switch message {
        case .text(let bytes): driver.text(bytes)
        case .binary: driver.nonText()
        case .ping(let payload):
            driver.ping {
                guard context.channel.isWritable else { return }
                context.writeAndFlush(wrapOutboundOut(WebSocketServerFraming.frame(opcode: WebSocketServerFraming.pong, payload: payload, allocator: context.channel.allocator)), promise: nil)
            }
        case .pong: break
        case .close(let code): driver.clientClosed(code: code ?? 1000)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The codec refused the stream (1002) or a message over the limit (1009).
        if let failure = error as? WebSocketServerFraming.Failure, let session = driver.session {
            session.close(code: failure.closeCode, reason: failure.reason)
        } else {
            context.close(promise: nil)
        }
    }
}
