import NIOCore
import NIOHTTP1

/// Carries out `ConnectionDeadlines` on one HTTP connection: one scheduled close, moved as requests
/// and responses pass. Sits between the HTTP decoder and the upgrade handler; removed when the
/// connection becomes a WebSocket. Frames nothing.
final class ConnectionDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var rules: ConnectionDeadlines
    private var timer: Scheduled<Void>?

    init(headerTimeoutMs: Int64, idleTimeoutMs: Int64) {
        rules = ConnectionDeadlines(headerTimeoutMs: headerTimeoutMs, idleTimeoutMs: idleTimeoutMs)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { apply(rules.on(.opened), context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        apply(rules.on(.opened), context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: apply(rules.on(.head), context)
        case .end: apply(rules.on(.end), context)
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { apply(rules.on(.responded), context) }
        context.write(data, promise: promise)
    }

    private func apply(_ directive: ConnectionDeadlines.Timer, _ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        guard case .arm(let ms) = directive else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: .milliseconds(ms)) { channel.close(promise: nil) }
    }
}
