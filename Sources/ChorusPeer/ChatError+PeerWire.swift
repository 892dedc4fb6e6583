import ChorusCore

extension ChatError {
    /// Code, then the one parameter some cases carry (message text or a number).
    func write(to w: inout ByteWriter) {
        w.writeString(code)
        switch self {
        case .badRequest(let s), .unavailable(let s): w.writeString(s)
        case .groupTooLarge(let n), .bodyTooLarge(let n), .rateLimited(let n): w.writeString(String(n))
        default: w.writeString("")
        }
    }

    /// An error a peer sent; a code this build does not know is `unavailable`.
    static func read(from r: inout ByteReader) throws(ByteReaderError) -> ChatError {
        let code = try r.readString(bound: 64)
        let param = try r.readString(bound: PeerBounds.errorText)
        switch code {
        case "bad_request": return .badRequest(param)
        case "unauthorized": return .unauthorized
        case "invalid_credentials": return .invalidCredentials
        case "username_taken": return .usernameTaken
        case "unknown_user": return .unknownUser
        case "unknown_conversation": return .unknownConversation
        case "not_member": return .notMember
        case "not_owner": return .notOwner
        case "group_too_large": return .groupTooLarge(limit: Int(param) ?? 0)
        case "empty_body": return .emptyBody
        case "body_too_large": return .bodyTooLarge(limit: Int(param) ?? 0)
        case "rate_limited": return .rateLimited(retryAfterMs: Int(param) ?? 1000)
        default: return .unavailable(param.isEmpty ? "peer answered \(code)" : param)
        }
    }
}
