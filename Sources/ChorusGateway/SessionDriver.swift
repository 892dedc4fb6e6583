import ChorusCore
import ChorusEngine
import Foundation
import NIOCore

/// The rules of one WebSocket session, whatever carries its socket: decodes client frames, enforces
/// the per-session rate limit and the bad-frame rule, and hands work to the engine. Used by
/// `WebSocketSessionHandler` (a local socket) and `RemoteSessions` (a socket on a peer node, frames
/// relayed over the mesh). Confined to the session's event loop. No Task lives per session: one
/// exists only while a `send` or `sync` is being answered.
final class SessionDriver: HeartbeatWatched {
    /// Consecutive `bad_frame` errors after which the connection is closed with 1008.
    static let maxConsecutiveBadFrames = 20
    /// Inbox entries resolved per page while answering `sync`.
    static let syncPage = 256

    private let services: SessionServices
    let user: UserRecord
    private let tokenHash: TokenHash
    private(set) var session: WebSocketSession?
    private var bucket: TokenBucket
    private var badFrames = 0
    /// Every user the client asked to watch on this WebSocket, visible or not (at most `PresenceCore.maxWatchedPerSession`).
    private var watching: Set<String> = []
    /// When the client last sent a frame of any kind (the heartbeat sweep reads it).
    var lastSeen = NIODeadline.now()
    private var sweep: HeartbeatSweep?
    /// The inboxSeq in `hello`: later entries arrive live, earlier ones only by `sync`.
    private var liveFrom: UInt64 = 0
    /// A send to a user is looking up its conversation; `queuedSends` wait behind it (at most
    /// `maxQueuedSends`; the session's rate limit keeps it far below that).
    private var resolvingDirect = false
    private var queuedSends: [(SendRequest, ClientFrame.SendTarget)] = []
    static let maxQueuedSends = 1_024

    init(services: SessionServices, user: UserRecord, tokenHash: TokenHash) {
        self.services = services
        self.user = user
        self.tokenHash = tokenHash
        bucket = TokenBucket(rate: services.rateLimit.rate, burst: services.rateLimit.burst, nowMs: services.clock.nowMs())
    }

    /// Opens the session: registers it, attaches it to the inbox, says `hello`. `watchSilence`: this
    /// node sees the client's frames and closes the session when they stop (the edge node does it
    /// for a relayed session).
    func start(outlet: SessionOutlet, watchSilence: Bool) {
        let s = WebSocketSession(
            userId: user.userId, sessionId: Accounts.newID(prefix: "s"), tokenHash: tokenHash, outlet: outlet,
            maxOutbound: services.maxOutboundFrames, delivered: services.metrics.messagesDelivered)
        session = s
        services.registry.add(s)
        liveFrom = services.inboxes.inbox(user.userId).attach(s)
        s.send(ServerFrame.hello(userId: user.userId, sessionId: s.sessionId, inboxSeq: liveFrom, heartbeatMs: services.heartbeatMs))
        guard watchSilence else { return }
        let sweep = HeartbeatSweep.of(outlet.eventLoop, heartbeatMs: services.heartbeatMs)
        sweep.add(self)
        self.sweep = sweep
    }

    /// Called by the heartbeat sweep: nothing from the client for 2 x heartbeatMs.
    func silent() { session?.close(code: CloseCode.goingAway, reason: "no frame for 2 x heartbeatMs") }

    /// Leaves the heartbeat sweep and unregisters the session; safe to run twice (whichever comes first).
    func end() {
        sweep?.remove(self)
        sweep = nil
        guard let s = session else { return }
        session = nil
        services.inboxes.inbox(user.userId).detach(s)
        services.registry.remove(s)
    }

    /// The client's close frame: answered with `CloseCode.echoing` its code.
    func clientClosed(code: UInt16) { session?.close(code: CloseCode.echoing(code), echo: true) }

    /// A text frame from the client.
    func text(_ bytes: [UInt8]) {
        // A refused `send` names its clientMsgId (PROTOCOL.md: errors of a send carry `ref`), so the
        // client knows which message to retry; the frame is looked into only when it is refused.
        guard take(ref: { ClientFrameCodec.clientMsgId(in: bytes) }) else { return }
        handle(bytes)
    }

    /// A WebSocket ping: it costs a token like every other frame; the pong is written only if the
    /// connection can take it (a client that pings without reading gets no pongs queued up).
    func ping(pong: () -> Void) {
        guard take(ref: { nil }) else { return }
        pong()
    }

