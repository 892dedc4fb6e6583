import ChorusCore
import Synchronization

extension RemoteInboxItem {
    var conversationId: String {
        switch entry {
        case .message(let m): m.conversationId
        case .receipt(let c, _, _, _): c
        }
    }

    var seq: UInt64 {
        switch entry {
        case .message(let m): m.seq
        case .receipt(_, _, _, let s): s
        }
    }

    /// Repeats are recognised per this key by the highest seq taken.
    var dedupKey: String {
        switch entry {
        case .message(let m): "\(userId) \(m.conversationId)"
        case .receipt(let c, let from, let kind, _): "\(userId) \(c) \(from) \(kind.rawValue)"
        }
    }

    var isMessage: Bool {
        if case .message = entry { return true }
        return false
    }

    var inboxEntry: InboxEntry {
        switch entry {
        case .message(let m): .message(conversationId: m.conversationId, seq: m.seq)
        case .receipt(let c, let from, let kind, let seq): .receipt(conversationId: c, userId: from, kind: kind, seq: seq)
        }
    }
}

/// The conversation owner's side of fan-out to other nodes' inboxes, one ordered queue per node.
///
/// Items for one node go in the order they were enqueued (the log's completion order), as batches:
/// one request in flight per node, everything queued meanwhile in the next one (group commit, across
/// the mesh). A batch that fails is retried, in order, after a backoff, so a node that comes back
/// gets everything; its owner drops repeats (`RemoteInboxWriter`). Bound: `maxQueued` items per
/// node; past it new items are dropped and counted (docs/CLUSTER.md: what is lost and how).
public final class InboxFanout: Sendable {
    public typealias Send = @Sendable (_ items: [RemoteInboxItem], _ node: String, _ reply: @escaping @Sendable (Result<[UInt64], ChatError>) -> Void) -> Void
    public typealias Sleep = @Sendable (_ ms: Int64) async -> Void

    struct Queue {
        var items: [(item: RemoteInboxItem, done: (@Sendable (Result<UInt64, ChatError>) -> Void)?)] = []
        var inFlight = false
        /// How many items at the head are in the request in flight (0 when none).
        var sending = 0
        var failures = 0
        /// Held back by `pause` until `resume` (leaders changed; a reconciliation follows).
        var paused = false
        /// Reconciliations running: nothing is sent until each has put what was missing in front.
        /// A count, not a flag: several may run for one node (a reconnection and a change of
        /// leaders), and a `resume` must not let a batch go while one of them is running.
        var reconciling = 0

        /// Whether a request may start now.
        var canStart: Bool { !inFlight && !paused && reconciling == 0 && !items.isEmpty }
    }

    public let maxQueued: Int
    public let maxBatch: Int
    private let queues = Mutex<[String: Queue]>([:])
    private let send: Send
    private let sleep: Sleep
    private let dropped = Atomic<Int>(0)
    /// Puts what `node` lacks of these members' conversations in front of its queue (up to each
    /// one's `lastSeq`); false when it could not. Set by the conversations (`onGap`).
    public typealias Repair = @Sendable (_ node: String, _ members: [RemoteMember]) async -> Bool
    let repair = Mutex<Repair?>(nil)

    public init(maxQueued: Int = 100_000, maxBatch: Int = 512, send: @escaping Send, sleep: @escaping Sleep) {
        self.maxQueued = maxQueued
        self.maxBatch = maxBatch
        self.send = send
        self.sleep = sleep
    }

    /// How entries a node answered `gap` get what precedes them (without one, they go again unchecked).
    public func onGap(_ repair: @escaping Repair) { self.repair.withLock { $0 = repair } }

    /// Items dropped at the bound since start.
    public var droppedItems: Int { dropped.load(ordering: .relaxed) }

    /// Batches an owner answered `gap` since start (each repaired before its entries went again).
    public var gapsAnswered: Int { gaps.load(ordering: .relaxed) }
    let gaps = Atomic<Int>(0)

    /// Items waiting, for every node (sent or not).
    public var queuedTotal: Int { queues.withLock { $0.values.reduce(0) { $0 + $1.items.count } } }

    /// Whether a request to `node` is in flight.
    public func isSending(_ node: String) -> Bool { queues.withLock { ($0[node]?.sending ?? 0) > 0 } }

    /// Items waiting for `node` (sent or not).
    public func queued(for node: String) -> Int { queues.withLock { $0[node]?.items.count ?? 0 } }

    /// Queues `items` for `node`; `done` (if any) hears the first delivery attempt's outcome for
    /// the item it is paired with (the sender's entry: its inboxSeq goes into the `ack`).
    public func enqueue(_ items: [(RemoteInboxItem, (@Sendable (Result<UInt64, ChatError>) -> Void)?)], to node: String) {
        var refused: [@Sendable (Result<UInt64, ChatError>) -> Void] = []
        let start = queues.withLock { qs -> Bool in
            var q = qs[node] ?? Queue()
            for (item, done) in items {
                if q.items.count >= maxQueued {
                    dropped.add(1, ordering: .relaxed)
                    if let done { refused.append(done) }
                } else {
                    q.items.append((item, done))
                }
            }
            let start = q.canStart
            if start { q.inFlight = true }
            qs[node] = q
            return start
        }
        for r in refused { r(.failure(.unavailable("fan-out queue for node \(node) is full"))) }
        if start { pump(node) }
    }

