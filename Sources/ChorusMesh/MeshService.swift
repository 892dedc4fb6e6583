import ChorusCluster

/// Why a mesh call failed. The gateway maps every case to `unavailable`.
public enum MeshError: Error, Sendable, Equatable {
    /// No accepted connection to the peer right now.
    case unreachable(peer: String)
    case timeout(peer: String)
    /// The peer's connection queue or outstanding-request bound is full.
    case overloaded(peer: String)
    /// The peer answered with a failure frame.
    case remote(peer: String, reason: String)
    case unknownPeer(String)
    case stopped
}

/// What the node does with what peers send it. Called on event loop threads; must not block.
public protocol MeshService: Sendable {
    /// A peer's request: call `reply` exactly once, from any thread.
    func handle(request payload: [UInt8], from peer: String, reply: @escaping @Sendable (Result<[UInt8], MeshError>) -> Void)
    /// A peer's one-way frame.
    func handle(oneWay payload: [UInt8], from peer: String)
    /// The failure detector's view of `peer` changed.
    func peer(_ peer: String, changedTo status: FailureDetector.Status)
}

extension MeshService {
    public func peer(_ peer: String, changedTo status: FailureDetector.Status) {}
}
