import ChorusCluster
import ChorusCore
import Synchronization

/// All conversations of the node: creation (logged), lookup, each user's list. One actor per
/// conversation in use does the rest; an idle one is only its state (`ConversationSlot`) until the
/// next lookup rebuilds its actor (Conversations+Idle.swift).
public actor Conversations {
    /// Read from any thread without a hop (a send looks its conversation up on the event loop, so
    /// that sends keep their order). Written by this actor, by lookups (a cold slot becomes live)
    /// and by the idle sweep (a live one no one holds becomes cold).
    nonisolated let actors = Mutex<[String: ConversationSlot]>([:])
    /// How many slots are live (changed under `actors`' lock).
    nonisolated let live = Atomic<Int>(0)
    private var directPairs: [PairKey: String]
    /// Each user's conversations (small arrays: a one-element Set costs three times as much).
    private var userConversations: [String: [String]]
    /// Delivered receipts sent to members of other nodes (reconciled with them).
    private var deliveredSent: DeliveredLedger
    /// Direct conversations being created now, so two requests for one pair get one conversation.
    private var creatingDirect: [PairKey: Task<ConversationCore, any Error>] = [:]
    private let accounts: Accounts
    private let journal: any Journal
    private let inboxes: InboxDirectory
    private let clock: any WallClock
    private let limits: ChatLimits
    let context: ConversationContext
    /// Which node owns which user and conversation (a cluster; one node owns everything).
    let placement: PlacementCell

    /// The other nodes' conversations and inboxes (nil on a single node).
    public nonisolated let peers: EnginePeers?

    public init(
        state: EngineState, accounts: Accounts, journal: any Journal, inboxes: InboxDirectory, clock: any WallClock, limits: ChatLimits,
        placement: PlacementCell = PlacementCell(.single("node1")), peers: EnginePeers? = nil, fanout: InboxFanout? = nil
    ) {
        self.placement = placement
        self.peers = peers
        directPairs = state.directPairs
        userConversations = state.userConversations.mapValues { $0.sorted() }
        deliveredSent = state.deliveredSent
        self.accounts = accounts
        self.journal = journal
        self.inboxes = inboxes
        self.clock = clock
        self.limits = limits
        let context = ConversationContext(journal: journal, inboxes: inboxes, clock: clock, limits: limits, placement: placement, fanout: fanout)
        self.context = context
        // Cold until used: after a restart memory follows activity, not the number of conversations.
        var made: [String: ConversationSlot] = [:]
        for (id, core) in state.conversations { made[id] = .cold(ColdConversation(core)) }
        actors.withLock { $0 = made }
    }

    /// Submits a send to the conversation wherever it lives: its actor here, or its owner node.
    /// Called on the session's event loop, so one session's sends keep their order.
    public nonisolated func submit(_ r: SendRequest, to conversationId: String) {
        if let peers, !placement.isLocal(conversation: conversationId) {
            return peers.send(conversationId: conversationId, r, to: placement.owner(ofConversation: conversationId))
        }
        do { try conversation(conversationId).submit(r) } catch { r.reply(.failure(error)) }
    }

    /// `submit`, awaited: the sent message, or why not.
    public nonisolated func send(to conversationId: String, from: String, clientMsgId: String, body: String) async throws(ChatError) -> SentMessage {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<SentMessage, ChatError>, Never>) in
            submit(SendRequest(from: from, clientMsgId: clientMsgId, body: body) { c.resume(returning: $0) }, to: conversationId)
        }
        return try result.get()
    }

    /// Records a read wherever the conversation lives (its actor here, or its owner node).
    public nonisolated func read(_ conversationId: String, by userId: String, upTo seq: UInt64) async throws(ChatError) {
        if let peers, !placement.isLocal(conversation: conversationId) {
            return try await peers.read(conversationId: conversationId, by: userId, upTo: seq, at: placement.owner(ofConversation: conversationId))
        }
        try await conversation(conversationId).read(by: userId, upTo: seq)
    }

    /// Puts back what `node`'s users miss of this node's conversations (see `InboxFanout.reconcile`);
    /// run when `node` becomes reachable, at start included. Asks in pages of 10,000 members.
    public nonisolated func reconcile(with node: String) async {
        guard let peers, let fanout = context.fanout else { return }
        let members = actors.withLock { a in
            a.values.flatMap { slot -> [RemoteMember] in
                let core = slot.core
                guard core.lastSeq > 0 else { return [] }
                return core.members.filter { placement.owner(ofUser: $0) == node && !placement.sharesInbox(user: $0, with: core.id) }
                    .map { RemoteMember(userId: $0, conversationId: core.id, lastSeq: core.lastSeq) }
            }
        }
        var start = 0
        var attempt = 0
        while start < members.count {
            let page = Array(members[start..<min(start + 10_000, members.count)])
            do {
                try await fill(page, at: node, peers: peers, fanout: fanout)
                start += page.count
                attempt = 0
            } catch {
                // Heard from but not reachable yet (our connection to it is still being made), or
                // gone again: a few more tries, then the next time it becomes reachable.
                attempt += 1
                guard attempt <= 10 else { return }
                try? await Task.sleep(for: .milliseconds(200 * attempt))
            }
        }
        await reconcileReceipts(with: node, peers: peers, fanout: fanout)
        let delivered = await deliveredSent.receipts(to: { placement.owner(ofUser: $0) == node && !placement.isLocal(user: $0) }).map {
            RemoteInboxItem(userId: $0.recipient, entry: .receipt(conversationId: $0.conversationId, from: $0.from, kind: .delivered, seq: $0.seq))
        }
        await sendMissing(delivered, to: node, peers: peers, fanout: fanout)
    }

    /// Puts what `node` lacks before entries it answered `gap` (the fan-out's repair, `onGap`):
    /// each member's messages above its inbox's highest, up to `lastSeq`. False when `node` could
    /// not be asked.
    public nonisolated func repairGaps(at node: String, _ members: [RemoteMember]) async -> Bool {
        guard let peers, let fanout = context.fanout else { return true }
        do throws(ChatError) {
            try await fill(members, at: node, peers: peers, fanout: fanout)
            return true
        } catch {
            return false
        }
    }

    private nonisolated func fill(_ members: [RemoteMember], at node: String, peers: EnginePeers, fanout: InboxFanout) async throws(ChatError) {
        try await fanout.reconcile(
            node, members: members, ask: { m throws(ChatError) in try await peers.inboxHigh(m, at: node) },
            load: { c, seqs in await self.messages(c, seqs: seqs) })
    }

    /// Read receipts: each member of `node` should hold every other member's newest read position
    /// here; those it lacks go to it (a newer receipt supersedes an older one, so order does not
    /// matter). Best effort: unreachable again, it runs at the next reconnection.
    private nonisolated func reconcileReceipts(with node: String, peers: EnginePeers, fanout: InboxFanout) async {
        let receipts = actors.withLock { a in
            a.values.flatMap { slot -> [RemoteInboxItem] in
                let core = slot.core
                let reads = core.readSeq
                guard !reads.isEmpty else { return [] }
                return core.members.filter { placement.owner(ofUser: $0) == node && !placement.sharesInbox(user: $0, with: core.id) }.flatMap { m in
                    reads.filter { $0.key != m && $0.value > 0 }.map { from, seq in
                        RemoteInboxItem(userId: m, entry: .receipt(conversationId: core.id, from: from, kind: .read, seq: seq))
                    }
                }
            }
        }
        await sendMissing(receipts, to: node, peers: peers, fanout: fanout)
    }

    /// Asks `node` how far each recipient's receipts of that kind, member and conversation go, and
    /// queues those it lacks (in pages of 10,000). Best effort: unreachable again, it runs at the
    /// next reconnection.
    private nonisolated func sendMissing(_ receipts: [RemoteInboxItem], to node: String, peers: EnginePeers, fanout: InboxFanout) async {
        var start = 0
        while start < receipts.count {
            let page = Array(receipts[start..<min(start + 10_000, receipts.count)])
            start += page.count
            guard let highs = try? await peers.receiptHigh(page, at: node) else { return }
            let missing = zip(page, highs).filter { item, high in high < item.seq }.map { item, _ in
                (item, nil as (@Sendable (Result<UInt64, ChatError>) -> Void)?)
            }
            if !missing.isEmpty { fanout.enqueue(missing, to: node) }
        }
    }

    /// Whether the conversation is owned by another node.
    public nonisolated func isElsewhere(_ conversationId: String) -> Bool { peers != nil && !placement.isLocal(conversation: conversationId) }

    /// Messages by seq, wherever the conversation lives (those that no longer exist are left out).
    public nonisolated func messages(_ conversationId: String, seqs: [UInt64]) async -> [MessageRecord] {
        (try? await fetchMessages(conversationId, seqs: seqs)) ?? []
    }

    /// `messages`, but a conversation on a node that cannot be reached is an error, not "none".
    nonisolated func fetchMessages(_ conversationId: String, seqs: [UInt64]) async throws(ChatError) -> [MessageRecord] {
        if let peers, !placement.isLocal(conversation: conversationId) {
            return try await peers.messages(conversationId: conversationId, seqs: seqs, at: placement.owner(ofConversation: conversationId))
        }
        guard let actor = try? conversation(conversationId) else { return [] }
        var out: [MessageRecord] = []
        for seq in seqs { if let m = try? await actor.message(seq: seq) { out.append(m) } }
        return out
    }

    /// Conversations looked up since they were last released: the only ones a sweep visits.
    nonisolated let warm = Mutex<Set<String>>([])

    /// The conversations `userId` belongs to.
    /// Which of `among` share a conversation held here with `userId`.
    public func sharing(_ userId: String, among: [String]) -> [String] {
        let wanted = Set(among)
        var found = Set<String>()
        for core in list(for: userId) {
            for m in core.members where wanted.contains(m) { found.insert(m) }
        }
        return among.filter { found.contains($0) }
    }

    /// Whose presence `viewer` may see among `users` (PROTOCOL.md section 6): itself, and users who
    /// share a conversation with it, held here or on any other node (asked in parallel; a node that
    /// does not answer shows nobody).
    public func visible(to viewer: String, among users: [String]) async -> Set<String> {
        var seen: Set<String> = users.contains(viewer) ? [viewer] : []
        let others = users.filter { $0 != viewer }
        guard !others.isEmpty else { return seen }
        seen.formUnion(sharing(viewer, among: others))
        guard let peers else { return seen }
        let remaining = others.filter { !seen.contains($0) }
        guard !remaining.isEmpty else { return seen }
        await withTaskGroup(of: [String].self) { group in
            for node in placement.serving {
                group.addTask { (try? await peers.sharing(viewer, among: remaining, at: node)) ?? [] }
            }
            for await found in group { seen.formUnion(found) }
        }
        return seen
    }

    public func list(for userId: String) -> [ConversationCore] {
        let ids = userConversations[userId] ?? []
        return actors.withLock { a in ids.compactMap { a[$0]?.core } }
    }

    /// Creates a conversation (PROTOCOL.md `POST /v1/conversations`). Returns it and whether it is new:
    /// exactly one other distinct user gives the pair's single direct conversation.
    public func create(by creator: String, members requested: [String], title: String?) async throws(ChatError) -> (ConversationCore, created: Bool) {
        var others: [String] = []
        var remote: [String: [String]] = [:]
        for m in requested where m != creator && !others.contains(m) {
            guard limits.isValidID(m) else { throw .unknownUser }
            if placement.isLocal(user: m) {
                guard await accounts.user(id: m) != nil else { throw .unknownUser }
            } else {
                remote[placement.owner(ofUser: m), default: []].append(m)
            }
            others.append(m)
        }
        if others.count == 1, let peers, placement.owner(ofPair: creator, others[0]) != placement.selfId {
            // The pair's one conversation lives on the pair's owner (which checks the users).
            return try await peers.direct(creator: creator, other: others[0], at: placement.owner(ofPair: creator, others[0]))
        }
        for (node, ids) in remote {
            guard let peers, try await peers.usersExist(ids, at: node) else { throw .unknownUser }
        }
        guard !others.isEmpty else { throw .badRequest("members: name at least one other user") }
        if let title, title.utf8.count > limits.titleBytes { throw .badRequest("title: at most \(limits.titleBytes) bytes") }
        if others.count == 1 {
            let key = EngineState.pairKey(creator, others[0])
            if let id = directPairs[key], let core = try? core(id) { return (core, false) }
            if let pending = creatingDirect[key] {
                do { return (try await pending.value, false) } catch { throw .unavailable("\(error)") }
            }
            let members = [creator, others[0]]
            let task = Task { try await self.log(kind: .direct, title: "", members: members) }
            creatingDirect[key] = task
            defer { creatingDirect[key] = nil }
            do {
                let core = try await task.value
                directPairs[key] = core.id
                return (core, true)
            } catch let e as ChatError { throw e } catch { throw .unavailable("\(error)") }
        }
        guard others.count + 1 <= limits.groupMembers else { throw .groupTooLarge(limit: limits.groupMembers) }
        do {
            return (try await log(kind: .group, title: title ?? "", members: [creator] + others), true)
        } catch let e as ChatError { throw e } catch { throw .unavailable("\(error)") }
    }

    /// Logs the creation, then registers the conversation.
    private func log(kind: ConversationKind, title: String, members: [String]) async throws -> ConversationCore {
        // Minted to be owned by this node: a direct pair's id carries the pair's point (this node
        // owns the pair), a group's a random point this node owns.
        func mint() -> String { kind == .direct ? Placement.mintDirect(members[0], members[1]) : placement.mintGroup() }
        var id = mint()
        var draws = 1
        // A group's point is drawn again while a membership change freezes it (a direct pair's
        // cannot move: refused, the client retries).
        while actors.withLock({ $0[id] != nil }) || (kind == .group && placement.isFrozen(point: KeyPoint.of(id: id)) && draws < 64) {
            id = mint()
            draws += 1
        }
        try placement.admit(conversation: id)
        creationsInFlight += 1
        defer { creationsInFlight -= 1 }
        let now = clock.nowMs()
        let event = ChorusEvent.conversationCreated(conversationId: id, kind: kind, title: title, members: members, createdAt: now)
        do {
            _ = try await journal.append(batch: [(event.kind, event.encode())], at: KeyPoint.of(id: id))
        } catch {
            throw ChatError.unavailable("the log refused the conversation: \(error)")
        }
        let core = ConversationCore(id: id, kind: kind, title: title, members: members, createdAt: now)
        actors.withLock { $0[id] = .live(ConversationActor(core: core, context: context)) }
        live.add(1, ordering: .relaxed)
        warm.withLock { _ = $0.insert(id) }
        for m in members { join(m, id) }
        return core
    }

    /// Adds or removes a member through the conversation's actor, then updates the user's list.
    public func changeMember(_ conversationId: String, userId: String, add: Bool, by: String) async throws(ChatError) -> ConversationCore {
        let actor = try conversation(conversationId)
        if add {
            if placement.isLocal(user: userId) {
                guard await accounts.user(id: userId) != nil else { throw .unknownUser }
            } else {
                guard let peers, try await peers.usersExist([userId], at: placement.owner(ofUser: userId)) else { throw .unknownUser }
            }
        }
        let core = try await actor.changeMember(userId, add: add, by: by)
        if add {
            join(userId, conversationId)
        } else {
            userConversations[userId]?.removeAll { $0 == conversationId }
            if userConversations[userId]?.isEmpty == true { userConversations[userId] = nil }
        }
        return core
    }


    /// `received {upTo}`: one delivered receipt per conversation and sender for the messages the user
    /// now holds, carrying the highest seq held there. Logged first; the receipts are assigned to the
    /// senders' inboxes on the completion path (LSN order), as replay assigns them.
    public func received(by userId: String, upTo: UInt64) async throws(ChatError) {
        try placement.admit(user: userId)
        let inbox = inboxes.inbox(userId)
        guard let claim = inbox.claimReceived(upTo: upTo) else { return }
        var highest: [String: UInt64] = [:]
        var senders: [String: Set<String>] = [:]
        var wanted: [String: [UInt64]] = [:]
        for (_, entry) in claim.entries {
            if case .message(let conversationId, let seq) = entry { wanted[conversationId, default: []].append(seq) }
        }
        for (conversationId, seqs) in wanted {
            // From the conversation's node (this one or its owner). Unreachable: the claim is given
            // back (no receipt is lost) and the client hears `unavailable`; it may claim again.
            let found: [MessageRecord]
            do { found = try await fetchMessages(conversationId, seqs: seqs) } catch {
                inbox.unclaim(claim.range)
                throw error
            }
            for m in found where m.from != userId {
                highest[conversationId] = max(highest[conversationId] ?? 0, m.seq)
                senders[conversationId, default: []].insert(m.from)
            }
        }
        let items = highest.keys.sorted().map { id in
            DeliveredItem(conversationId: id, seq: highest[id]!, recipients: senders[id]!.sorted())
        }
        // Nothing from anyone else: nothing to tell, nothing to log (a re-claim after a restart finds
        // the same nothing).
        guard !items.isEmpty else { return }
        let event = ChorusEvent.delivered(userId: userId, inboxUpTo: claim.range.upperBound, items: items)
        let inboxes = self.inboxes
        let context = self.context
        let result = await journal.appendInOrder([(event.kind, event.encode())], at: KeyPoint.of(id: userId)) { _ in
            var remote: [String: [(RemoteInboxItem, (@Sendable (Result<UInt64, ChatError>) -> Void)?)]] = [:]
            for item in items {
                for r in item.recipients {
                    if context.placement.sharesInbox(user: r, with: userId) {
                        inboxes.inbox(r).append(.receipt(conversationId: item.conversationId, userId: userId, kind: .delivered, seq: item.seq))
                    } else {
                        let entry = RemoteInboxItem(userId: r, entry: .receipt(conversationId: item.conversationId, from: userId, kind: .delivered, seq: item.seq))
                        remote[context.placement.owner(ofUser: r), default: []].append((entry, nil))
                    }
                }
            }
            for (node, entries) in remote { context.fanout?.enqueue(entries, to: node) }
        }
        if case .failure(let error) = result { throw .unavailable("the log refused the receipt: \(error)") }
        if peers != nil { deliveredSent.note(userId, items, remote: { !placement.sharesInbox(user: $0, with: userId) }) }
    }

    /// A user's delivered receipts to other nodes' members (a hand-over carries them).
    public func deliveredItems(of userId: String) -> [DeliveredItem] { deliveredSent.items(of: userId) }

    /// Creations awaiting the log (a hand-over's export waits for zero).
    private var creationsInFlight = 0

    /// Waits (bounded) until no creation is in flight: after a freeze, none can start on frozen points.
    public func settle() async throws(ChatError) {
        var waited = 0
        while creationsInFlight > 0 {
            guard waited < 5_000 else { throw .unavailable("conversation creations did not settle for the hand-over") }
            try? await Task.sleep(for: .milliseconds(1))
            waited += 1
        }
    }

    /// The conversations whose ids `include` selects, as actors (a hand-over; cold ones are rebuilt).
    public nonisolated func localActors(where include: (String) -> Bool) -> [ConversationActor] {
        let ids = actors.withLock { a in a.keys.filter(include) }
        return ids.compactMap { try? conversation($0) }
    }

    /// The state of the conversations whose ids `include` selects, without waking cold ones.
    public nonisolated func localCores(where include: (String) -> Bool) -> [ConversationCore] {
        actors.withLock { a in a.compactMap { include($0.key) ? $0.value.core : nil } }
    }

    /// Makes handed-over conversations (and users' delivered receipts) live here, replacing older copies.
    public func adopt(_ cores: [ConversationCore], delivered: DeliveredLedger = DeliveredLedger()) {
        deliveredSent.adopt(delivered)
        for core in cores {
            let old = actors.withLock { a in
                defer { a[core.id] = .cold(ColdConversation(core)) }
                if a[core.id]?.isLive == true { live.subtract(1, ordering: .relaxed) }
                return a[core.id]?.core
            }
            if let old { for m in old.members { drop(m, core.id) } }
            if core.kind == .direct, core.members.count == 2 { directPairs[EngineState.pairKey(core.members[0], core.members[1])] = core.id }
            for m in core.members { join(m, core.id) }
        }
    }

    /// At a membership change's commit, before unfreezing: members of these local conversations
    /// that the change brings here get what their handed-in inboxes lack, in seq order, then the
    /// read receipts they lack. (Entries for them may have been stuck at, or lost with, their old
    /// owner's queues; no one else reconciles a member with a conversation on its own node.)
    public func fillArrivingInboxes(of conversations: [String], arriving: @Sendable (String) -> Bool, writer: RemoteInboxWriter) async {
        for id in conversations {
            guard let core = try? core(id) else { continue }
            var items: [RemoteInboxItem] = []
            for member in core.members where arriving(member) {
                let high = writer.highest(user: member, conversation: id)
                if high < core.lastSeq {
                    for m in await messages(id, seqs: Array((high + 1)...core.lastSeq)) {
                        items.append(RemoteInboxItem(userId: member, message: m, origin: 0))
                    }
                }
                for (from, seq) in core.readSeq where from != member && seq > 0 {
                    let receipt = RemoteInboxItem(userId: member, entry: .receipt(conversationId: id, from: from, kind: .read, seq: seq))
                    if writer.highest(like: receipt) < seq { items.append(receipt) }
                }
            }
            guard !items.isEmpty else { continue }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in writer.append(items, arriving: true) { _ in c.resume() } }
        }
    }

    /// Forgets the conversations this node handed to their new owners (at commit): they are no
    /// longer listed, reconciled or served here.
    public func release(where moved: (String) -> Bool, usersWhere gone: (String) -> Bool = { _ in false }) {
        deliveredSent.forget(where: gone)
        let gone = actors.withLock { a in
            let ids = a.keys.filter(moved)
            return ids.compactMap { id -> ConversationCore? in
                guard let slot = a.removeValue(forKey: id) else { return nil }
                if slot.isLive { live.subtract(1, ordering: .relaxed) }
                return slot.core
            }
        }
        for core in gone {
            for m in core.members { drop(m, core.id) }
            if core.kind == .direct, core.members.count == 2 { directPairs[EngineState.pairKey(core.members[0], core.members[1])] = nil }
        }
    }

    private func drop(_ userId: String, _ conversationId: String) {
        userConversations[userId]?.removeAll { $0 == conversationId }
        if userConversations[userId]?.isEmpty == true { userConversations[userId] = nil }
    }

    private func join(_ userId: String, _ conversationId: String) {
        if userConversations[userId]?.contains(conversationId) != true { userConversations[userId, default: []].append(conversationId) }
    }
}
