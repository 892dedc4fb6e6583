import ChorusCluster
import ChorusCore
import Logging
import Dispatch
import Synchronization


/// A send waiting for its turn on a conversation; `reply` runs once with the outcome, on any thread.
public struct SendRequest: Sendable {
    public var from: String
    public var clientMsgId: String
    public var body: String
    public var origin: ObjectIdentifier?
    /// The origin as it travels between nodes (`UserInbox.bits`); set from `origin` unless given.
    public var originBits: UInt64
    public var reply: @Sendable (Result<SentMessage, ChatError>) -> Void

    public init(
        from: String, clientMsgId: String, body: String, origin: ObjectIdentifier? = nil,
        reply: @escaping @Sendable (Result<SentMessage, ChatError>) -> Void
    ) {
        self.from = from
        self.clientMsgId = clientMsgId
        self.body = body
        self.origin = origin
        originBits = UserInbox.bits(origin)
        self.reply = reply
    }
}

/// One conversation. Decisions come from `ConversationCore`; each change is logged first. Sends and
/// membership changes are decided and their log records enqueued under the conversation's lock, so
/// seq order is LSN order; inbox entries are assigned on the log's completion path, in LSN order,
/// exactly as replay assigns them. The actor serializes the slower work (reads, history, read-backs).
public actor ConversationActor {
    public nonisolated let id: String
    /// The conversation's ring point: every record it logs names it.
    public nonisolated let point: UInt64
    /// The rules' state, the recent messages and the sends waiting on an in-flight id. Decisions (on
    /// the submitting thread) and durable applications (on the log's completion path) take it
    /// briefly; a log record is enqueued while it is held.
    private nonisolated let shared: Mutex<Shared>

    struct Shared: ~Copyable {
        var core: ConversationCore
        var recent = RecentMessages(capacity: 256)
        var waiters: [String: [@Sendable (Result<SentMessage, ChatError>) -> Void]] = [:]
    }

    /// What every conversation shares (one reference instead of four fields an actor).
    private nonisolated let context: ConversationContext
    private nonisolated var journal: any Journal { context.journal }
    private nonisolated var inboxes: InboxDirectory { context.inboxes }
    private nonisolated var clock: any WallClock { context.clock }
    private nonisolated var limits: ChatLimits { context.limits }
    public init(core: ConversationCore, context: ConversationContext) {
        id = core.id
        point = KeyPoint.of(id: core.id)
        shared = Mutex(Shared(core: core))
        self.context = context
    }

    public init(core: ConversationCore, journal: any Journal, inboxes: InboxDirectory, clock: any WallClock, limits: ChatLimits) {
        self.init(core: core, context: ConversationContext(journal: journal, inboxes: inboxes, clock: clock, limits: limits))
    }

    public nonisolated var snapshot: ConversationCore { shared.withLock { $0.core } }

    /// Messages held in memory now (the recent ring).
    public var cachedMessages: Int { shared.withLock { $0.recent.count } }

    /// Drops the caches of a conversation idle since `now - idleMs` (recent messages, dedup index)
    /// unless work is in flight; they are rebuilt from the log and the hashes when needed. Returns
    /// nil if it is busy, else whether anything was dropped.
    public func trimIfIdle(now: Int64, idleMs: Int64) -> Bool? {
        shared.withLock { s in
            guard Self.isQuiet(s, now: now, idleMs: idleMs) else { return nil }
            let had = s.recent.count > 0 || s.core.hasDedupIndex
            s.recent = RecentMessages(capacity: s.recent.capacity)
            s.core.dropCaches()
            return had
        }
    }

    /// No send in flight or waiting, and no activity since `now - idleMs`.
    nonisolated func isQuiet(now: Int64, idleMs: Int64) -> Bool { shared.withLock { Self.isQuiet($0, now: now, idleMs: idleMs) } }

    private static func isQuiet(_ s: borrowing Shared, now: Int64, idleMs: Int64) -> Bool {
        s.waiters.isEmpty && !s.core.hasSendsInFlight && now - s.core.lastActivity >= idleMs
    }

    public func isMember(_ userId: String) -> Bool { shared.withLock { $0.core.isMember(userId) } }

    /// Submits a send from any thread (a session's event loop) and returns at once; `reply` gets the
    /// outcome. The send is decided and its log record enqueued under the conversation's lock, so
    /// seq order is LSN order and sends submitted one after another keep their order, with no hop to
    /// the actor on the hot path. Only a repeat whose original must be read back goes to the actor.
    public nonisolated func submit(_ r: SendRequest, ignoringDedupHit: Bool = false) {
        let limits = self.limits
        let inboxes = self.inboxes
        let journal = self.journal
        let now = clock.nowMs()
        let repeatOf: UInt64? = shared.withLock { s in
            // Under the lock a hand-over's export reads the core under: a send is either refused
            // here or in flight (and settled) before the export.
            if let refusal = admission() { r.reply(.failure(refusal)); return nil }
            let decision = s.core.decideSend(
                from: r.from, clientMsgId: r.clientMsgId, body: r.body, limits: limits, ignoringDedupHit: ignoringDedupHit)
            switch decision {
            case .refused(let e):
                r.reply(.failure(e))
            case .duplicate(let seq):
                if let m = s.recent.message(seq: seq), m.clientMsgId == r.clientMsgId {
                    r.reply(.success(SentMessage(message: m, inboxSeq: 0, created: false)))
                } else {
                    return seq
                }
            case .inFlight:
                // Answered with the first one's outcome, as a repeat.
                s.waiters[r.clientMsgId, default: []].append { result in
                    r.reply(result.map { SentMessage(message: $0.message, inboxSeq: 0, created: false) })
                }
            case .append(let seq):
                let m = MessageRecord(
                    conversationId: id, seq: seq, from: r.from, body: r.body, ts: now,
                    clientMsgId: r.clientMsgId)
                let recipients = s.core.members
                let previous = s.core.previous(before: seq)
                let event = ChorusEvent.messageAppended(m)
                // Enqueued under the lock. A success completes later on the log's completion path; a
                // refusal may complete right here, so it is settled off this thread (no re-entry).
                journal.append(record: event.kind, payload: event.encode(), at: point) { [self] result in
                    switch result {
                    case .success(let lsn): durable(m, lsn: lsn, recipients: recipients, previous: previous, inboxes: inboxes, request: r)
                    case .failure(let error):
                        DispatchQueue.global().async { [self] in refused(m, error: error, reply: r.reply) }
                    }
                }
            }
            return nil
        }
        // A repeat of an older message: read it back (maybe from the log) on the actor, not here.
        if let seq = repeatOf { Task { await self.answerRepeat(r, seq: seq) } }
    }

    /// On the log's completion path (one at a time, in LSN order): the members' inbox entries (as
    /// replay assigns them), then the core, then the sender's ack and anyone waiting on the same id.
    /// `previous`: the seq each recipient's inbox holds before this one (0: unknown), for the gap check.
    private nonisolated func durable(
        _ m: MessageRecord, lsn: UInt64, recipients: [String], previous: UInt64, inboxes: InboxDirectory, request r: SendRequest
    ) {
        var senderSeq: UInt64 = 0
        // Members owned by other nodes get their entries through the fan-out (logged on their owner).
        var remote: [String: [(RemoteInboxItem, (@Sendable (Result<UInt64, ChatError>) -> Void)?)]] = [:]
        var senderIsRemote = false
        let placement = context.placement
        for member in recipients {
            guard placement.sharesInbox(user: member, with: m.conversationId) else {
                remote[placement.owner(ofUser: member), default: []].append(
                    (RemoteInboxItem(userId: member, message: m, origin: member == r.from ? r.originBits : 0, previous: previous), nil))
                if member == r.from { senderIsRemote = true }
                continue
            }
            let s = inboxes.inbox(member).append(
                .message(conversationId: m.conversationId, seq: m.seq), message: m, exceptBits: member == r.from ? r.originBits : 0)
            if member == r.from { senderSeq = s }
        }
        let waiting = shared.withLock { s in
            s.core.apply(m, lsn: lsn)
            s.recent.insert(m)
            return s.waiters.removeValue(forKey: m.clientMsgId) ?? []
        }
        for w in waiting { w(.success(SentMessage(message: m, inboxSeq: 0, created: false))) }
        guard senderIsRemote, let fanout = context.fanout else {
            for (node, items) in remote { context.fanout?.enqueue(items, to: node) }
            r.reply(.success(SentMessage(message: m, inboxSeq: senderSeq, created: true)))
            return
        }
        // The sender's entry is on its owner: the ack waits for its inboxSeq (or says unavailable;
        // the fan-out keeps trying and a retry of the send is answered from the dedup window).
        for (node, var items) in remote {
            if let i = items.firstIndex(where: { $0.0.userId == r.from }) {
                items[i].1 = { result in r.reply(result.map { SentMessage(message: m, inboxSeq: $0, created: true) }) }
            }
            fanout.enqueue(items, to: node)
        }
    }

    private nonisolated func refused(_ m: MessageRecord, error: any Error, reply: @Sendable (Result<SentMessage, ChatError>) -> Void) {
        let answer: Result<SentMessage, ChatError> = .failure(.unavailable("the log refused the message: \(error)"))
        let waiting = shared.withLock { s in
            s.core.sendFailed(clientMsgId: m.clientMsgId, seq: m.seq)
            return s.waiters.removeValue(forKey: m.clientMsgId) ?? []
        }
        reply(answer)
        for w in waiting { w(answer) }
    }

    /// A repeated id whose original is not in memory: read it back; a different id with the same
    /// 64-bit hash is no repeat and is sent after all.
    private func answerRepeat(_ r: SendRequest, seq: UInt64) {
        do {
            let original = try message(seq: seq)
            if original.clientMsgId == r.clientMsgId {
                r.reply(.success(SentMessage(message: original, inboxSeq: 0, created: false)))
            } else {
                submit(r, ignoringDedupHit: true)
            }
        } catch {
            r.reply(.failure(error))
        }
    }

    /// Sends a message: durable (per the log's mode) before this returns. `origin` is the sending
    /// session, which gets no live copy (it gets the `ack`). Decided before the first suspension, so
    /// calls made one after another keep their order.
    public func send(from: String, clientMsgId: String, body: String, origin: ObjectIdentifier? = nil) async throws(ChatError) -> SentMessage {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<SentMessage, ChatError>, Never>) in
            submit(SendRequest(from: from, clientMsgId: clientMsgId, body: body, origin: origin) { c.resume(returning: $0) })
        }
        return try result.get()
    }

    /// Records that `userId` read up to `seq` (logged first), then gives every other member a `read`
    /// receipt, assigned on the completion path in LSN order as replay assigns it. A read that moves
    /// nothing logs nothing.
    public func read(by userId: String, upTo seq: UInt64) async throws(ChatError) {
        let decided = shared.withLock { s -> Result<(target: UInt64, others: [String])?, ChatError> in
            if let refusal = admission() { return .failure(refusal) }
            return s.core.decideRead(by: userId, upTo: seq).map { target in
                guard let target else { return nil }
                s.core.applyRead(by: userId, upTo: target)
                return (target, s.core.members.filter { $0 != userId })
            }
        }
        guard let (target, others) = try decided.get() else { return }
        let inboxes = self.inboxes
        let event = ChorusEvent.readUpTo(userId: userId, conversationId: id, seq: target)
        let conversationId = id
        let context = self.context
        let result = await journal.appendInOrder([(event.kind, event.encode())], at: point) { _ in
            var remote: [String: [(RemoteInboxItem, (@Sendable (Result<UInt64, ChatError>) -> Void)?)]] = [:]
            for o in others {
                if context.placement.sharesInbox(user: o, with: conversationId) {
                    inboxes.inbox(o).append(.receipt(conversationId: conversationId, userId: userId, kind: .read, seq: target))
                } else {
                    let item = RemoteInboxItem(userId: o, entry: .receipt(conversationId: conversationId, from: userId, kind: .read, seq: target))
                    remote[context.placement.owner(ofUser: o), default: []].append((item, nil))
                }
            }
            for (node, items) in remote { context.fanout?.enqueue(items, to: node) }
        }
        if case .failure(let error) = result { throw .unavailable("the log refused the read: \(error)") }
    }

    /// A history page (PROTOCOL.md section 2) for a member.
    public func history(for userId: String, before: UInt64?, after: UInt64?, limit: Int) throws(ChatError) -> (messages: [MessageRecord], hasMore: Bool) {
        let (member, page) = shared.withLock { s -> (Bool, (seqs: ClosedRange<UInt64>?, hasMore: Bool)) in
            (s.core.isMember(userId), s.core.historyPage(before: before, after: after, limit: limit))
        }
        guard member else { throw .notMember }
        let (range, hasMore) = page
        guard let range else { return ([], false) }
        return (try range.map { seq throws(ChatError) in try message(seq: seq) }, hasMore)
    }

    /// Adds or removes a member, logged first. The caller has checked that `by` may do it.
    public func changeMember(_ userId: String, add: Bool, by: String) async throws(ChatError) -> ConversationCore {
        let now = clock.nowMs()
        let limit = limits.groupMembers
        // Applied at enqueue, so a send decided after this sees the new membership, as replay will.
        let event: ChorusEvent = add ? .memberAdded(conversationId: id, userId: userId, at: now) : .memberRemoved(conversationId: id, userId: userId, at: now)
        let journal = self.journal
        // Applied and enqueued under the lock sends are decided under: a send decided after this
        // sees the new membership and is logged after it, as replay will see them.
        let logged = await withCheckedContinuation { (c: CheckedContinuation<Result<Bool, ChatError>, Never>) in
            let decided = shared.withLock { s -> Result<Bool, ChatError> in
                if let refusal = admission() { return .failure(refusal) }
                guard s.core.isMember(by) else { return .failure(.notMember) }
                guard s.core.kind == .group else { return .failure(.badRequest("members of a direct conversation cannot change")) }
                if add {
                    guard !s.core.isMember(userId) else { return .success(false) }
                    guard s.core.members.count < limit else { return .failure(.groupTooLarge(limit: limit)) }
                    s.core.addMember(userId, at: now)
                } else {
                    guard s.core.mayRemove(userId, by: by) else { return .failure(.notOwner) }
                    guard s.core.isMember(userId) else { return .success(false) }
                    s.core.removeMember(userId, at: now)
                }
                journal.append(batch: [(event.kind, event.encode())], at: point) { result in
                    c.resume(returning: result.map { _ in true }.mapError { .unavailable("the log refused the change: \($0)") })
                }
                return .success(true)
            }
            if case .success(true) = decided { return }
            c.resume(returning: decided)
        }
        _ = try logged.get()
        return snapshot
    }

    /// A stored message by seq: from memory if recent, else read back from the log by its LSN.
    public func message(seq: UInt64) throws(ChatError) -> MessageRecord {
        let (cached, known) = shared.withLock { s -> (MessageRecord?, UInt64?) in
            if let m = s.recent.message(seq: seq) { return (m, nil) }
            return (nil, seq <= UInt64(Int.max) ? s.core.lsnIndex[Int(seq) - 1] : nil)
        }
        if let cached { return cached }
        guard let lsn = known else { throw .unavailable("message \(seq) is not durable yet") }
        guard let record = try? journal.read(from: lsn, limit: 1).first, record.lsn == lsn,
            let m = Self.stored(try? ChorusEvent.decode(kind: record.kind, payload: record.payload)), m.seq == seq
        else { throw .unavailable("message \(seq) could not be read back from the log") }
        return m
    }

    /// Why this node may not change the conversation now (a membership change), or nil.
    private nonisolated func admission() -> ChatError? {
        do throws(ChatError) {
            try context.placement.admit(conversation: id)
            return nil
        } catch {
            return error
        }
    }

    /// The message a record holds: one sent here, or one a hand-over brought.
    static func stored(_ event: ChorusEvent?) -> MessageRecord? {
        switch event {
        case .messageAppended(let m)?, .messageHandedIn(let m)?: m
        default: nil
        }
    }
}