    /// Drops everything queued for `node` (it left the cluster): its users' new owners get what
    /// they miss by reconciliation. Waiting senders hear `unavailable`.
    public func discard(node: String) {
        let waiting = queues.withLock { qs in qs.removeValue(forKey: node)?.items.compactMap(\.done) ?? [] }
        for w in waiting { w(.failure(.unavailable("node \(node) left the cluster"))) }
    }

    /// Holds back what is queued for `nodes` (a membership change reconciles them before anything
    /// newer goes); `resume` lets each go again.
    public func pause(nodes: [String]) {
        queues.withLock { qs in for n in nodes { qs[n, default: Queue()].paused = true } }
    }

    public func resume(node: String) {
        let start = queues.withLock { qs -> Bool in
            guard var q = qs[node] else { return false }
            q.paused = false
            let start = q.canStart
            if start { q.inFlight = true }
            qs[node] = q
            return start
        }
        if start { pump(node) }
    }

    /// Removes queued items whose user `misplaced` says the queue's node no longer owns (a
    /// membership change moved it); the new owner gets them by reconciliation. Items in the request
    /// in flight stay (their node answers them). Waiting senders hear `unavailable`. Returns how many.
    @discardableResult
    public func purge(misplaced: (_ userId: String, _ node: String) -> Bool) -> Int {
        var waiting: [@Sendable (Result<UInt64, ChatError>) -> Void] = []
        var removed = 0
        queues.withLock { qs in
            for node in Array(qs.keys) {
                let q = qs[node]!
                let kept = q.items[q.sending...].filter { entry in
                    guard misplaced(entry.item.userId, node) else { return true }
                    if let done = entry.done { waiting.append(done) }
                    removed += 1
                    return false
                }
                qs[node]!.items = Array(q.items[..<q.sending]) + kept
            }
        }
        for w in waiting { w(.failure(.unavailable("the recipient moved to another node"))) }
        return removed
    }

    /// Sends the head of `node`'s queue (one request in flight per node).
    private func pump(_ node: String) {
        let batch = queues.withLock { qs -> [(item: RemoteInboxItem, done: (@Sendable (Result<UInt64, ChatError>) -> Void)?)] in
            guard let q = qs[node], !q.items.isEmpty, !q.paused, q.reconciling == 0 else {
                qs[node]?.inFlight = false
                return []
            }
            let batch = Array(q.items.prefix(maxBatch))
            qs[node]!.sending = batch.count
            return batch
        }
        guard !batch.isEmpty else { return }
        send(batch.map(\.item), node) { [self] result in
            switch result {
            case .success(let seqs):
                // The request's items are the queue's first `sending` (nothing is put before them
                // while they are in flight); each sender hears once, from the queue, not the batch:
                // items discarded meanwhile were answered already. Items answered `gap` stay at the
                // head, waiting (and their senders with them) for `repairGaps`.
                let (done, gaps) = queues.withLock { qs -> ([((@Sendable (Result<UInt64, ChatError>) -> Void)?, UInt64)], [RemoteMember]) in
                    guard var q = qs[node] else { return ([], []) }  // discarded meanwhile
                    let n = min(q.sending, q.items.count)
                    var done: [((@Sendable (Result<UInt64, ChatError>) -> Void)?, UInt64)] = []
                    var kept: [(item: RemoteInboxItem, done: (@Sendable (Result<UInt64, ChatError>) -> Void)?)] = []
                    var gaps: [RemoteMember] = []
                    for i in 0..<n {
                        let seq = i < seqs.count ? seqs[i] : 0
                        guard seq == RemoteInboxItem.gap else {
                            done.append((q.items[i].done, seq))
                            continue
                        }
                        let item = q.items[i].item
                        kept.append(q.items[i])
                        if !gaps.contains(where: { $0.userId == item.userId && $0.conversationId == item.conversationId }) {
                            gaps.append(RemoteMember(userId: item.userId, conversationId: item.conversationId, lastSeq: item.seq - 1))
                        }
                    }
                    q.items.replaceSubrange(0..<n, with: kept)
                    q.sending = 0
                    q.failures = 0
                    if !gaps.isEmpty { q.reconciling += 1 }
                    qs[node] = q
                    return (done, gaps)
                }
                for (d, seq) in done { d?(.success(seq)) }
                if !gaps.isEmpty { repairGaps(gaps, at: node) }
                pump(node)
            case .failure(let error):
                // Waiting senders hear now; the items stay, in order, and go again after a backoff.
                let (waiting, failures) = queues.withLock { qs -> ([@Sendable (Result<UInt64, ChatError>) -> Void], Int) in
                    var w: [@Sendable (Result<UInt64, ChatError>) -> Void] = []
                    guard qs[node] != nil else { return (w, -1) }  // discarded meanwhile: no retry
                    let n = min(qs[node]!.sending, qs[node]!.items.count)
                    qs[node]!.sending = 0
                    for i in 0..<n {
                        if let d = qs[node]!.items[i].done { w.append(d) }
                        qs[node]!.items[i].done = nil
                    }
                    qs[node]!.failures += 1
                    return (w, qs[node]!.failures)
                }
                for w in waiting { w(.failure(error)) }
                guard failures >= 0 else { return }
                let delay = min(Int64(50) << Int64(min(failures, 7)), 5_000)
                Task { [self] in
                    await sleep(delay)
                    pump(node)
                }
            }
        }
    }
}

