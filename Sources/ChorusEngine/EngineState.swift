import ChorusCore

/// Everything replay rebuilds, applied event by event in LSN order. Live changes go through the same
/// cores in the same order (see docs/ENGINE.md), so a restart reproduces every seq and inboxSeq.
public struct EngineState: Sendable {
    public var accounts = AccountsState()
    public var conversations: [String: ConversationCore] = [:]
    /// "userA|userB" (sorted) -> the pair's one direct conversation.
    public var directPairs: [String: String] = [:]
    /// The conversations each user belongs to.
    public var userConversations: [String: Set<String>] = [:]

    public init() {}

    public static func pairKey(_ a: String, _ b: String) -> String { a < b ? "\(a)|\(b)" : "\(b)|\(a)" }

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
        case .memberRemoved(let id, let userId, let at):
            conversations[id]?.removeMember(userId, at: at)
            userConversations[userId]?.remove(id)
        case .messageAppended(let m):
            // Mutated in place: copying the core out and back would copy its dedup window and index
            // on every message (copy-on-write), making replay quadratic.
            guard let members = conversations[m.conversationId]?.applyReturningMembers(m, lsn: lsn) else { return }
            for member in members {
                inboxes.inbox(member).append(.message(conversationId: m.conversationId, seq: m.seq))
            }
        case .readUpTo(let userId, let id, let seq):
            guard conversations[id] != nil else { return }
            conversations[id]!.applyRead(by: userId, upTo: seq)
            for member in conversations[id]!.members where member != userId {
                inboxes.inbox(member).append(.receipt(conversationId: id, userId: userId, kind: .read, seq: seq))
            }
        case .delivered(let userId, let upTo, let items):
            inboxes.inbox(userId).noteReceived(upTo: upTo)
            for item in items {
                for r in item.recipients {
                    inboxes.inbox(r).append(.receipt(conversationId: item.conversationId, userId: userId, kind: .delivered, seq: item.seq))
                }
            }
        default:
            break
        }
    }
}
