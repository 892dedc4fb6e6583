import ChorusCluster
import ChorusCore
import ChorusReplication

/// The answer to a `PeerRequest` (failures travel as a `ChatError` beside it, never as a reply).
public enum PeerReply: Sendable, Equatable {
    /// The request was carried out; nothing to return.
    case done
    /// A user as peers see it: the password hash is never sent (empty here).
    case user(UserRecord)
    /// A send's outcome on the conversation's owner.
    case sent(SentMessage)
    case messages([MessageRecord])
    case conversation(PeerConversation, created: Bool)
    /// One number per item asked about (inboxSeqs appended, or the highest held).
    case seqs([UInt64])
    case allExist(Bool)
    /// User ids (`sharing`).
    case users([String])
    /// One status per user asked about, in order.
    case presence([PresenceStatus])
    case http(ForwardedResponse)
    case info(httpAddress: String)
    case phase(MembershipPhase)
    /// A copy's answer to a fence.
    case fenced(ReplicaFollower.FenceAnswer)
    /// A copy's answer to an append.
    case replica(ReplicaReply)
}

extension PeerReply {
    /// What a caller that got the wrong kind of reply reports (a peer that is not Chorus's peer).
    public static func unexpected(_ reply: PeerReply) -> ChatError { .unavailable("unexpected peer reply \(reply.name)") }

    var name: String {
        switch self {
        case .done: "done"
        case .user: "user"
        case .sent: "sent"
        case .messages: "messages"
        case .conversation: "conversation"
        case .seqs: "seqs"
        case .allExist: "allExist"
        case .users: "users"
        case .presence: "presence"
        case .http: "http"
        case .info: "info"
        case .phase: "phase"
        case .fenced: "fenced"
        case .replica: "replica"
        }
    }
}