extension InboxFanout {
    /// Puts what `node`'s inboxes lack in front of the entries it answered `gap` (`onGap`'s
    /// repair), then lets the queue go on. Runs with the queue held (`reconciling`). Once repaired,
    /// those entries go without the check: what the repair could not find is not there to find. A
    /// repair that fails is tried again after a backoff (the entries go again, are answered `gap`
    /// again).
    func repairGaps(_ gaps: [RemoteMember], at node: String) {
        self.gaps.add(1, ordering: .relaxed)
        let repair = self.repair.withLock { $0 }
        Task { [self] in
            let repaired = await repair?(node, gaps) ?? true
            if !repaired {
                let failures = queues.withLock { qs -> Int in
                    qs[node]?.failures += 1
                    return qs[node]?.failures ?? 0
                }
                await sleep(min(Int64(50) << Int64(min(failures, 7)), 5_000))
            }
            let heads = Set(gaps.map { "\($0.userId) \($0.conversationId) \($0.lastSeq + 1)" })
            let start = queues.withLock { qs -> Bool in
                guard var q = qs[node] else { return false }
                q.reconciling -= 1
                if repaired {
                    for i in q.items.indices where q.items[i].item.previous != 0 {
                        let item = q.items[i].item
                        if heads.contains("\(item.userId) \(item.conversationId) \(item.seq)") { q.items[i].item.previous = 0 }
                    }
                }
                let start = q.canStart
                if start { q.inFlight = true }
                qs[node] = q
                return start
            }
            if start { pump(node) }
        }
    }
}

/// What a conversation's node knows of one member owned by another node.
public struct RemoteMember: Sendable, Equatable {
    public var userId: String
    public var conversationId: String
    /// The conversation's newest seq.
    public var lastSeq: UInt64

    public init(userId: String, conversationId: String, lastSeq: UInt64) {
        self.userId = userId
        self.conversationId = conversationId
        self.lastSeq = lastSeq
    }
}

extension InboxFanout {
    /// Puts back whatever `node`'s users are missing of this node's conversations: entries lost with
    /// a restart of this node (the queue lived in memory) or dropped at the bound. Run when `node`
    /// becomes reachable. The queue is paused (after the batch in flight), `node` is asked how far
    /// each member's inbox goes (`ask`), and the missing messages (`load`) go in front of what is
    /// queued, in seq order, so every member still gets each conversation in seq order.
    public func reconcile(
        _ node: String, members: [RemoteMember],
        ask: @Sendable ([RemoteMember]) async throws(ChatError) -> [UInt64],
        load: @Sendable (String, [UInt64]) async -> [MessageRecord]
    ) async throws(ChatError) {
        guard !members.isEmpty else { return }
        queues.withLock { qs in qs[node, default: Queue()].reconciling += 1 }
        defer {
            let start = queues.withLock { qs -> Bool in
                guard var q = qs[node] else { return false }
                q.reconciling -= 1
                let start = q.canStart
                if start { q.inFlight = true }
                qs[node] = q
                return start
            }
            if start { pump(node) }
        }
        while queues.withLock({ $0[node]?.inFlight ?? false }) { await sleep(5) }
        let highs = try await ask(members)
        var missing: [(item: RemoteInboxItem, done: (@Sendable (Result<UInt64, ChatError>) -> Void)?)] = []
        for (i, m) in members.enumerated() where i < highs.count && highs[i] < m.lastSeq {
            // Up to the first seq already queued for this member and conversation, if any.
            let firstQueued = queues.withLock { qs in
                qs[node]?.items.first { $0.item.userId == m.userId && $0.item.conversationId == m.conversationId && $0.item.isMessage }?.item.seq
            }
            let upTo = min(m.lastSeq, (firstQueued ?? m.lastSeq + 1) - 1)
            guard upTo > highs[i] else { continue }
            for message in await load(m.conversationId, Array((highs[i] + 1)...upTo)) {
                missing.append((RemoteInboxItem(userId: m.userId, message: message, origin: 0), nil))
            }
        }
        guard !missing.isEmpty else { return }
        // In front of everything not in flight (nothing is: no batch starts while reconciling).
        queues.withLock { qs in
            guard var q = qs[node] else { return }
            q.items.insert(contentsOf: missing, at: q.sending)
            qs[node] = q
        }
    }
}
