import ChorusCore
import ChorusEngine
import NIOCore
import NIOWebSocket

/// Frames only, for one WebSocket connection on this node: hands client frames to its
/// `SessionDriver`, answers pings, reports close, oversize and end of connection.
final class WebSocketSessionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

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
        let frame = unwrapInboundIn(data)
        driver.lastSeen = .now()
        switch frame.opcode {
        case .connectionClose:
            let payload = frame.unmaskedData
            driver.clientClosed(code: payload.getInteger(at: payload.readerIndex, as: UInt16.self) ?? 1000)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            break
        case .text:
            driver.text(frame.unmaskedBytes)
        default:
            driver.nonText()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The aggregator refuses a reassembled message over the limit.
        if error is NIOWebSocketFrameAggregator.Error {
            driver.session?.close(code: CloseCode.tooBig, reason: "message over the frame limit")
        } else {
            context.close(promise: nil)
        }
    }
}

extension WebSocketFrame {
    /// The payload, unmasked, in one copy (`unmaskedData` copies into a new buffer first).
    var unmaskedBytes: [UInt8] {
        guard let key = maskKey else { return Array(data.readableBytesView) }
        return data.withUnsafeReadableBytes { raw in
            [UInt8](unsafeUninitializedCapacity: raw.count) { out, count in
                for i in 0..<raw.count { out[i] = raw[i] ^ key[i & 3] }
                count = raw.count
            }
        }
    }
}