    /// A binary or other data frame: refused.
    func nonText() {
        guard take(ref: { nil }) else { return }
        badFrame(FrameError(message: "only JSON text frames are accepted"))
    }

    /// Every client frame costs one token; without one the frame is refused with `rate_limited`.
    private func take(ref: () -> String?) -> Bool {
        if case .limited(let ms) = bucket.take(nowMs: services.clock.nowMs()) {
            services.metrics.rateLimited.increment()
            session?.send(ServerFrame.error(.rateLimited(retryAfterMs: ms), ref: ref()))
            return false
        }
        return true
    }

    private func badFrame(_ e: FrameError) {
        badFrames += 1
        session?.send(ServerFrame.error(code: "bad_frame", message: e.message, ref: e.ref))
        if badFrames >= Self.maxConsecutiveBadFrames {
            session?.close(code: CloseCode.policyViolation, reason: "too many bad frames")
        }
    }

    private func handle(_ bytes: [UInt8]) {
        let frame: ClientFrame
        switch ClientFrameCodec.decode(bytes) {
        case .failure(let e):
            badFrame(e)
            return
        case .success(let f):
            frame = f
            badFrames = 0
        }
        guard let session else { return }
        let services = self.services
        let userId = user.userId
        switch frame {
        case .ping:
            session.send(ServerFrame.pong)
        case .send(let clientMsgId, let target, let body):
            if case .limited(let ms)? = services.userSends?.take(userId, nowMs: services.clock.nowMs()) {
                services.metrics.rateLimited.increment()
                return session.send(ServerFrame.error(.rateLimited(retryAfterMs: ms), ref: clientMsgId))
            }
            let received = ContinuousClock.now
            let request = SendRequest(from: userId, clientMsgId: clientMsgId, body: body, origin: ObjectIdentifier(session)) {
                [services] result in
                switch result {
                case .success(let sent):
                    let inboxSeq = sent.created ? sent.inboxSeq : services.inboxes.inbox(userId).seq(of: sent.message)
                    let m = sent.message
                    session.sendFromAnyThread(frame: WebSocketServerFraming.textFrame(capacity: ServerFrame.frameCapacity, allocator: session.allocator) {
                        ServerFrame.ack(m, inboxSeq: inboxSeq, into: &$0)
                    })
                    if sent.created { services.metrics.messagesAccepted.increment() }
                    services.metrics.ackLatency.recordNanoseconds(nanoseconds(ContinuousClock.now - received))
                case .failure(let e):
                    session.sendFromAnyThread(ServerFrame.error(e, ref: clientMsgId))
                }
            }
            submit(request, to: target, session: session)
        case .sync(let after):
            startSync(after: after, session: session)
        case .watch(let users):
            // At most 1,000 users over all of the session's watch frames, visible or not.
            let all = watching.union(users)
            guard all.count <= PresenceCore.maxWatchedPerSession else {
                return badFrame(FrameError(message: "a session watches at most \(PresenceCore.maxWatchedPerSession) users"))
            }
            watching = all
            // Only users who share a conversation with this user are watched; the others are
            // answered `unknown` once and never pushed (PROTOCOL.md section 6).
            Task {
                let visible = await services.conversations.visible(to: userId, among: users)
                session.eventLoop.execute {
                    for u in users where !visible.contains(u) { session.send(ServerFrame.presenceUnknown(userId: u)) }
                    services.registry.watch(session, users: users.filter(visible.contains))
                }
            }
        case .typing(let conversationId):
            Task {
                if let e = await services.typing(in: conversationId, by: userId) { session.sendFromAnyThread(ServerFrame.error(e)) }
            }
        case .read(let conversationId, let seq):
            Task {
                do {
                    try await services.conversations.read(conversationId, by: userId, upTo: seq)
                } catch let e as ChatError {
                    session.sendFromAnyThread(ServerFrame.error(e))
                } catch {}
            }
        case .received(let upTo):
            Task {
                do {
                    try await services.conversations.received(by: userId, upTo: upTo)
                } catch let e as ChatError {
                    session.sendFromAnyThread(ServerFrame.error(e))
                } catch {}
            }
        }
    }

