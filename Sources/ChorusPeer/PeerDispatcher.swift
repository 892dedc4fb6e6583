import ChorusCore
import Logging

/// The one place peer messages enter a node: decodes them (`PeerCodec`) and routes each group to
/// the part that answers it. A request that does not decode is answered `bad_request`; an event
/// that does not decode is dropped and logged. Runs on the mesh's event loops; never blocks.
public struct PeerDispatcher: Sendable {
    let engine: any EngineRequestHandler
    let sessions: any SessionPeerHandler
    let forward: any ForwardRequestHandler
    let membership: any MembershipRequestHandler
    let replication: any ReplicationRequestHandler
    let logger: Logger

    public init(
        engine: any EngineRequestHandler, sessions: any SessionPeerHandler, forward: any ForwardRequestHandler,
        membership: any MembershipRequestHandler, replication: any ReplicationRequestHandler = ReplicationOff(), logger: Logger
    ) {
        self.engine = engine
        self.sessions = sessions
        self.forward = forward
        self.membership = membership
        self.replication = replication
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
        case .replication(let r): replication.handle(r, from: peer, reply: answer)
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
