import ChorusCluster

/// What one node does about each partition, given etcd's table and the nodes that hold a lease
/// (docs/REPLICATION.md, "Failover"). Pure: the node's replication service feeds it every change
/// and a periodic tick, and carries out its decisions.
///
/// Rules:
/// - an entry naming this node, on the disk it answered from (`mayLead`), is led, once per epoch;
/// - an entry that named this node when it started is not trusted (its unsynced tail is gone, and
///   followers may hold records of that epoch it lacks): the node takes it over again, in a new
///   epoch; so is one whose disk changed (`mayLead` false);
/// - a partition led here whose entry names another node is stepped down from;
/// - a partition whose leader holds no lease is taken over by the live replicas in ring order:
///   rank k after k x `stagger` (so one usually acts, and another if it dies mid-failover);
/// - a partition led here for `rebalanceAfter` whose preferred replica (the first, in ring order)
///   is another live node is handed off to it, so leaders spread out again after failovers.
public struct ReplicaRoles<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    public enum Decision: Equatable, Sendable {
        /// Start leading this epoch from the followed copy: commit the epoch start, promote, serve.
        case lead(PartitionId, PartitionAssignment)
        /// Stop acknowledging for the partition: another node leads it now.
        case stepDown(PartitionId)
        /// Fence the replicas in the next epoch, choose the most up-to-date copy, swap the entry.
        case takeOver(PartitionId, PartitionAssignment)
        /// Stop serving, let `to` catch up, follow, then take the partition over in a new epoch
        /// (in which `to` wins the tie, being first in ring order); `handedOff` records it.
        case handOff(PartitionId, to: String)
    }

    public let selfId: String
    public let incarnation: UInt64
    public let stagger: Duration
    /// How long a partition is led here before it goes back to its preferred replica (nil: never).
    public let rebalanceAfter: Duration?
    /// The epoch each partition is led here in.
    public private(set) var leading: [PartitionId: UInt64] = [:]
    /// Entries that named this node when it started, by epoch: not led as they are.
    private var distrusted: [PartitionId: UInt64]?
    private var deadSince: [PartitionId: Instant] = [:]
    private var leadingSince: [PartitionId: Instant] = [:]

    public init(selfId: String, incarnation: UInt64, stagger: Duration = .milliseconds(500), rebalanceAfter: Duration? = nil) {
        self.selfId = selfId
        self.incarnation = incarnation
        self.stagger = stagger
        self.rebalanceAfter = rebalanceAfter
    }

    /// The node stopped leading `p` in `epoch` of its own accord (a hand-off): the entry, which
    /// still names it, is taken over in a new epoch rather than led or stepped down from.
    public mutating func handedOff(_ p: PartitionId, epoch: UInt64) {
        guard leading[p] == epoch else { return }
        leading[p] = nil
        leadingSince[p] = nil
        distrusted?[p] = epoch
    }

    /// The decisions for `table` and the live nodes at `now`. A `takeOver` repeats on every call
    /// while it is due; the shell runs one per partition at a time.
    public mutating func decide(table: [PartitionId: PartitionAssignment], alive: Set<String>, now: Instant) -> [Decision] {
        if distrusted == nil {
            distrusted = table.filter { $0.value.leader == selfId }.mapValues(\.epoch)
        }
        var out: [Decision] = []
        let ranks = FailoverDuty.ranks(table: table, alive: alive, selfId: selfId)
        for (p, a) in table.sorted(by: { $0.key < $1.key }) {
            if a.leader == selfId {
                deadSince[p] = nil
                if leading[p] == a.epoch {
                    if let after = rebalanceAfter, let preferred = a.replicas.first, preferred != selfId, alive.contains(preferred),
                        let since = leadingSince[p], since.duration(to: now) >= after
                    {
                        out.append(.handOff(p, to: preferred))
                    }
                    continue
                }
                if let stale = leading[p], stale != a.epoch {
                    out.append(.stepDown(p))
                    leading[p] = nil
                }
                if distrusted?[p] == a.epoch || !a.mayLead(selfId, incarnation: incarnation) {
                    out.append(.takeOver(p, a))
                } else {
                    leading[p] = a.epoch
                    leadingSince[p] = now
                    out.append(.lead(p, a))
                }
                continue
            }
            if leading[p] != nil {
                leading[p] = nil
                leadingSince[p] = nil
                out.append(.stepDown(p))
            }
            guard let rank = ranks[p] else {
                deadSince[p] = nil
                continue
            }
            let since = deadSince[p] ?? now
            deadSince[p] = since
            if since.duration(to: now) >= stagger * rank { out.append(.takeOver(p, a)) }
        }
        return out
    }

    /// Every partition led here stops (the node's lease lapsed): decisions to step down from all.
    public mutating func dropAll() -> [Decision] {
        defer { leading = [:] }
        return leading.keys.sorted().map { .stepDown($0) }
    }
}
