/// Why a chat operation was refused. The gateway maps each case to its wire code and HTTP status.
public enum ChatError: Error, Equatable, Sendable {
    case badRequest(String)
    case unauthorized
    case invalidCredentials
    case usernameTaken
    case unknownUser
    case unknownConversation
    case notMember
    /// Only a group's owner removes other members (PROTOCOL.md section 6).
    case notOwner
    case groupTooLarge(limit: Int)
    case emptyBody
    case bodyTooLarge(limit: Int)
    case rateLimited(retryAfterMs: Int)
    /// The owning node or the log cannot take the change now; retry with the same client id.
    case unavailable(String)

    /// The stable snake_case code of PROTOCOL.md.
    public var code: String {
        switch self {
        case .badRequest: "bad_request"
        case .unauthorized: "unauthorized"
        case .invalidCredentials: "invalid_credentials"
        case .usernameTaken: "username_taken"
        case .unknownUser: "unknown_user"
        case .unknownConversation: "unknown_conversation"
        case .notMember: "not_member"
        case .notOwner: "not_owner"
        case .groupTooLarge: "group_too_large"
        case .emptyBody: "empty_body"
        case .bodyTooLarge: "body_too_large"
        case .rateLimited: "rate_limited"
        case .unavailable: "unavailable"
        }
    }

    /// A human message.
    public var message: String {
        switch self {
        case .badRequest(let why): why
        case .unauthorized: "missing, expired, revoked or invalid token"
        case .invalidCredentials: "wrong username or password"
        case .usernameTaken: "that username is taken"
        case .unknownUser: "no such user"
        case .unknownConversation: "no such conversation"
        case .notMember: "you are not a member of this conversation"
        case .notOwner: "only the group's owner removes other members"
        case .groupTooLarge(let limit): "a group holds at most \(limit) members"
        case .emptyBody: "message body is empty"
        case .bodyTooLarge(let limit): "message body is over \(limit) bytes"
        case .rateLimited(let ms): "too many requests; retry in \(ms) ms"
        case .unavailable(let why): "temporarily unavailable: \(why)"
        }
    }
}
