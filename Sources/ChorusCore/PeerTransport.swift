/// The mesh as the gateway and the engine see it (the executable plugs `ChorusMesh` in). Requests
/// are answered once; one-way payloads are best effort (used only where a client recovers).
public protocol PeerTransport: Sendable {
    /// Sends `payload` to `node`; `reply` runs once, on any thread. Transport failures (unreachable,
    /// timeout, overloaded) arrive as `.unavailable`.
    func request(_ payload: [UInt8], to node: String, reply: @escaping @Sendable (Result<[UInt8], ChatError>) -> Void)
    func send(_ payload: [UInt8], to node: String)
}

extension PeerTransport {
    public func request(_ payload: [UInt8], to node: String) async throws(ChatError) -> [UInt8] {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<[UInt8], ChatError>, Never>) in
            request(payload, to: node) { c.resume(returning: $0) }
        }
        return try result.get()
    }
}

/// The first byte of every peer payload: what it is. Bounds: a payload is one mesh frame (1 MiB).
public enum PeerKind: UInt8, Sendable {
    /// An HTTP request executed on the node that owns it (request: `ForwardedRequest`).
    case http = 1
    /// Which user a token belongs to (request: token; answer: user id and username).
    case authenticate = 2
    /// Open a WebSocket session on the user's owner for a client connected elsewhere.
    case sessionOpen = 3
    /// A client's text frame, edge to owner (one-way, in order on the link).
    case sessionFrame = 4
    /// A server frame, owner to edge (one-way).
    case sessionPush = 5
    /// Either side ends a proxied session (one-way), with a close code.
    case sessionClose = 6
    /// The node's client-facing HTTP address (for `GET /v1/cluster`).
    case info = 7
    /// A send to a conversation this node owns, from its sender's owner.
    case conversationSend = 16
    /// Messages of a conversation this node owns, by seq (for `sync` on a member's owner).
    case conversationMessages = 17
    /// Find or create the direct conversation of a pair this node owns.
    case conversationDirect = 18
    /// Inbox entries for users this node owns, from a conversation's owner.
    case inboxAppend = 19
    /// Which of these users (owned by this node) exist.
    case usersExist = 20
    /// A member read a conversation this node owns up to a seq.
    case conversationRead = 21
    /// Someone is typing in a conversation this node owns (a request from the typist's owner,
    /// answered with the refusal if any; one-way from older nodes).
    case typing = 22
    /// A server frame for every session of these users, owned by this node (one-way).
    case userPush = 23
    /// The presence of users this node owns; with `watch`, the asker is told of every change.
    case presenceWatch = 24
    /// A watched user's presence changed (one-way, from its owner).
    case presence = 25
    /// How far these users' inboxes (owned here) go in these conversations (a reconciliation).
    case inboxHigh = 26
    /// How far these users' inboxes (owned here) go in receipts (of a kind) from these members.
    case receiptHigh = 27
    /// A membership change step from its coordinator (prepare, status, commit, abort).
    case membership = 28
    /// A batch of handed-over state for keys the next ring gives the receiver.
    case handover = 29
}

/// An answer's envelope: `ok` then the body, or a `ChatError`.
public enum PeerAnswer {
    public static func ok(_ body: [UInt8] = []) -> [UInt8] { [0] + body }

    public static func failure(_ e: ChatError) -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        w.write(UInt8(1))
        e.write(to: &w)
        return w.bytes
    }

    /// The body of an `ok`, or the error it carries (a malformed answer is `unavailable`).
    public static func decode(_ bytes: [UInt8]) -> Result<ArraySlice<UInt8>, ChatError> {
        guard let first = bytes.first else { return .failure(.unavailable("empty peer answer")) }
        if first == 0 { return .success(bytes.dropFirst()) }
        var r = ByteReader(bytes, offset: 1)
        guard let e = try? ChatError.read(from: &r) else { return .failure(.unavailable("malformed peer answer")) }
        return .failure(e)
    }
}

extension ChatError {
    /// Code, then the one parameter some cases carry (message text or a number).
    public func write(to w: inout ByteWriter) {
        w.writeString(code)
        switch self {
        case .badRequest(let s), .unavailable(let s): w.writeString(s)
        case .groupTooLarge(let n), .bodyTooLarge(let n), .rateLimited(let n): w.writeString(String(n))
        default: w.writeString("")
        }
    }

    public static func read(from r: inout ByteReader) throws(ByteReaderError) -> ChatError {
        let code = try r.readString(bound: 64)
        let param = try r.readString(bound: 4096)
        switch code {
        case "bad_request": return .badRequest(param)
        case "unauthorized": return .unauthorized
        case "invalid_credentials": return .invalidCredentials
        case "username_taken": return .usernameTaken
        case "unknown_user": return .unknownUser
        case "unknown_conversation": return .unknownConversation
        case "not_member": return .notMember
        case "group_too_large": return .groupTooLarge(limit: Int(param) ?? 0)
        case "empty_body": return .emptyBody
        case "body_too_large": return .bodyTooLarge(limit: Int(param) ?? 0)
        case "rate_limited": return .rateLimited(retryAfterMs: Int(param) ?? 1000)
        default: return .unavailable(param.isEmpty ? "peer answered \(code)" : param)
        }
    }
}
