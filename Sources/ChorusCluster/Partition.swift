/// One of the fixed slices of the ring that replication, leadership and failover work on.
///
/// A key's partition is the top bits of its point (`KeyPoint`), so the keys that live together (a
/// user, its username and tokens; a direct pair's conversation) are in one partition under every
/// membership.
public struct PartitionId: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16

    public init?(_ rawValue: Int) {
        guard rawValue >= 0, rawValue < Partitioning.count else { return nil }
        self.rawValue = UInt16(rawValue)
    }

    public static func < (a: PartitionId, b: PartitionId) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "p\(rawValue)" }
}

/// How points map to partitions: 64 equal arcs of the 64-bit circle.
///
/// 64 keeps etcd's table small (one key per partition) and gives each of 3 to 16 nodes several
/// partitions to lead, so a failover spreads a dead node's load over the survivors.
public enum Partitioning {
    public static let count = 64
    static let shift: UInt64 = 58

    public static func partition(ofPoint point: UInt64) -> PartitionId { PartitionId(Int(point >> shift))! }

    /// The first point of a partition's arc.
    public static func startPoint(of p: PartitionId) -> UInt64 { UInt64(p.rawValue) << shift }

    public static var all: [PartitionId] { (0..<count).map { PartitionId($0)! } }

    /// A partition's replicas under `ring`: the first `factor` distinct members walking clockwise
    /// from its start point. The first is its preferred leader.
    public static func replicas(of p: PartitionId, ring: HashRing, factor: Int) -> [String] {
        ring.distinctOwners(fromPoint: startPoint(of: p), count: factor)
    }
}
