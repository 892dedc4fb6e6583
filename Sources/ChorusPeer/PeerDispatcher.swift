import ChorusCore
import Logging

/// Answers `EngineRequest`s: the engine of the node that owns the key.
public protocol EngineRequestHandler: Sendable {
    /// Called on the receiving connection's event loop, in arrival order (inbox appends rely on
    /// it); must not block. `reply` runs once, from any thread.
    func handle(_ request: EngineRequest, from peer: String, reply: @escaping PeerReplyHandler)
    /// `peer` is reachable again (or for the first time): put back what its users may have missed.
    func peerReachable(_ peer: String)
}

/// Answers `SessionRequest`s and takes every `PeerEvent`: the gateway's session relay and presence.
public protocol SessionPeerHandler: Sendable {
    func handle(_ request: SessionRequest, from peer: String, reply: @escaping PeerReplyHandler)
    func handle(_ event: PeerEvent, from peer: String)
    /// `peer` is unreachable (dead): sessions relayed through it or owned by it end.
    func peerDown(_ peer: String)
}

/// Answers `ForwardRequest`s: HTTP requests run for another node, and this node's address.
public protocol ForwardRequestHandler: Sendable {
    func handle(_ request: ForwardRequest, from peer: String, reply: @escaping PeerReplyHandler)
}

/// Answers `MembershipRequest`s: the node's part in a membership change.
public protocol MembershipRequestHandler: Sendable {
    func handle(_ request: MembershipRequest, from peer: String) async -> Result<PeerReply, ChatError>
}

/// What a peer's status change means to the node.
public enum PeerReachability: Sendable, Equatable {
    case reachable
    case unreachable
}

/// The one place peer messages enter a node: decodes them (`PeerCodec`) and routes each group to
/// the part that answers it. A request that does not decode is answered `bad_request`; an event
/// that does not decode is dropped and logged. Runs on the mesh's event loops; never blocks.
public struct PeerDispatcher: Sendable {
    let engine: any EngineRequestHandler
    let sessions: any SessionPeerHandler
    let forward: any ForwardRequestHandler
    let membership: any MembershipRequestHandler
    let logger: Logger

    public init(
        engine: any EngineRequestHandler, sessions: any SessionPeerHandler, forward: any ForwardRequestHandler,
        membership: any MembershipRequestHandler, logger: Logger
    ) {
        self.engine = engine
        self.sessions = sessions
        self.forward = forward
        self.membership = membership
        self.logger = logger
    }

    /// A peer's request; `reply` gets the encoded answer once, from any thread.
    public func request(_ bytes: [UInt8], from peer: String, reply: @escaping @Sendable ([UInt8]) -> Void) {
        let request: PeerRequest
        do throws(PeerDecodingError) {
            request = try PeerCodec.decodeRequest(bytes)
        } catch {
            return reply(PeerCodec.encode(.failure(.badRequest("malformed peer request (\(error))"))))
        }
        let answer: PeerReplyHandler = { reply(PeerCodec.encode($0)) }
        switch request {
        case .engine(let r): engine.handle(r, from: peer, reply: answer)
        case .session(let r): sessions.handle(r, from: peer, reply: answer)
        case .forward(let r): forward.handle(r, from: peer, reply: answer)
        case .membership(let r): Task { [membership] in answer(await membership.handle(r, from: peer)) }
        }
    }

    /// A peer's one-way message.
    public func event(_ bytes: [UInt8], from peer: String) {
        let event: PeerEvent
        do throws(PeerDecodingError) {
            event = try PeerCodec.decodeEvent(bytes)
        } catch {
            return logger.warning("peer event refused", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
        sessions.handle(event, from: peer)
    }

    /// The failure detector changed its mind about `peer`.
    public func peer(_ peer: String, is reachability: PeerReachability) {
        switch reachability {
        case .reachable: engine.peerReachable(peer)
        case .unreachable: sessions.peerDown(peer)
        }
    }
}
