import ChorusCore

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

/// Answers `ReplicationRequest`s: the receiver's copies of partition logs.
public protocol ReplicationRequestHandler: Sendable {
    /// Called on the receiving connection's event loop, in arrival order (appends rely on it);
    /// must not block. `reply` runs once, from any thread.
    func handle(_ request: ReplicationRequest, from peer: String, reply: @escaping PeerReplyHandler)
}

/// The replication handler of a node without `--etcd`: every key has one copy, so a peer asking
/// for replication is misconfigured.
public struct ReplicationOff: ReplicationRequestHandler {
    public init() {}
    public func handle(_ request: ReplicationRequest, from peer: String, reply: @escaping PeerReplyHandler) {
        reply(.failure(.unavailable("replication is off on this node (no --etcd)")))
    }
}

/// What a peer's status change means to the node.
public enum PeerReachability: Sendable, Equatable {
    case reachable
    case unreachable
}
