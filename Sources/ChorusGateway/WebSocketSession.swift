import ChorusCore
import ChorusEngine
import Logging
import Metrics
import NIOCore
import Synchronization

/// What every WebSocket session needs from the node.
public final class SessionServices: Sendable {
    // One shared instance: every session handler holds a reference, not a copy (memory per connection).
    public let accounts: Accounts
    public let conversations: Conversations
    public let inboxes: InboxDirectory
    public let registry: SessionRegistry
    public let clock: any WallClock
    public let heartbeatMs: Int
    public let rateLimit: RateLimitSetting
    public let maxOutboundFrames: Int
    public let logger: Logger
    public let metrics: GatewayMetrics
    /// Set on a node of a cluster (typing reaches members on other nodes through it).
    let cluster: ClusterPeers?

    public init(
        accounts: Accounts, conversations: Conversations, inboxes: InboxDirectory, registry: SessionRegistry, clock: any WallClock,
        heartbeatMs: Int, rateLimit: RateLimitSetting, maxOutboundFrames: Int, logger: Logger, metrics: GatewayMetrics, cluster: ClusterPeers? = nil
    ) {
        self.cluster = cluster
        self.metrics = metrics
        self.accounts = accounts
        self.conversations = conversations
        self.inboxes = inboxes
        self.registry = registry
        self.clock = clock
        self.heartbeatMs = heartbeatMs
        self.rateLimit = rateLimit
        self.maxOutboundFrames = maxOutboundFrames
        self.logger = logger
    }
}

/// Close codes this server uses (RFC 6455 and PROTOCOL.md).
public enum CloseCode {
    public static let goingAway: UInt16 = 1001
    /// Broken RFC 6455 framing (`ServerWire.Failure.protocolError`).
    public static let protocolError: UInt16 = 1002
    public static let policyViolation: UInt16 = 1008
    public static let tooBig: UInt16 = 1009
    public static let tokenRevoked: UInt16 = 4001
    /// The session's outbound queue overflowed (a slow reader); reconnect and `sync`.
    public static let outboundOverflow: UInt16 = 4008
    /// The user moved to another node (a membership change): reconnect (to any node) and `sync`.
    public static let userMoved: UInt16 = 1012

    /// The code to answer a client's close frame with: its own when it is one that may be sent
    /// (RFC 6455 section 7.4), else 1000.
    static func echoing(_ code: UInt16) -> UInt16 {
        (1000...1003).contains(code) || (1007...1011).contains(code) || (3000...4999).contains(code) ? code : 1000
    }
}

/// One open session: the inbox listener and the writer of server frames. Thread-safe entry points hop
/// to the channel's event loop; frames written in one loop tick are flushed once.
public final class WebSocketSession: InboxListener, Sendable {
    public let userId: String
    public let sessionId: String
    public let tokenHash: TokenHash
    let outlet: SessionOutlet
    var eventLoop: any EventLoop { outlet.eventLoop }
    private let maxOutbound: Int
    private let state: NIOLoopBoundBox<OutboundState>
    /// Hops to the loop queued by other threads and not yet run (see `canRunInline`).
    private let hopsQueued = Atomic<Int>(0)

    struct OutboundState {
        var queued = 0
        var flushScheduled = false
        var closing = false
        /// Live entries held while a `sync` is being answered, so entries arrive in inboxSeq order.
        var syncing = false
        var held: [ByteBuffer] = []
    }

    private let delivered: Counter

    init(userId: String, sessionId: String, tokenHash: TokenHash, outlet: SessionOutlet, maxOutbound: Int, delivered: Counter) {
        self.delivered = delivered
        self.userId = userId
        self.sessionId = sessionId
        self.tokenHash = tokenHash
        self.outlet = outlet
        self.maxOutbound = maxOutbound
        state = NIOLoopBoundBox(OutboundState(), eventLoop: outlet.eventLoop)
    }

    public func deliver(inboxSeq: UInt64, entry: InboxEntry, message: MessageRecord?) {
        // Written straight into the buffer that is sent (one allocation a frame).
        let frame: ByteBuffer
        switch entry {
        case .message:
            guard let message else { return }
            frame = ServerWire.textFrame(capacity: ServerFrame.messageCapacity(message), allocator: allocator) {
                ServerFrame.message(message, inboxSeq: inboxSeq, into: &$0)
            }
            delivered.increment()
        case .receipt:
            frame = ServerWire.textFrame(capacity: ServerFrame.frameCapacity, allocator: allocator) {
                ServerFrame.receipt(entry, inboxSeq: inboxSeq, into: &$0)
            }
        }
        if canRunInline { deliverOnLoop(frame) } else { hop { $0.deliverOnLoop(frame) } }
    }

    private func deliverOnLoop(_ frame: ByteBuffer) {
        if state.value.syncing {
            state.value.held.append(frame)
            if state.value.held.count > maxOutbound { close(code: CloseCode.outboundOverflow) }
        } else {
            send(frame: frame)
        }
    }

