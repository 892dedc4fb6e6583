import NIOCore

/// Frames only (`WebSocketClientFraming`): whole text messages go to the connection, pings are answered, a close
/// or a protocol error ends the channel. Bytes of a frame not yet complete wait in `pending`.
final class WebSocketClientFramingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The largest server message the generator accepts (a frame, or the fragments of one message).
    static let maxPayload = 1 << 20

    let connection: LoadConnection
    private var pending: ByteBuffer?
    private var fragments: ByteBuffer?

    init(connection: LoadConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var held = pending {
            pending = nil
            held.writeBuffer(&buffer)
            buffer = held
        }
        do {
            while context.channel.isActive, let frame = try WebSocketClientFraming.nextFrame(&buffer, maxPayload: Self.maxPayload) {
                try handle(frame, context: context)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            pending = buffer
        }
    }

    private func handle(_ frame: WebSocketClientFraming.Frame, context: ChannelHandlerContext) throws(WebSocketClientFraming.Failure) {
        switch frame.opcode {
        case WebSocketClientFraming.text:
            // A new message while one is still in fragments breaks RFC 6455 5.4.
            guard fragments == nil else { throw .interleavedMessage }
            if frame.fin { connection.receive(frame.payload) } else { fragments = frame.payload }
        case WebSocketClientFraming.continuation:
            guard var whole = fragments else { return }
            var part = frame.payload
            guard whole.readableBytes + part.readableBytes <= Self.maxPayload else {
                throw .tooLong(UInt64(whole.readableBytes + part.readableBytes))
            }
            whole.writeBuffer(&part)
            fragments = frame.fin ? nil : whole
            if frame.fin { connection.receive(whole) }
        case WebSocketClientFraming.ping:
            var pong = context.channel.allocator.buffer(capacity: frame.payload.readableBytes + 14)
            frame.payload.withUnsafeReadableBytes {
                WebSocketClientFraming.writeFrame(opcode: WebSocketClientFraming.pong, payload: $0, maskKey: connection.stats.nextMaskKey32(), into: &pong)
            }
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case WebSocketClientFraming.close:
            connection.serverClosed()
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.serverClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
