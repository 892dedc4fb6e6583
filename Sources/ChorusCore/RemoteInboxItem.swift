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

    public init(userId: String, message: MessageRecord, origin: UInt64) {
        self.init(userId: userId, entry: .message(message), origin: origin)
    }

    public init(userId: String, entry: Entry, origin: UInt64 = 0) {
        self.userId = userId
        self.entry = entry
        self.origin = origin
    }
}
