import ChorusCluster

/// How a partition's replicas move to the ones the ring names after a membership change (a node
/// joined or retires), one step at a time. Pure: the partition's leader asks it, and carries out a
/// `widen` or `narrow` by stepping aside (every admitted append committed) and swapping the new
/// assignment in, in the next epoch, from the revision it read; a `handOff` as a hand-off.
///
/// Invariants, step by step:
/// - `widen` keeps every replica and adds the live target nodes missing, target nodes first in ring
///   order (so the preferred replica, and every tie of a later take-over, goes to a target node);
/// - `narrow` keeps only target nodes, and only when each one holds all the leader has (a fence
///   quorum of the narrower set then still meets every record any W copies acknowledged);
/// - the leader never narrows itself away: it hands the partition to a caught-up target node first.
public enum Reconfiguration {
    public enum Step: Equatable, Sendable {
        /// Swap in this assignment (one more replica set, the next epoch, the same leader).
        case widen(PartitionAssignment)
        /// Swap in this assignment (the target replicas only, the next epoch, the same leader).
        case narrow(PartitionAssignment)
        /// The leader is not a target node: give the partition to `to`, which then narrows.
        case handOff(to: String)
    }

    /// The next step for `a` (led by `a.leader`) towards `target` (ring order), given the nodes that
    /// hold a lease and the followers that hold all the leader has; nil when there is nothing to do
    /// or nothing to do yet (a target node is not alive, or has not caught up).
    public static func next(_ a: PartitionAssignment, target: [String], alive: Set<String>, caughtUp: Set<String>) -> Step? {
        guard !target.isEmpty, a.replicas != target else { return nil }
        let current = Set(a.replicas)
        let joining = target.filter { !current.contains($0) && alive.contains($0) }
        if !joining.isEmpty || target.contains(where: { !current.contains($0) }) {
            guard !joining.isEmpty else { return nil }  // the missing target nodes are not alive
            let replicas = target.filter { current.contains($0) || alive.contains($0) } + a.replicas.filter { !target.contains($0) }
            return .widen(PartitionAssignment(epoch: a.epoch + 1, leader: a.leader, replicas: replicas, leaderIncarnation: a.leaderIncarnation))
        }
        // Every target node is a replica: the rest go once the target holds everything.
        let holdsAll = { (n: String) in n == a.leader || caughtUp.contains(n) }
        guard target.contains(a.leader) else {
            return target.first { alive.contains($0) && caughtUp.contains($0) }.map { .handOff(to: $0) }
        }
        guard target.allSatisfy(holdsAll) else { return nil }
        return .narrow(PartitionAssignment(epoch: a.epoch + 1, leader: a.leader, replicas: target, leaderIncarnation: a.leaderIncarnation))
    }
}
