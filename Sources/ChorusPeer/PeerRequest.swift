import ChorusCluster
import ChorusCore
import ChorusReplication

/// A request one node makes of another; answered once with a `PeerReply` or a `ChatError`.
/// Grouped by the part of the receiving node that answers it (`PeerDispatcher` routes on the group).
public enum PeerRequest: Sendable, Equatable {
    case engine(EngineRequest)
    case session(SessionRequest)
    case forward(ForwardRequest)
    case membership(MembershipRequest)
    case replication(ReplicationRequest)
}

/// Requests answered by the engine of the node that owns the key (a user or a conversation).
public enum EngineRequest: Sendable, Equatable {
    /// Which user a token belongs to. Reply: `.user` (without the password hash).
    case authenticate(token: String)
    /// A send to a conversation the receiver owns, from its sender's owner. Reply: `.sent`.
    case send(PeerSend)
    /// Messages of a conversation the receiver owns, by seq. Reply: `.messages`.
    case messages(conversationId: String, seqs: [UInt64])
    /// Find or create the direct conversation of a pair the receiver owns. Reply: `.conversation`.
    case direct(creator: String, other: String)
    /// A member read a conversation the receiver owns up to `upTo`. Reply: `.done`.
    case read(conversationId: String, userId: String, upTo: UInt64)
    /// Inbox entries for users the receiver owns, from a conversation's owner, appended in order.
    /// Reply: `.seqs`, one inboxSeq per item.
    case inboxAppend([RemoteInboxItem])
    /// Whether every one of these users (owned by the receiver) exists. Reply: `.allExist`.
    case usersExist([String])
    /// Which of `among` share a conversation held by the receiver with `userId` (presence
    /// visibility). Reply: `.users`.
    case sharing(userId: String, among: [String])
    /// How far each user's inbox goes in each conversation (a reconciliation). Reply: `.seqs`.
    case inboxHigh([PeerInboxKey])
    /// How far each user's inbox goes in receipts of a kind from a member. Reply: `.seqs`.
    case receiptHigh([PeerReceiptKey])
}

/// Requests answered by the gateway's session relay and presence.
public enum SessionRequest: Sendable, Equatable {
    /// Open a WebSocket session on the user's owner for a client connected to the asking node.
    /// Reply: `.done` once the session runs.
    case open(proxy: UInt64, token: String)
    /// The presence of users the receiver owns; with `watch`, the asker hears every change
    /// (`PeerEvent.presence`). Reply: `.presence`, one status per user.
    case presence(users: [String], watch: Bool)
    /// `userId` is typing in a conversation the receiver owns. Reply: `.done`, or the refusal.
    case typing(conversationId: String, userId: String)
    /// How many WebSocket sessions a user the receiver owns holds (the session cap, checked before
    /// a relaying node upgrades). Reply: `.seqs`, one count.
    case sessionCount(userId: String)
}

/// Requests answered by the gateway's HTTP side.
public enum ForwardRequest: Sendable, Equatable {
    /// An HTTP request run on the node that owns it. Reply: `.http`.
    case http(ForwardedHTTP)
    /// The receiver's client-facing HTTP address (for `GET /v1/cluster`). Reply: `.info`.
    case info
}

/// Steps of a membership change, from its coordinator (docs/CLUSTER.md, "Changing membership").
public enum MembershipRequest: Sendable, Equatable {
    /// Freeze the keys that move and hand the leaving ones over. Reply: `.done` once prepared.
    case prepare(ClusterMembership)
    /// How the change with `epoch` stands on the receiver. Reply: `.phase`.
    case status(epoch: UInt64)
    /// Switch to the new membership. Reply: `.done`.
    case commit(ClusterMembership)
    /// Go back to the current membership. Reply: `.done`.
    case abort(ClusterMembership)
    /// A batch of state for keys the next ring gives the receiver, logged there before the reply.
    /// Reply: `.done`.
    case handover(epoch: UInt64, events: [ChorusEvent])
}

/// Replication of a partition's log (docs/REPLICATION.md), answered by the receiver's copy of it.
public enum ReplicationRequest: Sendable, Equatable {
    /// Promise `epoch` for the partition and tell how far this copy goes. Reply: `.fenced`.
    case fence(partition: PartitionId, epoch: UInt64)
    /// Records of the partition from its leader, one per `append.entryEpochs` entry, in index order.
    /// Reply: `.replica`, once what it accepted is durable.
    case append(partition: PartitionId, AppendRequest, records: [ReplicatedRecord])
}

/// One record of a partition's log as it travels: the engine's event kind and payload.
public struct ReplicatedRecord: Sendable, Equatable {
    public var kind: UInt16
    public var payload: [UInt8]

    public init(kind: UInt16, payload: [UInt8]) {
        self.kind = kind
        self.payload = payload
    }
}
