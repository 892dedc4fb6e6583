import ChorusCore
import ChorusEngine
import ChorusPeer
import NIOCore
import Synchronization

/// WebSocket connections on this node whose user is owned by another node: the session runs there;
/// this node relays the client's frames to it and its frames back. Bound: one entry per connection
/// (at most `--max-connections`).
final class ProxySessions: Sendable {
    private let handlers = Mutex<[UInt64: (owner: String, handler: NIOLoopBound<ProxySessionHandler>)]>([:])
    private let nextId = Atomic<UInt64>(1)
    let client: PeerClient
    let heartbeatMs: Int
    /// The session rate limit: control pings answered at the edge count against it here (text
    /// frames count on the owner).
    let rateLimit: RateLimitSetting

    init(client: PeerClient, heartbeatMs: Int, rateLimit: RateLimitSetting) {
        self.client = client
        self.heartbeatMs = heartbeatMs
        self.rateLimit = rateLimit
    }

    var count: Int { handlers.withLock { $0.count } }

    func makeHandler(owner: String, token: String) -> ProxySessionHandler {
        ProxySessionHandler(sessions: self, owner: owner, token: token, proxy: nextId.wrappingAdd(1, ordering: .relaxed).oldValue)
    }

    func add(_ h: ProxySessionHandler, on loop: any EventLoop) { handlers.withLock { $0[h.proxy] = (h.owner, NIOLoopBound(h, eventLoop: loop)) } }
    func remove(_ proxy: UInt64) { _ = handlers.withLock { $0.removeValue(forKey: proxy) } }

    /// Frames the owner pushed for one connection.
    func push(from owner: String, proxy: UInt64, frames: [[UInt8]]) {
        guard let entry = handlers.withLock({ $0[proxy] }), entry.owner == owner else { return }
        entry.handler.eventLoop.execute { entry.handler.value.write(frames) }
    }

    /// The owner closed the session.
    func closed(by owner: String, proxy: UInt64, code: UInt16, reason: String) {
        guard let entry = handlers.withLock({ $0[proxy] }), entry.owner == owner else { return }
        entry.handler.eventLoop.execute { entry.handler.value.closeFromOwner(code: code, reason: reason) }
    }

    /// This node stops: every relayed session closes with `code` (the owner's sessions end with them).
    func closeAll(code: UInt16, reason: String) {
        for (_, entry) in handlers.withLock({ $0 }) {
            entry.handler.eventLoop.execute { entry.handler.value.closeFromEdge(code: code, reason: reason) }
        }
    }

    /// The owner is unreachable: its relayed sessions close (1011); clients reconnect and `sync`.
    func ownerDown(_ owner: String) {
        for (_, entry) in handlers.withLock({ $0.filter { $0.value.owner == owner } }) {
            entry.handler.eventLoop.execute { entry.handler.value.closeFromOwner(code: 1011, reason: "the user's node is unreachable; reconnect and sync") }
        }
    }
}

/// Frames only, for one relayed WebSocket connection: client frames go to the owner as
/// `sessionFrame`, the owner's frames come back through `write`. Pings, close frames, oversize
/// and silence are handled here, where the socket is.
final class ProxySessionHandler: ChannelInboundHandler, HeartbeatWatched {
    typealias InboundIn = WebSocketServerFraming.Message
    typealias OutboundOut = ByteBuffer

    let owner: String
    let proxy: UInt64
    private let token: String
    private let sessions: ProxySessions
    private var context: ChannelHandlerContext?
    private var sweep: HeartbeatSweep?
    private var closing = false
    var lastSeen = NIODeadline.now()
    private var pings: TokenBucket