    /// Hands a send to the engine in the order the client sent it. A send to a user first looks up (or
    /// creates) the pair's conversation, an actor call: sends after it wait here, on the loop, until it
    /// has been submitted. Past `maxQueuedSends` waiting, a send is refused with `unavailable`.
    private func submit(_ request: SendRequest, to target: ClientFrame.SendTarget, session: WebSocketSession) {
        if resolvingDirect {
            guard queuedSends.count < Self.maxQueuedSends else {
                request.reply(.failure(.unavailable("too many sends wait for a conversation lookup")))
                return
            }
            queuedSends.append((request, target))
            return
        }
        switch target {
        case .conversation(let id):
            // Queued here, on the event loop (to its actor or its owner node), so one session's
            // sends keep their order.
            services.conversations.submit(request, to: id)
        case .user(let to):
            resolvingDirect = true
            let services = self.services
            let userId = user.userId
            let me = NIOLoopBound(self, eventLoop: session.eventLoop)
            Task {
                let found: Result<String, ChatError>
                do {
                    found = .success(try await services.conversations.create(by: userId, members: [to], title: nil).0.id)
                } catch let e as ChatError {
                    found = .failure(e)
                } catch {
                    found = .failure(.unavailable("\(error)"))
                }
                session.eventLoop.execute {
                    switch found {
                    case .success(let id): services.conversations.submit(request, to: id)
                    case .failure(let e): request.reply(.failure(e))
                    }
                    me.value.resumeQueuedSends(session: session)
                }
            }
        }
    }

    /// On the loop, once a send to a user has been submitted: the sends that waited, in order.
    private func resumeQueuedSends(session: WebSocketSession) {
        resolvingDirect = false
        while !resolvingDirect, !queuedSends.isEmpty {
            let (request, target) = queuedSends.removeFirst()
            submit(request, to: target, session: session)
        }
    }

    private func startSync(after: UInt64, session: WebSocketSession) {
        session.beginSync()
        let request = SyncRequest(services: services, session: session, userId: user.userId, after: after, upTo: liveFrom)
        Task { await answerSyncRequest(request) }
    }

    struct SyncRequest: Sendable {
        let services: SessionServices
        let session: WebSocketSession
        let userId: String
        let after: UInt64
        let upTo: UInt64
    }

    fileprivate static func answerSync(_ r: SyncRequest) async {
        await answerSyncNow(services: r.services, session: r.session, userId: r.userId, after: r.after, upTo: r.upTo)
    }

    /// Sends every inbox entry in (after, upTo] page by page, then `synced`; live entries wait meanwhile.
    fileprivate static func answerSyncNow(services: SessionServices, session: WebSocketSession, userId: String, after: UInt64, upTo: UInt64) async {
        var cursor = after
        while cursor < upTo {
            let page = services.inboxes.inbox(userId).entries(after: cursor, limit: syncPage).filter { $0.seq <= upTo }
            guard let last = page.last else { break }
            let frames = await messageFrames(page, services: services)
            // One page at a time, written before the next is read: sync never floods the queue.
            try? await session.eventLoop.submit { for f in frames { session.send(f) } }.get()
            cursor = last.seq
        }
        let synced = ServerFrame.synced(inboxSeq: max(after, upTo))
        session.eventLoop.execute { session.endSync(synced) }
    }

    private static func messageFrames(_ page: [(seq: UInt64, entry: InboxEntry)], services: SessionServices) async -> [[UInt8]] {
        // One lookup per conversation per page (one request when it lives on another node).
        var wanted: [String: [UInt64]] = [:]
        for (_, entry) in page {
            if case .message(let conversationId, let mseq) = entry { wanted[conversationId, default: []].append(mseq) }
        }
        var found: [String: [UInt64: MessageRecord]] = [:]
        for (conversationId, seqs) in wanted {
            let messages = await services.conversations.messages(conversationId, seqs: seqs)
            found[conversationId] = Dictionary(messages.map { ($0.seq, $0) }, uniquingKeysWith: { a, _ in a })
        }
        var frames: [[UInt8]] = []
        for (seq, entry) in page {
            guard case .message(let conversationId, let mseq) = entry else {
                frames.append(ServerFrame.receipt(entry, inboxSeq: seq))
                continue
            }
            guard let m = found[conversationId]?[mseq] else { continue }
            frames.append(ServerFrame.message(m, inboxSeq: seq))
        }
        return frames
    }
}

private func answerSyncRequest(_ r: SessionDriver.SyncRequest) async {
    await SessionDriver.answerSync(r)
}

/// A duration in whole nanoseconds (for swift-metrics timers).
func nanoseconds(_ d: Duration) -> Int64 {
    d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
}
