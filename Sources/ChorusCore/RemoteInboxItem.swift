/// Whether a receipt says a member holds messages (`delivered`) or has read them (`read`).
public enum ReceiptKind: UInt8, Sendable, Equatable {
    case delivered = 1
    case read = 2

    public var name: String { self == .delivered ? "delivered" : "read" }
}

/// An inbox entry for a user owned by another node: a message, or a receipt from another member.
public struct RemoteInboxItem: Sendable, Equatable {
    public enum Entry: Sendable, Equatable {
        case message(MessageRecord)
        case receipt(conversationId: String, from: String, kind: ReceiptKind, seq: UInt64)
    }

    public var userId: String
    public var entry: Entry
    /// The sending session on the user's owner (that session gets the `ack`, not a live copy); 0: none.
    public var origin: UInt64
    /// For a message: the seq of the conversation's message before it, which the user's inbox must
    /// already hold (the user was a member for both); 0 when there is none to check (the first
    /// message after a membership change, or a repair). The owner answers `gap` rather than take
    /// the entry past a missing one: owners repair only above the highest entry they hold.
    public var previous: UInt64

    /// What an owner answers, in place of an inboxSeq, for an entry whose `previous` it lacks (the
    /// entry is not taken; the sender puts the missing ones first and sends it again).
    public static let gap = UInt64.max

    public init(userId: String, message: MessageRecord, origin: UInt64, previous: UInt64 = 0) {
        self.init(userId: userId, entry: .message(message), origin: origin, previous: previous)
    }

    public init(userId: String, entry: Entry, origin: UInt64 = 0, previous: UInt64 = 0) {
        self.userId = userId
        self.entry = entry
        self.origin = origin
        self.previous = previous
    }
}