    init(sessions: ProxySessions, owner: String, token: String, proxy: UInt64) {
        pings = TokenBucket(rate: sessions.rateLimit.rate, burst: sessions.rateLimit.burst, nowMs: Self.nowMs)
        self.sessions = sessions
        self.owner = owner
        self.token = token
        self.proxy = proxy
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        sessions.add(self, on: context.eventLoop)
        let sweep = HeartbeatSweep.of(context.eventLoop, heartbeatMs: sessions.heartbeatMs)
        sweep.add(self)
        self.sweep = sweep
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        sessions.client.call(.session(.open(proxy: proxy, token: token)), to: owner) { result in
            guard case .failure(let refusal) = result else { return }
            bound.eventLoop.execute {
                let code: UInt16 = switch refusal {
                case .unauthorized: CloseCode.tokenRevoked
                case .rateLimited: CloseCode.policyViolation  // the user holds --max-sessions-per-user already
                default: 1011
                }
                bound.value.closeFromOwner(code: code, reason: refusal.message)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(tellOwner: true)
        self.context = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        end(tellOwner: true)
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastSeen = .now()
        let message = unwrapInboundIn(data)
        if closing {
            // This side sent its close frame: data is dropped; the client's close ends the connection.
            if case .close = message { context.close(promise: nil) }
            return
        }
        switch message {
        case .close(let code):
            // The owner's session ends; this side echoes the client's code (as a local session does).
            closeLocally(code: CloseCode.echoing(code ?? 1000), reason: "", tellOwner: true, echo: true)
        case .ping(let payload):
            // Counted like any frame; over the limit, or with the connection backed up, no pong.
            guard pings.take(nowMs: Self.nowMs) == .allowed, context.channel.isWritable else { return }
            context.writeAndFlush(wrapOutboundOut(WebSocketServerFraming.frame(opcode: WebSocketServerFraming.pong, payload: payload, allocator: context.channel.allocator)), promise: nil)
        case .pong:
            break
        case .text(let bytes):
            sessions.client.tell(.sessionFrame(proxy: proxy, text: true, bytes: bytes), to: owner)
        case .binary:
            sessions.client.tell(.sessionFrame(proxy: proxy, text: false, bytes: []), to: owner)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The codec refused the stream (1002) or a message over the limit (1009).
        if let failure = error as? WebSocketServerFraming.Failure {
            closeLocally(code: failure.closeCode, reason: failure.reason, tellOwner: true)
        } else {
            context.close(promise: nil)
        }
    }

    private static var nowMs: Int64 { Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000) }

    func silent() { closeLocally(code: CloseCode.goingAway, reason: "no frame for 2 x heartbeatMs", tellOwner: true) }

    /// The owner's frames for this client: written and flushed once. A client that does not read
    /// (NIO's 64 KiB buffer full) is closed with 4008, as on its owner.
    func write(_ frames: [[UInt8]]) {
        guard let context, !closing else { return }
        guard context.channel.isWritable else {
            return closeLocally(code: CloseCode.outboundOverflow, reason: "client too slow; reconnect and sync", tellOwner: true)
        }
        for f in frames {
            context.write(wrapOutboundOut(WebSocketServerFraming.frame(opcode: WebSocketServerFraming.text, payload: f, allocator: context.channel.allocator)), promise: nil)
        }
        context.flush()
    }

    func closeFromOwner(code: UInt16, reason: String) { closeLocally(code: code, reason: reason, tellOwner: false) }

    /// This node closes the session (it stops), and tells the owner.
    func closeFromEdge(code: UInt16, reason: String) { closeLocally(code: code, reason: reason, tellOwner: true) }

    private func closeLocally(code: UInt16, reason: String, tellOwner: Bool, echo: Bool = false) {
        guard let context, !closing else { return }
        closing = true
        end(tellOwner: tellOwner, code: code)
        WebSocketSession.closeHandshake(context.channel, code: code, reason: reason, echo: echo)
    }

    /// Leaves the table and the sweep; tells the owner once.
    private func end(tellOwner: Bool, code: UInt16 = 1001) {
        guard sweep != nil else { return }
        sweep?.remove(self)
        sweep = nil
        sessions.remove(proxy)
        if tellOwner { sessions.client.tell(.sessionClose(proxy: proxy, code: code, reason: ""), to: owner) }
    }
}
