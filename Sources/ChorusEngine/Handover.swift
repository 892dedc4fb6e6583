import ChorusCluster
import ChorusCore
import Synchronization

/// A membership change's data path, on one node: what this node hands to the new owners of the keys
/// the next ring takes from it (`export`), and how it takes what other nodes hand it (`receive`,
/// then `adopt` at commit). See docs/CLUSTER.md, "Changing membership".
///
/// Handed-over state travels as log events: a user as `userHandedIn`, its inbox as the
/// `inboxAppended` records it would replay (same inboxSeqs) and a `delivered` claim; a conversation
/// as `conversationHandedIn` then every message as `messageHandedIn`. The receiver logs them before
/// it answers, so after a restart replay rebuilds exactly what it adopted.
public final class Handover: Sendable {
    let accounts: Accounts
    let conversations: Conversations
    let inboxes: InboxDirectory
    let journal: any Journal
    let clock: any WallClock
    /// Conversations received in this change, adopted (made live) at commit.
    private let staged = Mutex<EngineState>(EngineState())
    /// A user's re-engagement email state as events (exported with the user), and where received
    /// email events go (the node's email service). Set by the node.
    let emailState: @Sendable (String) async -> [ChorusEvent]
    let onEmail: @Sendable ([ChorusEvent]) async -> Void

    /// Bound on one hand-over batch's encoded events (a batch is one mesh frame of at most 2 MiB).
    public static let batchBytes = 1 << 20

    public init(
        accounts: Accounts, conversations: Conversations, inboxes: InboxDirectory, journal: any Journal, clock: any WallClock,
        emailState: @escaping @Sendable (String) async -> [ChorusEvent] = { _ in [] },
        onEmail: @escaping @Sendable ([ChorusEvent]) async -> Void = { _ in }
    ) {
        self.emailState = emailState
        self.onEmail = onEmail
        self.accounts = accounts
        self.conversations = conversations
        self.inboxes = inboxes
        self.journal = journal
        self.clock = clock
    }

    /// Everything this node holds that `destination(point)` names another node for, as batches per
    /// destination, in the order they must be logged there. Call after the keys are frozen and
    /// their in-flight work has settled.
    public func export(destination: @Sendable (UInt64) -> String?) async throws(ChatError) -> [String: [[ChorusEvent]]] {
        var out: [String: [[ChorusEvent]]] = [:]
        var open: [String: (events: [ChorusEvent], bytes: Int)] = [:]
        func add(_ events: [ChorusEvent], to node: String) {
            for e in events {
                let size = e.encode().count + 8
                if let current = open[node], current.bytes + size > Self.batchBytes, !current.events.isEmpty {
                    out[node, default: []].append(current.events)
                    open[node] = nil
                }
                open[node, default: ([], 0)].events.append(e)
                open[node]!.bytes += size
            }
        }
        try await accounts.settle()
        try await conversations.settle()
        let now = clock.nowMs()
        for userId in await accounts.userIds(where: { destination(KeyPoint.of(id: $0)) != nil }) {
            guard let node = destination(KeyPoint.of(id: userId)),
                case .userHandedIn(let u, let login, let tokens, _)? = await accounts.handOver(userId, now: now)
            else { continue }
            let account = ChorusEvent.userHandedIn(u, lastLogin: login, tokens: tokens, delivered: await conversations.deliveredItems(of: userId))
            add([account] + Self.inboxEvents(inboxes.inbox(userId), of: userId) + (await emailState(userId)), to: node)
        }
        for actor in conversations.localActors(where: { destination(KeyPoint.of(id: $0)) != nil }) {
            guard let node = destination(KeyPoint.of(id: actor.id)) else { continue }
            add(try await Self.conversationEvents(actor), to: node)
        }
        for (node, rest) in open where !rest.events.isEmpty { out[node, default: []].append(rest.events) }
        return out
    }

    static func inboxEvents(_ inbox: UserInbox, of userId: String) -> [ChorusEvent] {
        let (_, receivedUpTo) = inbox.snapshotState
        var events: [ChorusEvent] = []
        for (seq, entry) in inbox.entries(after: 0, limit: Int.max) {
            switch entry {
            case .message(let id, let s):
                events.append(.inboxAppended(userId: userId, inboxSeq: seq, conversationId: id, seq: s, receiptFrom: nil, receiptKind: 0))
            case .receipt(let id, let from, let kind, let s):
                events.append(.inboxAppended(userId: userId, inboxSeq: seq, conversationId: id, seq: s, receiptFrom: from, receiptKind: kind.rawValue))
            }
        }
        if receivedUpTo > 0 { events.append(.delivered(userId: userId, inboxUpTo: receivedUpTo, items: [])) }
        return events
    }

    /// A settled conversation's events: waits (bounded) for sends logged before the freeze.
    static func conversationEvents(_ actor: ConversationActor) async throws(ChatError) -> [ChorusEvent] {
        var core = actor.snapshot
        var waited = 0
        while core.hasSendsInFlight {
            // Sends admitted before the freeze finish with their group commit (milliseconds).
            guard waited < 5_000 else { throw .unavailable("conversation \(core.id) did not settle for the hand-over") }
            try? await Task.sleep(for: .milliseconds(1))
            waited += 1
            core = actor.snapshot
        }
        var events: [ChorusEvent] = [
            .conversationHandedIn(
                conversationId: core.id, kind: core.kind, title: core.title, members: core.members, lastActivity: core.lastActivity,
                reads: core.readCursors.map { ReadPosition(userId: $0.user, seq: $0.seq) })
        ]
        if core.lastSeq > 0 {
            for seq in 1...core.lastSeq { events.append(.messageHandedIn(try await actor.message(seq: seq))) }
        }
        return events
    }

    /// Logs a batch another node handed over (one group commit), then applies it: accounts and
    /// inboxes at once, conversations staged until `adopt`. Returns once durable.
    public func receive(_ events: [ChorusEvent]) async throws(ChatError) {
        guard !events.isEmpty else { return }
        let lsns: ClosedRange<UInt64>
        do {
            // Unkeyed: one batch holds many keys. Hand-over moves keys between the nodes of an
            // unreplicated cluster; a replicated one moves replicas instead, and its journal
            // refuses unkeyed appends.
            lsns = try await journal.append(batch: events.map { ($0.kind, $0.encode()) })
        } catch {
            throw .unavailable("the log refused the hand-over: \(error)")
        }
        var email: [ChorusEvent] = []
        for (offset, e) in events.enumerated() {
            switch e {
            case .userHandedIn: await accounts.apply(handedIn: e)
            case .emailQueued, .emailSent, .emailFailed, .unsubscribed: email.append(e)
            default: break
            }
            staged.withLock { $0.apply(e, lsn: lsns.lowerBound + UInt64(offset), inboxes: inboxes) }
        }
        if !email.isEmpty { await onEmail(email) }
    }

    /// Makes the conversations received in this change live (at commit) and forgets the stage.
    /// Returns their ids.
    @discardableResult
    public func adopt() async -> [String] {
        let (received, delivered) = staged.withLock { s in
            defer { s = EngineState() }
            return (s.conversations, s.deliveredSent)
        }
        await conversations.adopt(Array(received.values), delivered: delivered)
        return Array(received.keys)
    }

    /// Forgets what was staged (the change aborted; the logged copies are dropped at the next start
    /// because this node does not own them).
    public func discardStaged() { staged.withLock { $0 = EngineState() } }
}