    /// This session's buffer allocator. Any thread.
    var allocator: ByteBufferAllocator { outlet.allocator }

    /// True on the session's event loop when no hop from another thread is still queued: work may run
    /// at once and frames keep the order they were handed over in. Most frames start on the session's
    /// own loop (its reads, its loop's log commits), so they cost no task and no closure.
    private var canRunInline: Bool { eventLoop.inEventLoop && hopsQueued.load(ordering: .acquiring) == 0 }

    /// Runs `body` on the session's event loop, after every hop queued before it.
    private func hop(_ body: @escaping @Sendable (WebSocketSession) -> Void) {
        hopsQueued.add(1, ordering: .releasing)
        eventLoop.execute {
            body(self)
            self.hopsQueued.subtract(1, ordering: .releasing)
        }
    }

    /// Queues a text frame; flushes once per loop tick, or after the loop's commit that wrote it
    /// (`CommitDeferral`). Past the bound (NIO's 64 KiB write buffer, then
    /// `maxOutbound` frames) the session is closed (4008).
    func send(_ bytes: [UInt8]) {
        send(frame: ServerWire.frame(opcode: ServerWire.text, payload: bytes, allocator: allocator))
    }

    /// `send` of a whole server frame (`ServerWire.textFrame` or `ServerWire.frame`).
    func send(frame: ByteBuffer) {
        // After its close frame a session sends nothing more (RFC 6455 section 5.5.1), also while that
        // frame still waits behind a slow reader's backlog.
        guard !state.value.closing else { return }
        if outlet.isWritable && state.value.queued == 0 {
            // The common case: the socket keeps up, NIO's own buffer (64 KiB high-water mark) holds
            // this frame; no per-frame promise.
            outlet.writeText(frame: frame, promise: nil)
        } else {
            // Backpressure: count frames written past the high-water mark until they are out.
            state.value.queued += 1
            guard state.value.queued <= maxOutbound else {
                close(code: CloseCode.outboundOverflow)
                return
            }
            let promise = eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { _ in self.state.value.queued -= 1 }
            outlet.writeText(frame: frame, promise: promise)
        }
        if !state.value.flushScheduled {
            state.value.flushScheduled = true
            // With the loop's commits (`CommitDeferral`): right after the commit that wrote this frame.
            let flush: @Sendable () -> Void = {
                self.state.value.flushScheduled = false
                self.outlet.flush()
            }
            // The slot is the calling thread's, so only the session's own loop may hand it over.
            if !(eventLoop.inEventLoop && CommitDeferral.hand(flush)) { eventLoop.execute(flush) }
        }
    }

    /// Sends from any thread.
    func sendFromAnyThread(_ bytes: [UInt8]) {
        if canRunInline { send(bytes) } else { hop { $0.send(bytes) } }
    }

    /// Sends a whole server frame, from any thread.
    func sendFromAnyThread(frame: ByteBuffer) {
        if canRunInline { send(frame: frame) } else { hop { $0.send(frame: frame) } }
    }

    func beginSync() { state.value.syncing = true }

    /// Ends a sync: writes `synced`, then the live entries held meanwhile.
    func endSync(_ syncedFrame: [UInt8]) {
        send(syncedFrame)
        state.value.syncing = false
        let held = state.value.held
        state.value.held = []
        for f in held { send(frame: f) }
    }

    /// Sends a close frame with `code` and closes the connection. Idempotent.
    public func close(code: UInt16, reason: String = "") {
        eventLoop.execute {
            guard !self.state.value.closing else { return }
            self.state.value.closing = true
            self.outlet.close(code: code, reason: reason)
        }
    }

    /// How long a closing session waits for its close frame to be written.
    static let closeGrace = TimeAmount.seconds(30)
}

/// Open sessions: by token (a revoked token's sessions close at once, 4001), by user (typing), and
/// presence (`PresenceCore`, lazy: only watchers are told of changes).
public final class SessionRegistry: Sendable {
    struct State {
        var byToken: [TokenHash: [ObjectIdentifier: WebSocketSession]] = [:]
        var byUser: [String: [ObjectIdentifier: WebSocketSession]] = [:]
        var byID: [ObjectIdentifier: WebSocketSession] = [:]
        var presence = PresenceCore()
    }

    private let state = Mutex(State())
    private let clock: any WallClock
    /// A cluster's presence across nodes; nil on a single node.
    let cluster: ClusterPeers?

    public init(clock: any WallClock, cluster: ClusterPeers? = nil) {
        self.clock = clock
        self.cluster = cluster
    }

    public var openSessions: Int { state.withLock { $0.byID.count } }

    func add(_ s: WebSocketSession) {
        let id = ObjectIdentifier(s)
        let (change, targets) = state.withLock { st -> (PresenceCore.Change?, [WebSocketSession]) in
            st.byToken[s.tokenHash, default: [:]][id] = s
            st.byUser[s.userId, default: [:]][id] = s
            st.byID[id] = s
            let change = st.presence.opened(s.userId, now: clock.nowMs())
            return (change, change?.watchers.compactMap { st.byID[$0] } ?? [])
        }
        if let change { notify(change, targets) }
    }