/// The dependencies all conversation actors share.
public final class ConversationContext: Sendable {
    public let journal: any Journal
    public let inboxes: InboxDirectory
    public let clock: any WallClock
    public let limits: ChatLimits
    /// Who owns which member (a cluster); on one node every member is local.
    public let placement: PlacementCell
    /// Delivery to members owned by other nodes (nil on a single node).
    public let fanout: InboxFanout?

    public init(
        journal: any Journal, inboxes: InboxDirectory, clock: any WallClock, limits: ChatLimits,
        placement: PlacementCell = PlacementCell(.single("node1")), fanout: InboxFanout? = nil
    ) {
        self.placement = placement
        self.fanout = fanout
        self.journal = journal
        self.inboxes = inboxes
        self.clock = clock
        self.limits = limits
    }
}

/// A conversation's newest messages, at most `capacity`, in a ring (a dictionary costs several
/// times more per entry). Messages arrive in seq order; lookups scan at most `capacity` entries.
struct RecentMessages: Sendable {
    private var ring: [MessageRecord] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func insert(_ m: MessageRecord) {
        if ring.count < capacity {
            ring.append(m)
        } else {
            ring[next] = m
            next = (next + 1) % capacity
        }
    }

    func message(seq: UInt64) -> MessageRecord? { ring.last { $0.seq == seq } }

    var count: Int { ring.count }
}
