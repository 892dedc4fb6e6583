import ChorusCore
import NIOCore

/// Frames only: bytes from a client's socket in, `WebSocketServerFraming.Message`s out (server frames are
/// written as bytes, `WebSocketServerFraming.frame`, and pass it untouched). A stream that breaks RFC 6455 is
/// reported once as a `WebSocketServerFraming.Failure` through `errorCaught`, and nothing after it is read: the
/// session handler behind closes the connection with the failure's code.
final class WebSocketCodecHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = WebSocketServerFraming.Message

    private var parser: WebSocketServerFraming.Parser?

    init(maxMessageBytes: Int) {
        parser = WebSocketServerFraming.Parser(maxMessageBytes: maxMessageBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard parser != nil else { return }
        parser!.append(unwrapInboundIn(data))
        do {
            while let message = try parser!.next() {
                context.fireChannelRead(wrapInboundOut(message))
                guard parser != nil else { return }  // closed while handling it
            }
        } catch {
            parser = nil
            context.fireErrorCaught(error)
        }
        // No lock is held here: a commit handed to this loop may run now (see `readsPerCommit`).
        CommitDeferral.checkpoint(every: Self.readsPerCommit)
    }

    /// In a loop tick that reads many sockets (a backlog), the sends of this many reads are committed,
    /// acknowledged and delivered together, before the tick reads on; a smaller tick commits once.
    static let readsPerCommit = 16

    func channelInactive(context: ChannelHandlerContext) {
        parser = nil
        context.fireChannelInactive()
    }
}
