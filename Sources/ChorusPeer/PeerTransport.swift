import ChorusCore

/// Bytes to and from other nodes (the executable plugs the mesh in). Requests are answered once;
/// one-way payloads are best effort (used only where a client recovers).
public protocol PeerTransport: Sendable {
    /// Sends `payload` to `node`; `reply` runs once, on any thread. Transport failures (unreachable,
    /// timeout, overloaded) arrive as `.unavailable`.
    func request(_ payload: [UInt8], to node: String, reply: @escaping @Sendable (Result<[UInt8], ChatError>) -> Void)
    func send(_ payload: [UInt8], to node: String)
}

/// What a request's answer is handed to: a reply, or the refusal (a `ChatError` the asker sees as
/// it would on one node).
public typealias PeerReplyHandler = @Sendable (Result<PeerReply, ChatError>) -> Void

/// Typed calls to other nodes: encodes with `PeerCodec`, decodes the answer. Transport failures and
/// answers that do not decode are `unavailable`.
public struct PeerClient: Sendable {
    public let transport: any PeerTransport

    public init(_ transport: any PeerTransport) { self.transport = transport }

    /// `reply` runs once, on any thread.
    public func call(_ request: PeerRequest, to node: String, reply: @escaping PeerReplyHandler) {
        transport.request(PeerCodec.encode(request), to: node) { result in
            reply(result.flatMap(Self.answer))
        }
    }

    public func call(_ request: PeerRequest, to node: String) async throws(ChatError) -> PeerReply {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<PeerReply, ChatError>, Never>) in
            call(request, to: node) { c.resume(returning: $0) }
        }
        return try result.get()
    }

    /// A one-way message (best effort).
    public func tell(_ event: PeerEvent, to node: String) {
        transport.send(PeerCodec.encode(event), to: node)
    }

    static func answer(_ bytes: [UInt8]) -> Result<PeerReply, ChatError> {
        do { return try PeerCodec.decodeAnswer(bytes) } catch { return .failure(.unavailable("malformed peer answer (\(error))")) }
    }
}
