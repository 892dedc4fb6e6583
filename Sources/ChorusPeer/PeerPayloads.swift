import ChorusCore

/// A send as it travels from the sender's owner to the conversation's owner.
public struct PeerSend: Sendable, Equatable {
    public var conversationId: String
    public var from: String
    public var clientMsgId: String
    public var body: String
    /// Where the send came from (a session's origin bits; `UserInbox.bits`).
    public var origin: UInt64

    public init(conversationId: String, from: String, clientMsgId: String, body: String, origin: UInt64) {
        self.conversationId = conversationId
        self.from = from
        self.clientMsgId = clientMsgId
        self.body = body
        self.origin = origin
    }
}

/// A conversation's shape as its owner tells it.
public struct PeerConversation: Sendable, Equatable {
    public var id: String
    public var kind: ConversationKind
    public var title: String
    public var lastActivity: Int64
    public var members: [String]

    public init(id: String, kind: ConversationKind, title: String, lastActivity: Int64, members: [String]) {
        self.id = id
        self.kind = kind
        self.title = title
        self.lastActivity = lastActivity
        self.members = members
    }
}

/// A user's inbox in one conversation.
public struct PeerInboxKey: Sendable, Equatable {
    public var userId: String
    public var conversationId: String

    public init(userId: String, conversationId: String) {
        self.userId = userId
        self.conversationId = conversationId
    }
}

/// A user's receipts of one kind from one member of a conversation.
public struct PeerReceiptKey: Sendable, Equatable {
    public var userId: String
    public var conversationId: String
    public var from: String
    public var kind: ReceiptKind

    public init(userId: String, conversationId: String, from: String, kind: ReceiptKind) {
        self.userId = userId
        self.conversationId = conversationId
        self.from = from
        self.kind = kind
    }
}

/// An HTTP request run on another node. `local`: answer from that node's own state only (one
/// part of a cluster-wide list).
public struct ForwardedHTTP: Sendable, Equatable {
    public var method: String
    public var uri: String
    public var headers: [Header]
    public var body: [UInt8]
    /// The client's address as the edge saw it (the login rate limit keys on it).
    public var clientAddress: String
    public var local: Bool

    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(method: String, uri: String, headers: [Header], body: [UInt8], clientAddress: String, local: Bool) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        self.clientAddress = clientAddress
        self.local = local
    }
}

/// The answer to a `ForwardedHTTP`, written to the client as it is.
public struct ForwardedResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [ForwardedHTTP.Header]
    public var body: [UInt8]

    public init(status: Int, headers: [ForwardedHTTP.Header], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}
