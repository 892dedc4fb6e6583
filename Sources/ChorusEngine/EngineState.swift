import ChorusCore

/// Two user ids in order: the key of their direct conversation. Shares the ids' storage.
public struct PairKey: Hashable, Sendable {
    public let low: String
    public let high: String
}

/// Everything replay rebuilds, applied event by event in LSN order. Live changes go through the same
/// cores in the same order (see docs/ENGINE.md), so a restart reproduces every seq and inboxSeq.
public struct EngineState: Sendable {
    public var accounts = AccountsState()
    public var conversations: [String: ConversationCore] = [:]
    /// The two users (sorted) -> the pair's one direct conversation.
    public var directPairs: [PairKey: String] = [:]
    /// The conversations each user belongs to.
    public var userConversations: [String: Set<String>] = [:]
    /// Replay's cache of each conversation's member inboxes (dropped when membership changes).
    private var memberInboxes: [String: (symbol: UInt32, inboxes: [UserInbox])] = [:]
    /// For each user here: per conversation, the newest delivered receipt sent to each member owned
    /// by another node (its seq). Reconciliation re-sends what such a member lacks (a receipt lost
    /// with a restart of this node); members here got theirs in the claim's own commit.
    public var deliveredSent = DeliveredLedger()
    /// Whether a record logged at a key (the second argument: a conversation, or the user a
    /// `delivered` claim is about) appends to a user's inbox itself (`Placement.sharesInbox`);
    /// entries for other users are logged at theirs, as `inboxAppended`. Not part of the snapshot:
    /// the node sets it.
    public var sharesInbox: @Sendable (_ user: String, _ key: String) -> Bool = { _, _ in true }

    public init() {}

    public static func pairKey(_ a: String, _ b: String) -> PairKey { a < b ? PairKey(low: a, high: b) : PairKey(low: b, high: a) }

    /// Applies one replayed record. Messages (most of any log) take a summary path that builds no
    /// message; everything else is decoded in full.
    public mutating func apply(kind: UInt16, payload: [UInt8], lsn: UInt64, inboxes: InboxDirectory) throws(EventDecodingError) {
        guard kind == 8 else { return apply(try ChorusEvent.decode(kind: kind, payload: payload), lsn: lsn, inboxes: inboxes) }
        let m = try ChorusEvent.decodeMessageSummary(payload)
        guard let (id, members) = conversations[m.conversationId]?.applyReplayed(m, payload: payload, lsn: lsn) else { return }
        appendToMembers(seq: m.seq, conversation: id, members: members, inboxes: inboxes)
    }

    private mutating func appendToMembers(seq: UInt64, conversation id: String, members: [String], inboxes: InboxDirectory) {
        let target: (symbol: UInt32, inboxes: [UserInbox])
        if let cached = memberInboxes[id] {
            target = cached
        } else {
            target = (inboxes.symbols.intern(id), members.filter { sharesInbox($0, id) }.map { inboxes.inbox($0) })
            memberInboxes[id] = target
        }
        for inbox in target.inboxes { inbox.appendReplayed(.message(conversation: target.symbol, seq: seq)) }
    }

    /// A handed-over conversation replaces any older copy (one from before it last moved away).
    mutating func adoptHandedIn(id: String, kind: ConversationKind, title: String, members: [String], lastActivity: Int64, reads: [ReadPosition]) {
        if let old = conversations[id] { for m in old.members { leave(m, id) } }
        var core = ConversationCore(id: id, kind: kind, title: title, members: members, createdAt: lastActivity)
        for r in reads { core.applyRead(by: r.userId, upTo: r.seq) }
        conversations[id] = core
        if kind == .direct, members.count == 2 { directPairs[Self.pairKey(members[0], members[1])] = id }
        for m in members { userConversations[m, default: []].insert(id) }
        memberInboxes[id] = nil
    }

    /// Puts a live conversation's state back under replay (its partition is led elsewhere now):
    /// later records apply to it as to any followed conversation.
    public mutating func stage(_ core: ConversationCore) {
        if let old = conversations[core.id] { for m in old.members { leave(m, core.id) } }
        conversations[core.id] = core
        if core.kind == .direct, core.members.count == 2 { directPairs[Self.pairKey(core.members[0], core.members[1])] = core.id }
        for m in core.members { userConversations[m, default: []].insert(core.id) }
        memberInboxes[core.id] = nil
    }

