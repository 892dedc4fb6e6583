import ChorusCluster
import ChorusCore
import Synchronization

/// The user owner's side of fan-out: appends the entries conversations on other nodes send, each
/// logged first (`inboxAppended`) and assigned on the log's completion path in LSN order, exactly
/// as replay assigns it. Repeats (a retried batch) are recognised per user and conversation by the
/// highest message seq already taken, and answered with the entry they already have; a message
/// whose `previous` is above that highest is not taken but answered `RemoteInboxItem.gap`.
public final class RemoteInboxWriter: Sendable {
    private let journal: any Journal
    private let inboxes: InboxDirectory
    /// "userId conversationId" -> the highest message seq logged or being logged, and the
    /// generation it was read in. Filled lazily from the inbox itself (after a restart) the first
    /// time a pair is seen, and again (keeping the higher) the first time after `refreshHighs`.
    /// One entry per user and remote conversation.
    private let high = Mutex<Highs>(Highs())

    struct Highs {
        var generation: UInt64 = 0
        var seqs: [String: (seq: UInt64, generation: UInt64)] = [:]
    }

    private let placement: PlacementCell

    public init(journal: any Journal, inboxes: InboxDirectory, placement: PlacementCell = PlacementCell(.single("node1"))) {
        self.journal = journal
        self.inboxes = inboxes
        self.placement = placement
    }

    /// Forgets the remembered highs (users were handed in or out: the inboxes are the truth).
    public func forgetHighs() { high.withLock { $0.seqs = [:] } }

    /// Entries other nodes logged may have gone into these inboxes meanwhile (this node followed
    /// their partitions): each pair's high is read from its inbox again on next use, and the
    /// higher of that and what is remembered is kept. Entries being logged here stay counted, so a
    /// retried batch still finds them (forgetting them took such a retry a second time).
    public func refreshHighs() { high.withLock { $0.generation += 1 } }

    /// The log refused entries for `users`: what is remembered for them may count entries that
    /// were never logged, so their pairs are read from the inboxes again.
    func forget(users: Set<String>) {
        high.withLock { h in h.seqs = h.seqs.filter { !users.contains(String($0.key.prefix { $0 != " " })) } }
    }

    /// The high of `item`'s pair (see `high`), remembered.
    private func known(_ h: inout Highs, _ item: RemoteInboxItem) -> UInt64 {
        let key = item.dedupKey
        if let k = h.seqs[key], k.generation == h.generation { return k.seq }
        let found = max(h.seqs[key]?.seq ?? 0, inboxes.inbox(item.userId).lastSeq(like: item.inboxEntry))
        h.seqs[key] = (found, h.generation)
        return found
    }

    /// How far a user's inbox goes in a conversation's messages (what a reconciliation asks).
    public func highest(user: String, conversation: String) -> UInt64 {
        highest(like: RemoteInboxItem(userId: user, message: MessageRecord(conversationId: conversation, seq: 0, from: "", body: "", ts: 0, clientMsgId: ""), origin: 0))
    }

    /// How far a user's inbox goes in entries of `item`'s kind (its seq is ignored).
    func highest(like item: RemoteInboxItem) -> UInt64 {
        high.withLock { h in known(&h, item) }
    }

