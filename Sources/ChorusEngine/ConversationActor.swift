import ChorusCore
import Logging
import Synchronization

/// A message with the sender's inbox entry for it (what an `ack` carries).
public struct SentMessage: Sendable, Equatable {
    public var message: MessageRecord
    /// The entry in the sender's own inbox; 0 when answered from the dedup window.
    public var inboxSeq: UInt64
    /// False when this was a repeat of an earlier `clientMsgId`.
    public var created: Bool
}

/// A send waiting for its turn on a conversation; `reply` runs once with the outcome, on any thread.
public struct SendRequest: Sendable {
    public var from: String
    public var clientMsgId: String
    public var body: String
    public var origin: ObjectIdentifier?
    public var reply: @Sendable (Result<SentMessage, ChatError>) -> Void

    public init(
        from: String, clientMsgId: String, body: String, origin: ObjectIdentifier? = nil,
        reply: @escaping @Sendable (Result<SentMessage, ChatError>) -> Void
    ) {
        self.from = from
        self.clientMsgId = clientMsgId
        self.body = body
        self.origin = origin
        self.reply = reply
    }
}

/// One conversation. Decisions come from `ConversationCore`; each change is logged first. The log
/// append is enqueued while still on this actor, so seq order is LSN order; inbox entries are
/// assigned on the log's completion path, in LSN order, exactly as replay assigns them.
public actor ConversationActor {
    public nonisolated let id: String
    private var core: ConversationCore
    /// What every conversation shares (one reference instead of four fields an actor).
    private let context: ConversationContext
    private var journal: any Journal { context.journal }
    private var inboxes: InboxDirectory { context.inboxes }
    private var clock: any WallClock { context.clock }
    private var limits: ChatLimits { context.limits }
    /// Sends waiting for the same clientMsgId that is being logged now.
    private var waiters: [String: [CheckedContinuation<SentMessage, any Error>]] = [:]
    /// The most recent messages, for duplicates and history without a log read (bounded).
    private var recent = RecentMessages(capacity: 256)
    /// Sends submitted from any thread, taken in arrival order (see `submit`).
    private nonisolated let intake = Mutex(Intake())

    struct Intake: ~Copyable {
        var queue: [SendRequest] = []
        var draining = false
    }

    /// At most this many sends wait in `intake`; past it a send is refused as `unavailable` (retry
    /// with the same clientMsgId).
    public static let intakeBound = 10_000

    public init(core: ConversationCore, context: ConversationContext) {
        id = core.id
        self.core = core
        self.context = context
    }

    public init(core: ConversationCore, journal: any Journal, inboxes: InboxDirectory, clock: any WallClock, limits: ChatLimits) {
        self.init(core: core, context: ConversationContext(journal: journal, inboxes: inboxes, clock: clock, limits: limits))
    }

    public var snapshot: ConversationCore { core }

    /// Messages held in memory now (the recent ring).
    public var cachedMessages: Int { recent.count }

    /// Drops the caches of a conversation idle since `now - idleMs` (recent messages, dedup index)
    /// unless work is in flight; they are rebuilt from the log and the hashes when needed. Returns
    /// whether it is now cold.
    public func trimIfIdle(now: Int64, idleMs: Int64) -> Bool {
        let busy = !waiters.isEmpty || intake.withLock { !$0.queue.isEmpty || $0.draining }
        guard !busy, now - core.lastActivity >= idleMs else { return false }
        recent = RecentMessages(capacity: recent.capacity)
        core.dropDedupIndex()
        return true
    }

    public func isMember(_ userId: String) -> Bool { core.isMember(userId) }

    /// Submits a send from any thread and returns at once; `reply` gets the outcome. Sends submitted
    /// one after another from one thread (a session's event loop) take seqs in that order: they are
    /// queued under a lock and started by one drain on this actor, each start (a `Task` created on the
    /// actor, which Swift enqueues on the actor in creation order) deciding its seq before it awaits.
    public nonisolated func submit(_ request: SendRequest) {
        let start = intake.withLock { i -> Bool? in
            guard i.queue.count < Self.intakeBound else { return nil }
            i.queue.append(request)
            if i.draining { return false }
            i.draining = true
            return true
        }
        switch start {
        case nil: request.reply(.failure(.unavailable("conversation \(id) has \(Self.intakeBound) sends waiting")))
        case true?: Task { await self.drainIntake() }
        case false?: break
        }
    }

    /// Starts every queued send in order. Runs on this actor and never awaits.
    private func drainIntake() {
        while true {
            let batch = intake.withLock { i -> [SendRequest] in
                if i.queue.isEmpty { i.draining = false }
                defer { i.queue = [] }  // an idle conversation keeps no queue storage
                return i.queue
            }
            if batch.isEmpty { return }
            for r in batch {
                Task {
                    do throws(ChatError) {
                        r.reply(.success(try await self.send(from: r.from, clientMsgId: r.clientMsgId, body: r.body, origin: r.origin)))
                    } catch {
                        r.reply(.failure(error))
                    }
                }
            }
        }
    }

    /// Sends a message: durable (per the log's mode) before this returns. `origin` is the sending
    /// session, which gets no live copy (it gets the `ack`).
    public func send(from: String, clientMsgId: String, body: String, origin: ObjectIdentifier? = nil) async throws(ChatError) -> SentMessage {
        var decision = core.decideSend(from: from, clientMsgId: clientMsgId, body: body, limits: limits)
        if case .duplicate(let seq) = decision {
            let original = try message(seq: seq)
            if original.clientMsgId == clientMsgId { return SentMessage(message: original, inboxSeq: 0, created: false) }
            // Another id with the same 64-bit hash: not a repeat.
            decision = core.decideSend(from: from, clientMsgId: clientMsgId, body: body, limits: limits, ignoringDedupHit: true)
        }
        switch decision {
        case .refused(let e):
            throw e
        case .duplicate:
            throw .unavailable("dedup decided twice")
        case .inFlight:
            do {
                var again = try await withCheckedThrowingContinuation { waiters[clientMsgId, default: []].append($0) }
                again.created = false
                again.inboxSeq = 0
                return again
            } catch let e as ChatError { throw e } catch { throw .unavailable("\(error)") }
        case .append(let seq):
            let m = MessageRecord(
                conversationId: id, seq: seq, messageId: "\(id):\(seq)", from: from, body: body, ts: clock.nowMs(),
                clientMsgId: clientMsgId)
            let recipients = core.members
            let inboxes = self.inboxes
            let event = ChorusEvent.messageAppended(m)
            // Enqueued while still on this actor; inbox entries assigned on the completion path.
            let outcome = await journal.appendInOrder([(event.kind, event.encode())]) { lsn in
                var senderSeq: UInt64 = 0
                for r in recipients {
                    let s = inboxes.inbox(r).append(
                        .message(conversationId: m.conversationId, seq: m.seq), message: m, except: r == from ? origin : nil)
                    if r == from { senderSeq = s }
                }
                return (lsn: lsn, senderInboxSeq: senderSeq)
            }
            switch outcome {
            case .success(let (lsn, senderInboxSeq)):
                core.apply(m, lsn: lsn)
                remember(m)
                let sent = SentMessage(message: m, inboxSeq: senderInboxSeq, created: true)
                for w in waiters.removeValue(forKey: clientMsgId) ?? [] { w.resume(returning: sent) }
                return sent
            case .failure(let error):
                core.sendFailed(clientMsgId: clientMsgId, seq: seq)
                let refusal = ChatError.unavailable("the log refused the message: \(error)")
                for w in waiters.removeValue(forKey: clientMsgId) ?? [] { w.resume(throwing: refusal) }
                throw refusal
            }
        }
    }

    /// Records that `userId` read up to `seq` (logged first), then gives every other member a `read`
    /// receipt, assigned on the completion path in LSN order as replay assigns it. A read that moves
    /// nothing logs nothing.
    public func read(by userId: String, upTo seq: UInt64) async throws(ChatError) {
        guard let target = try core.decideRead(by: userId, upTo: seq).get() else { return }
        core.applyRead(by: userId, upTo: target)
        let others = core.members.filter { $0 != userId }
        let inboxes = self.inboxes
        let event = ChorusEvent.readUpTo(userId: userId, conversationId: id, seq: target)
        let conversationId = id
        let result = await journal.appendInOrder([(event.kind, event.encode())]) { _ in
            for o in others {
                inboxes.inbox(o).append(.receipt(conversationId: conversationId, userId: userId, kind: .read, seq: target))
            }
        }
        if case .failure(let error) = result { throw .unavailable("the log refused the read: \(error)") }
    }

    /// A history page (PROTOCOL.md section 2) for a member.
    public func history(for userId: String, before: UInt64?, after: UInt64?, limit: Int) throws(ChatError) -> (messages: [MessageRecord], hasMore: Bool) {
        guard core.isMember(userId) else { throw .notMember }
        let (range, hasMore) = core.historyPage(before: before, after: after, limit: limit)
        guard let range else { return ([], false) }
        return (try range.map { seq throws(ChatError) in try message(seq: seq) }, hasMore)
    }

    /// Adds or removes a member, logged first. The caller has checked that `by` may do it.
    public func changeMember(_ userId: String, add: Bool, by: String) async throws(ChatError) -> ConversationCore {
        guard core.isMember(by) else { throw .notMember }
        guard core.kind == .group else { throw .badRequest("members of a direct conversation cannot change") }
        if add {
            guard !core.isMember(userId) else { return core }
            guard core.members.count < limits.groupMembers else { throw .groupTooLarge(limit: limits.groupMembers) }
        } else {
            guard core.isMember(userId) else { return core }
        }
        let now = clock.nowMs()
        let event: ChorusEvent = add ? .memberAdded(conversationId: id, userId: userId, at: now) : .memberRemoved(conversationId: id, userId: userId, at: now)
        // Applied at enqueue, so a send decided after this sees the new membership, as replay will.
        if add { core.addMember(userId, at: now) } else { core.removeMember(userId, at: now) }
        do {
            _ = try await journal.appendInOrder([(event.kind, event.encode())])
        } catch {
            throw .unavailable("the log refused the change: \(error)")
        }
        return core
    }

    /// A stored message by seq: from memory if recent, else read back from the log by its LSN.
    public func message(seq: UInt64) throws(ChatError) -> MessageRecord {
        if let m = recent.message(seq: seq) { return m }
        let index = Int(seq) - 1
        guard index >= 0, index < core.lsnBySeq.count else { throw .unavailable("message \(seq) is not durable yet") }
        let lsn = core.lsnBySeq[index]
        guard let record = try? journal.read(from: lsn, limit: 1).first, record.lsn == lsn,
            case .messageAppended(let m)? = try? ChorusEvent.decode(kind: record.kind, payload: record.payload), m.seq == seq
        else { throw .unavailable("message \(seq) could not be read back from the log") }
        return m
    }

    private func remember(_ m: MessageRecord) { recent.insert(m) }
}

/// The dependencies all conversation actors share.
public final class ConversationContext: Sendable {
    public let journal: any Journal
    public let inboxes: InboxDirectory
    public let clock: any WallClock
    public let limits: ChatLimits

    public init(journal: any Journal, inboxes: InboxDirectory, clock: any WallClock, limits: ChatLimits) {
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