    func remove(_ s: WebSocketSession) {
        let id = ObjectIdentifier(s)
        let (change, targets) = state.withLock { st -> (PresenceCore.Change?, [WebSocketSession]) in
            guard st.byID.removeValue(forKey: id) != nil else { return (nil, []) }
            st.byToken[s.tokenHash]?.removeValue(forKey: id)
            if st.byToken[s.tokenHash]?.isEmpty == true { st.byToken[s.tokenHash] = nil }
            st.byUser[s.userId]?.removeValue(forKey: id)
            if st.byUser[s.userId]?.isEmpty == true { st.byUser[s.userId] = nil }
            let change = st.presence.closed(s.userId, session: id, now: clock.nowMs())
            return (change, change?.watchers.compactMap { st.byID[$0] } ?? [])
        }
        if let change { notify(change, targets) }
    }

    /// Closes every session opened with this token.
    public func revoked(_ hash: TokenHash) {
        for s in state.withLock({ Array(($0.byToken[hash] ?? [:]).values) }) { s.close(code: CloseCode.tokenRevoked, reason: "token revoked") }
    }

    /// Closes the sessions of the users `select` picks (users a membership change moves away).
    public func close(usersWhere select: (String) -> Bool, code: UInt16, reason: String) {
        let picked = state.withLock { st in st.byUser.filter { select($0.key) }.flatMap { Array($0.value.values) } }
        for s in picked { s.close(code: code, reason: reason) }
    }

    /// Open sessions of a user.
    func sessions(of userId: String) -> [WebSocketSession] {
        state.withLock { Array(($0.byUser[userId] ?? [:]).values) }
    }

    /// Starts telling `session` about these users; sends their presence now. Users of other nodes:
    /// their owner is asked for the status now and tells this node of every change.
    func watch(_ session: WebSocketSession, users: [String]) {
        let now = clock.nowMs()
        let statuses = state.withLock { $0.presence.watch(ObjectIdentifier(session), users: users, now: now) }
        var elsewhere: [String] = []
        for (u, status) in statuses {
            if let cluster, !cluster.placement.isLocal(user: u) {
                elsewhere.append(u)
            } else {
                session.sendFromAnyThread(Self.frame(u, status))
            }
        }
        guard let cluster, !elsewhere.isEmpty else { return }
        Task {
            for (u, status) in await remotePresence(of: elsewhere, watch: true, cluster: cluster) { session.sendFromAnyThread(Self.frame(u, status)) }
        }
    }

    /// One user's status now.
    func status(_ userId: String) -> PresenceCore.Status {
        let now = clock.nowMs()
        return state.withLock { $0.presence.status(userId, now: now) }
    }

    /// Another node watches these users of this node: their status now.
    func watch(fromNode node: String, users: [String]) -> [(String, PresenceCore.Status)] {
        let now = clock.nowMs()
        return state.withLock { $0.presence.watch(fromNode: node, users: users, now: now) }
    }

    /// A user of another node changed: tell the sessions here that watch it.
    func remoteChange(_ userId: String, _ status: PresenceCore.Status) {
        let targets = state.withLock { st in st.presence.watchers(of: userId).compactMap { st.byID[$0] } }
        let frame = Self.frame(userId, status)
        for t in targets { t.sendFromAnyThread(frame) }
    }

    /// Presence as `GET /v1/presence` reports it (users of other nodes: asked of their owners).
    public func presence(of users: [String]) async -> [(userId: String, online: Bool, lastSeen: Int64)] {
        let now = clock.nowMs()
        var known = state.withLock { st in Dictionary(users.map { ($0, st.presence.status($0, now: now)) }, uniquingKeysWith: { a, _ in a }) }
        if let cluster {
            let elsewhere = users.filter { !cluster.placement.isLocal(user: $0) }
            if !elsewhere.isEmpty { for (u, s) in await remotePresence(of: elsewhere, watch: false, cluster: cluster) { known[u] = s } }
        }
        return users.map { u in (u, known[u]!.online, known[u]!.lastSeen) }
    }

    /// A local status change: this node's watchers, then the nodes watching.
    private func notify(_ change: PresenceCore.Change, _ targets: [WebSocketSession]) {
        let frame = Self.frame(change.userId, change.status)
        for t in targets { t.sendFromAnyThread(frame) }
        if !change.nodes.isEmpty, let cluster {
            for node in change.nodes { tellPresence(change.userId, change.status, to: node, cluster: cluster) }
        }
    }

    static func frame(_ userId: String, _ status: PresenceCore.Status) -> [UInt8] {
        ServerFrame.presence(userId: userId, online: status.online, lastSeen: status.lastSeen)
    }
}
