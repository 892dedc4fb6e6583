/// A registered account as the log records it.
public struct UserRecord: Sendable, Equatable {
    public var userId: String
    public var username: String
    public var email: String
    public var displayName: String
    public var passwordHash: String
    public var createdAt: Int64

    public init(userId: String, username: String, email: String, displayName: String, passwordHash: String, createdAt: Int64) {
        self.userId = userId
        self.username = username
        self.email = email
        self.displayName = displayName
        self.passwordHash = passwordHash
        self.createdAt = createdAt
    }
}

/// A message as stored: its place (`conversationId`, `seq`) and content.
public struct MessageRecord: Sendable, Equatable {
    public var conversationId: String
    public var seq: UInt64
    public var from: String
    public var body: String
    public var ts: Int64
    public var clientMsgId: String

    /// The message's id, `conversationId:seq`: derived, not stored (at 17 bytes or more it would be
    /// one heap allocation per message held).
    public var messageId: String { "\(conversationId):\(seq)" }

    public init(conversationId: String, seq: UInt64, from: String, body: String, ts: Int64, clientMsgId: String) {
        self.conversationId = conversationId
        self.seq = seq
        self.from = from
        self.body = body
        self.ts = ts
        self.clientMsgId = clientMsgId
    }
}

/// One delivered receipt of a `delivered` event.
public struct DeliveredItem: Sendable, Equatable {
    public var conversationId: String
    public var seq: UInt64
    public var recipients: [String]

    public init(conversationId: String, seq: UInt64, recipients: [String]) {
        self.conversationId = conversationId
        self.seq = seq
        self.recipients = recipients
    }
}

/// A live token as a hand-over carries it (hash only; the token itself is never stored).
public struct TokenRecord: Sendable, Equatable {
    public var hash: [UInt8]
    public var expiresAt: Int64
    public init(hash: [UInt8], expiresAt: Int64) {
        self.hash = hash
        self.expiresAt = expiresAt
    }
}

/// A member's read position in a conversation.
public struct ReadPosition: Sendable, Equatable {
    public var userId: String
    public var seq: UInt64
    public init(userId: String, seq: UInt64) {
        self.userId = userId
        self.seq = seq
    }
}

public enum ConversationKind: UInt8, Sendable, Equatable {
    case direct = 1
    case group = 2

    public var name: String { self == .direct ? "direct" : "group" }
}
