import ChorusCluster
import ChorusCore
import Synchronization

/// The engine's state of the keys whose partitions this node follows (a replicated cluster): their
/// committed events applied as they arrive, so a promotion hands them to the live engine without a
/// replay (docs/REPLICATION.md, "A follower"). Accounts and conversations are staged here; inbox
/// entries go straight into the node's inbox directory, which keeps every user's inbox warm.
public final class FollowedPartitions: Sendable {
    private let staged: Mutex<EngineState>
    /// The followed users' re-engagement email records (the engine's state has none of them).
    private let emails = Mutex(StagedEmails())
    /// The node's inbox directory (live and followed users alike).
    public let inboxes: InboxDirectory
    /// Events that did not decode (a newer writer's kinds): counted, never applied.
    private let undecodable = Atomic<Int>(0)

    /// `sharesInbox` as the node's placement answers it (`Placement.sharesInbox`).
    public init(inboxes: InboxDirectory, sharesInbox: @escaping @Sendable (String, String) -> Bool) {
        var state = EngineState()
        state.sharesInbox = sharesInbox
        staged = Mutex(state)
        self.inboxes = inboxes
    }

    public var undecodableEvents: Int { undecodable.load(ordering: .relaxed) }

    /// Applies one committed event of a followed partition, logged here at `lsn`. Runs on the log's
    /// completion path, in LSN order; never awaits.
    public func apply(kind: UInt16, payload: [UInt8], lsn: UInt64) {
        if StagedEmails.kinds.contains(kind) {
            guard let event = try? ChorusEvent.decode(kind: kind, payload: payload) else {
                undecodable.add(1, ordering: .relaxed)
                return
            }
            return emails.withLock { $0.apply(event) }
        }
        let failed = staged.withLock { s -> Bool in
            do throws(EventDecodingError) {
                try s.apply(kind: kind, payload: payload, lsn: lsn, inboxes: inboxes)
                return false
            } catch {
                return true
            }
        }
        if failed { undecodable.add(1, ordering: .relaxed) }
    }

    /// Hands the staged keys `isPromoted` selects (by ring point) to the live engine and forgets
    /// them here: accounts with their live tokens and last login, conversations with their read
    /// positions and message index, and the delivered receipts their users sent. Call once the new
    /// leader's inherited records are committed and applied, before it serves. Returns the
    /// promoted users' re-engagement email records, for the outbox (`ReengagementService.receive`).
    @discardableResult
    public func promote(where isPromoted: @escaping (UInt64) -> Bool, accounts: Accounts, conversations: Conversations, now: Int64) async -> [ChorusEvent] {
        let (users, cores, delivered) = staged.withLock { s -> ([ChorusEvent], [ConversationCore], DeliveredLedger) in
            let users = s.accounts.userIds.filter { isPromoted(KeyPoint.of(id: $0)) }.compactMap { s.accounts.handOver($0, now: now) }
            let cores = s.conversations.values.filter { isPromoted(KeyPoint.of(id: $0.id)) }
            var delivered = DeliveredLedger()
            for (user, _) in s.deliveredSent.byUser where isPromoted(KeyPoint.of(id: user)) {
                delivered.replace(user, with: s.deliveredSent.items(of: user))
            }
            s.retainConversations { !isPromoted(KeyPoint.of(id: $0)) }
            s.deliveredSent.forget { isPromoted(KeyPoint.of(id: $0)) }
            return (users, cores, delivered)
        }
        for u in users { await accounts.apply(handedIn: u) }
        await conversations.adopt(cores, delivered: delivered)
        return emails.withLock { $0.take { isPromoted(KeyPoint.of(id: $0)) } }
    }

    /// The reverse of `promote`: the keys `isDemoted` selects leave the live engine and are staged
    /// here again, so the records their partition's next leader sends apply to them. Call once the
    /// partition's appends are refused and the ones admitted before are committed (nothing in flight).
    /// The live accounts keep a copy of the users, which placement no longer admits and a later
    /// promotion replaces; re-engagement keeps its timers, which fire for local users only.
    public func demote(where isDemoted: @escaping @Sendable (UInt64) -> Bool, accounts: Accounts, conversations: Conversations, now: Int64) async throws(ChatError) {
        try await conversations.settle()
        var cores = conversations.localCores { isDemoted(KeyPoint.of(id: $0)) }
        var waited = 0
        while cores.contains(where: \.hasSendsInFlight) {
            // A send decided before the appends were refused finishes with its commit (milliseconds).
            guard waited < 5_000 else { throw .unavailable("conversations did not settle for the hand-off") }
            try? await Task.sleep(for: .milliseconds(1))
            waited += 1
            cores = conversations.localCores { isDemoted(KeyPoint.of(id: $0)) }
        }
        var users: [ChorusEvent] = []
        var delivered: [(String, [DeliveredItem])] = []
        let selects: @Sendable (String) -> Bool = { isDemoted(KeyPoint.of(id: $0)) }
        for id in await accounts.userIds(where: selects) {
            if let u = await accounts.handOver(id, now: now) { users.append(u) }
            delivered.append((id, await conversations.deliveredItems(of: id)))
        }
        await conversations.release(where: selects, usersWhere: selects)
        staged.withLock { s in
            for u in users { s.accounts.apply(u) }
            for var core in cores {
                core.dropCaches()
                s.stage(core)
            }
            for (id, items) in delivered { s.deliveredSent.replace(id, with: items) }
        }
    }
}