    private mutating func leave(_ userId: String, _ id: String) {
        userConversations[userId]?.remove(id)
        if userConversations[userId]?.isEmpty == true { userConversations[userId] = nil }
    }

    /// Drops the conversations `isLocal` says this node no longer owns (copies a membership change
    /// handed to another node; replay rebuilds them from the older records).
    public mutating func retainConversations(where isLocal: (String) -> Bool) {
        for (id, core) in conversations where !isLocal(id) {
            conversations[id] = nil
            memberInboxes[id] = nil
            for m in core.members { leave(m, id) }
            if core.kind == .direct, core.members.count == 2 { directPairs[Self.pairKey(core.members[0], core.members[1])] = nil }
        }
    }

    /// Applies one replayed event; message events append to members' inboxes.
    public mutating func apply(_ event: ChorusEvent, lsn: UInt64, inboxes: InboxDirectory) {
        accounts.apply(event)
        switch event {
        case .conversationCreated(let id, let kind, let title, let members, let createdAt):
            conversations[id] = ConversationCore(id: id, kind: kind, title: title, members: members, createdAt: createdAt)
            if kind == .direct, members.count == 2 { directPairs[Self.pairKey(members[0], members[1])] = id }
            for m in members { userConversations[m, default: []].insert(id) }
        case .memberAdded(let id, let userId, let at):
            conversations[id]?.addMember(userId, at: at)
            userConversations[userId, default: []].insert(id)
            memberInboxes[id] = nil
        case .memberRemoved(let id, let userId, let at):
            conversations[id]?.removeMember(userId, at: at)
            userConversations[userId]?.remove(id)
            if userConversations[userId]?.isEmpty == true { userConversations[userId] = nil }
            memberInboxes[id] = nil
        case .messageAppended(let m):
            // Mutated in place: copying the core out and back would copy its dedup window and index
            // on every message (copy-on-write), making replay quadratic.
            guard let (id, members) = conversations[m.conversationId]?.applyReturningMembers(m, lsn: lsn) else { return }
            appendToMembers(seq: m.seq, conversation: id, members: members, inboxes: inboxes)
        case .readUpTo(let userId, let id, let seq):
            guard conversations[id] != nil else { return }
            conversations[id]!.applyRead(by: userId, upTo: seq)
            for member in conversations[id]!.members where member != userId && sharesInbox(member, id) {
                inboxes.inbox(member).append(.receipt(conversationId: id, userId: userId, kind: .read, seq: seq))
            }
        case .delivered(let userId, let upTo, let items):
            inboxes.inbox(userId).noteReceived(upTo: upTo)
            for item in items {
                for r in item.recipients where sharesInbox(r, userId) {
                    inboxes.inbox(r).append(.receipt(conversationId: item.conversationId, userId: userId, kind: .delivered, seq: item.seq))
                }
            }
            deliveredSent.note(userId, items, remote: { !sharesInbox($0, userId) })
        case .userHandedIn(let u, _, _, let delivered):
            // An empty inbox: the `inboxAppended` records that follow fill it with the same inboxSeqs.
            inboxes.inbox(u.userId).restore(entries: InboxEntries(), receivedUpTo: 0)
            deliveredSent.replace(u.userId, with: delivered)
        case .conversationHandedIn(let id, let kind, let title, let members, let lastActivity, let reads):
            adoptHandedIn(id: id, kind: kind, title: title, members: members, lastActivity: lastActivity, reads: reads)
        case .messageHandedIn(let m):
            conversations[m.conversationId]?.apply(m, lsn: lsn)
            // Who was a member for the handed-in history is not known here.
            conversations[m.conversationId]?.membershipSeq = m.seq
        case .inboxAppended(let userId, _, let id, let seq, let from, let kind):
            // An entry a conversation on another node sent (logged here, its user's owner).
            if let from {
                inboxes.inbox(userId).append(.receipt(conversationId: id, userId: from, kind: kind == 2 ? .read : .delivered, seq: seq))
            } else {
                inboxes.inbox(userId).append(.message(conversationId: id, seq: seq))
            }
        default:
            break
        }
    }
}
