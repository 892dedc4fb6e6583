import ChorusCluster

/// The rule that picks a partition's next leader so that nothing acknowledged is lost.
///
/// An entry acknowledged to a client is durable on `ackReplicas` (W) of the partition's N replicas.
/// A new leader is chosen only after at least N - W + 1 in-sync replicas have answered a fence for
/// the new epoch: any W copies and those answers share a replica, and the fence stops the old leader
/// from collecting a W-th copy afterwards. The chosen one has the most up-to-date log among the
/// answers (later last epoch, then longer), which therefore holds every acknowledged entry
/// (Raft's leader completeness argument, with the fence as the vote).
public enum Promotion {
    /// Fence answers needed before a leader is chosen.
    public static func fenceQuorum(replicas: Int, ackReplicas: Int) -> Int { replicas - ackReplicas + 1 }

    /// Whether a fence round may stop waiting for the replicas still silent: every replica has
    /// answered (a promise or a refusal), or the quorum promised and every replica etcd still
    /// lists as alive has answered. A replica whose lease lapsed (stopped, partitioned, dead) is
    /// not waited for: the quorum's copies already hold every acknowledged entry, and waiting would
    /// add the mesh's request timeout to every failover.
    public static func fenceSettled(
        replicas: [String], answered: Set<String>, promised: Int, alive: Set<String>, ackReplicas: Int
    ) -> Bool {
        let silent = replicas.filter { !answered.contains($0) }
        if silent.isEmpty { return true }
        return promised >= fenceQuorum(replicas: replicas.count, ackReplicas: ackReplicas) && silent.allSatisfy { !alive.contains($0) }
    }

    /// The replica to promote, or nil while too few in-sync replicas answered. `answers` are the
    /// positions of replicas that promised the new epoch; ties go to the earlier in `replicas`
    /// (ring order, so the preferred leader when it is as current as any).
    public static func choose(answers: [String: LogPosition], replicas: [String], ackReplicas: Int) -> String? {
        let counted = replicas.filter { answers[$0] != nil }
        guard counted.count >= fenceQuorum(replicas: replicas.count, ackReplicas: ackReplicas) else { return nil }
        var best: (id: String, position: LogPosition)?
        for id in counted {
            let position = answers[id]!
            if best == nil || best!.position < position { best = (id, position) }
        }
        return best?.id
    }
}

/// What etcd records for a partition: its leader, in which epoch, and its replica set.
public struct PartitionAssignment: Equatable, Sendable {
    public var epoch: UInt64
    public var leader: String
    public var replicas: [String]
    /// The incarnation of the leader's disk whose fence answer chose it (0 only in the first
    /// table, when no copy holds anything yet).
    public var leaderIncarnation: UInt64

    public init(epoch: UInt64, leader: String, replicas: [String], leaderIncarnation: UInt64 = 0) {
        self.epoch = epoch
        self.leader = leader
        self.replicas = replicas
        self.leaderIncarnation = leaderIncarnation
    }

    public var followers: [String] { replicas.filter { $0 != leader } }

    /// Whether the copy on disk `incarnation` of node `id` may lead this epoch. A copy that lost its
    /// disk between answering the fence and the swap may not: it no longer holds what it answered.
    /// Incarnation 0 (a disk that was never given one) never leads past the first epoch.
    public func mayLead(_ id: String, incarnation: UInt64) -> Bool {
        guard leader == id else { return false }
        return leaderIncarnation == 0 ? epoch == 1 : leaderIncarnation == incarnation
    }
}

/// Which partitions this node should try to take over, given who is alive (holds an etcd lease).
public enum FailoverDuty {
    /// For each partition whose leader is not alive: this node's rank among the live replicas that
    /// could fence it (0 acts at once, rank k after k x `stagger`), so one node usually acts and
    /// another steps in if it cannot. Partitions this node does not replicate are not its duty.
    public static func ranks(table: [PartitionId: PartitionAssignment], alive: Set<String>, selfId: String) -> [PartitionId: Int] {
        var out: [PartitionId: Int] = [:]
        for (p, a) in table where !alive.contains(a.leader) {
            let candidates = a.replicas.filter { $0 != a.leader && alive.contains($0) }
            if let rank = candidates.firstIndex(of: selfId) { out[p] = rank }
        }
        return out
    }
}

extension PartitionAssignment {
    /// The text etcd stores: `<epoch> <leader> <replica>,<replica>,... <leaderIncarnation>` (node ids
    /// hold no spaces or commas).
    public var encoded: String { "\(epoch) \(leader) \(replicas.joined(separator: ",")) \(leaderIncarnation)" }

    /// Nil for anything that is not an `encoded` assignment whose leader is one of its replicas.
    public init?(encoded: String) {
        let parts = encoded.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 4, let epoch = UInt64(parts[0]), !parts[1].isEmpty, let incarnation = UInt64(parts[3]) else { return nil }
        let replicas = parts[2].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard !replicas.contains(where: \.isEmpty), Set(replicas).count == replicas.count, replicas.contains(String(parts[1])) else { return nil }
        self.init(epoch: epoch, leader: String(parts[1]), replicas: replicas, leaderIncarnation: incarnation)
    }

    /// The first table of a cluster: every partition led by its preferred replica, in epoch 1.
    public static func initialTable(ring: HashRing, factor: Int) -> [PartitionId: PartitionAssignment] {
        var table: [PartitionId: PartitionAssignment] = [:]
        for p in Partitioning.all {
            let replicas = Partitioning.replicas(of: p, ring: ring, factor: factor)
            table[p] = PartitionAssignment(epoch: 1, leader: replicas[0], replicas: replicas)
        }
        return table
    }
}
