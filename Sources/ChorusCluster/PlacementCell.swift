import ChorusCore
import Synchronization

/// The node's current placement, swapped when membership changes, and the keys frozen while a
/// change hands them over. Every part of the node that asks "who owns this" holds the one cell, so
/// a switch takes effect everywhere at once. Reads take a lock briefly (no I/O under it).
public final class PlacementCell: Sendable {
    private let state: Mutex<(placement: Placement, change: PendingChange?)>

    /// A change in progress: the ring it moves to. Keys whose ownership by this node differs between
    /// the two rings are frozen (refused with `unavailable`) until the change commits or aborts.
    public struct PendingChange: Sendable, Equatable {
        public let next: HashRing
        public let epoch: UInt64
        public init(next: HashRing, epoch: UInt64) {
            self.next = next
            self.epoch = epoch
        }
    }

    public init(_ placement: Placement) { state = Mutex((placement, nil)) }

    /// With replication: each partition's replicas as etcd's table names them (for `GET /v1/cluster`).
    public var replicas: [[String]]? { replicaSets.withLock { $0 } }
    private let replicaSets = Mutex<[[String]]?>(nil)
    public func publish(replicas: [[String]]) { replicaSets.withLock { $0 = replicas } }

    public var current: Placement { state.withLock { $0.placement } }
    public var pending: PendingChange? { state.withLock { $0.change } }

    /// Freezes the keys that `next` moves to or from this node.
    public func begin(_ change: PendingChange) { state.withLock { $0.change = change } }

    /// Switches to the pending ring (if `epoch` is pending) and unfreezes.
    public func commit(epoch: UInt64) {
        state.withLock { s in
            guard let change = s.change, change.epoch == epoch else { return }
            s.placement = Placement(ring: change.next, selfId: s.placement.selfId, leaders: s.placement.leaders)
            s.change = nil
        }
    }

    /// With replication: the partitions' leaders as etcd now names them.
    public func lead(_ leaders: [String]) {
        state.withLock { $0.placement = Placement(ring: $0.placement.ring, selfId: $0.placement.selfId, leaders: leaders) }
    }

    /// With replication: the ring etcd's members make now (a join or a retirement). Nothing is
    /// frozen: routing follows the partitions' leaders, and replicas move by their own steps.
    public func adopt(ring: HashRing) {
        state.withLock { $0.placement = Placement(ring: ring, selfId: $0.placement.selfId, leaders: $0.placement.leaders) }
    }

    /// Unfreezes under the current ring.
    public func abort() { state.withLock { $0.change = nil } }

    // The Placement questions, answered by the current ring.
    public var selfId: String { current.selfId }
    public var ring: HashRing { current.ring }
    public var isSingleNode: Bool { current.isSingleNode }
    public var peers: [String] { current.peers }
    public var serving: [String] { current.serving }
    public func owner(ofUser userId: String) -> String { current.owner(ofUser: userId) }
    public func owner(ofUsername username: String) -> String { current.owner(ofUsername: username) }
    public func owner(ofConversation id: String) -> String { current.owner(ofConversation: id) }
    public func owner(ofPair a: String, _ b: String) -> String { current.owner(ofPair: a, b) }
    public func isLocal(user userId: String) -> Bool { current.isLocal(user: userId) }
    public func isLocal(conversation id: String) -> Bool { current.isLocal(conversation: id) }
    public func sharesInbox(user: String, with key: String) -> Bool { current.sharesInbox(user: user, with: key) }
    public func mintGroup() -> String { current.mintGroup() }

    /// Whether a point moves to or from this node in the pending change.
    public func isFrozen(point: UInt64) -> Bool { state.withLock { Self.frozen($0.placement, $0.change, point) } }

    private static func frozen(_ placement: Placement, _ change: PendingChange?, _ point: UInt64) -> Bool {
        guard let change else { return false }
        let me = placement.selfId
        let before = placement.ring.members.contains(me) && placement.ring.owner(ofPoint: point) == me
        return before != (change.next.owner(ofPoint: point) == me)
    }

    /// Refuses work on a key this node may not change now: frozen by a hand-over, or no longer its
    /// own (a request routed by a node that has not switched rings yet). The client retries.
    public func admit(point: UInt64) throws(ChatError) {
        let (frozen, owner, me) = state.withLock { s in
            (Self.frozen(s.placement, s.change, point), s.placement.isSingleNode ? s.placement.selfId : s.placement.owner(ofPoint: point), s.placement.selfId)
        }
        if frozen { throw .unavailable("moving to another node (membership change); retry shortly") }
        if owner != me { throw .unavailable("owned by node \(owner) now; retry") }
    }

    public func admit(user userId: String) throws(ChatError) { try admit(point: KeyPoint.of(id: userId)) }
    public func admit(conversation id: String) throws(ChatError) { try admit(point: KeyPoint.of(id: id)) }
    public func admit(username: String) throws(ChatError) { try admit(point: KeyPoint.of(username: username)) }
}