    /// Appends `items` (in order); `reply` gets each item's inboxSeq (a repeat's existing one, or 0
    /// if it is still being logged by an earlier batch).
    ///
    /// `arriving`: a membership change's commit filling the inboxes of users it brings here, before
    /// they are unfrozen (the freeze and ownership checks do not apply).
    public func append(_ items: [RemoteInboxItem], arriving: Bool = false, reply: @escaping @Sendable (Result<[UInt64], ChatError>) -> Void) {
        // A user a membership change is moving: refused, the sender retries (after the change it
        // routes to the new owner). A user handed to another node: dropped (answered 0); the
        // conversation's owner reconciles with the new owner when it switches rings.
        if !arriving, items.contains(where: { placement.isFrozen(point: KeyPoint.of(id: $0.userId)) }) {
            return reply(.failure(.unavailable("users of this batch are moving (membership change)")))
        }
        // With replication, leadership moves without a hand-over: a user not led here (yet, or any
        // more) is refused, and the sender keeps the entry until its view of the leaders agrees.
        if !arriving, placement.current.leaders != nil, let elsewhere = items.first(where: { !placement.isLocal(user: $0.userId) }) {
            return reply(.failure(.unavailable("user \(elsewhere.userId) is not led by this node")))
        }
        var fresh: [Int] = []
        var gapped: [Int] = []
        high.withLock { h in
            for (i, item) in items.enumerated() where arriving || placement.isLocal(user: item.userId) {
                let held = known(&h, item)
                if item.seq <= held { continue }  // a repeat
                // Taken past a missing entry, the missing one could never be repaired (repairs go
                // above the highest held): answered `gap`, and so is every later one of the pair.
                if item.isMessage, item.previous > held {
                    gapped.append(i)
                    continue
                }
                h.seqs[item.dedupKey] = (item.seq, h.generation)
                fresh.append(i)
            }
        }
        let gaps = gapped
        guard !fresh.isEmpty else {
            var seqs = items.map { inboxes.inbox($0.userId).seq(of: $0.inboxEntry) }
            for i in gaps { seqs[i] = RemoteInboxItem.gap }
            return reply(.success(seqs))
        }
        // One append per user, at the user's point (a replicated log keeps each user's entries in its
        // partition); all are enqueued here, before any completes.
        var byUser: [(user: String, indices: [Int])] = []
        var slot: [String: Int] = [:]
        for i in fresh {
            let u = items[i].userId
            if let k = slot[u] { byUser[k].indices.append(i) } else { slot[u] = byUser.count; byUser.append((u, [i])) }
        }
        let directory = self.inboxes
        let freshIndices = fresh
        let progress = Mutex<(left: Int, seqs: [UInt64], error: (any Error)?)>((byUser.count, [UInt64](repeating: 0, count: items.count), nil))
        // Enqueued under no lock: this runs on the one mesh connection from the conversation's owner,
        // so batches for one pair are logged in the order they came.
        for (user, indices) in byUser {
            let events = indices.map { i -> (kind: UInt16, payload: [UInt8]) in
                let e = Self.event(items[i])
                return (e.kind, e.encode())
            }
            journal.append(batch: events, at: KeyPoint.of(id: user)) { [self] result in
                // On the completion path, in the user's LSN order: the same order replay appends them.
                if case .success = result {
                    let inbox = directory.inbox(user)
                    var assigned: [(Int, UInt64)] = []
                    for i in indices {
                        var message: MessageRecord?
                        if case .message(let m) = items[i].entry { message = m }
                        assigned.append((i, inbox.append(items[i].inboxEntry, message: message, exceptBits: items[i].origin)))
                    }
                    progress.withLock { for (i, seq) in assigned { $0.seqs[i] = seq } }
                }
                let finished = progress.withLock { p -> Result<[UInt64], any Error>? in
                    if case .failure(let e) = result, p.error == nil { p.error = e }
                    p.left -= 1
                    guard p.left == 0 else { return nil }
                    return p.error.map { .failure($0) } ?? .success(p.seqs)
                }
                guard let finished else { return }
                switch finished {
                case .failure(let error):
                    // The highs counted entries that were not logged: the inboxes are the truth again.
                    forget(users: Set(freshIndices.map { items[$0].userId }))
                    reply(.failure(.unavailable("the log refused inbox entries: \(error)")))
                case .success(var seqs):
                    var isFresh = [Bool](repeating: false, count: items.count)
                    for i in freshIndices { isFresh[i] = true }
                    for (i, item) in items.enumerated() where !isFresh[i] { seqs[i] = directory.inbox(item.userId).seq(of: item.inboxEntry) }
                    for i in gaps { seqs[i] = RemoteInboxItem.gap }
                    reply(.success(seqs))
                }
            }
        }
    }

    /// The record of one delivered entry (its inboxSeq is assigned when applied).
    static func event(_ item: RemoteInboxItem) -> ChorusEvent {
        switch item.entry {
        case .message(let m):
            .inboxAppended(userId: item.userId, inboxSeq: 0, conversationId: m.conversationId, seq: m.seq, receiptFrom: nil, receiptKind: 0)
        case .receipt(let c, let from, let kind, let seq):
            .inboxAppended(userId: item.userId, inboxSeq: 0, conversationId: c, seq: seq, receiptFrom: from, receiptKind: kind.rawValue)
        }
    }
}
