import ChorusCluster
import ChorusEtcd
import ChorusReplication

/// Takes a partition over from a leader whose lease lapsed: fences its replicas for the next epoch,
/// chooses the new leader by `Promotion`, and writes it to etcd by compare-and-swap.
///
/// The fence is a port: the node sends it to every replica over the mesh (itself included) and
/// returns the positions of those that promised; rebuilding or unreachable ones are absent.
public struct FailoverRunner: Sendable {
    /// One promise: the copy's position and its disk's incarnation.
    public struct Vote: Equatable, Sendable {
        public var position: LogPosition
        public var incarnation: UInt64
        public init(position: LogPosition, incarnation: UInt64) {
            self.position = position
            self.incarnation = incarnation
        }
    }

    public typealias Fence = @Sendable (_ p: PartitionId, _ epoch: UInt64, _ replicas: [String]) async -> [String: Vote]

    public enum Outcome: Equatable, Sendable {
        /// etcd now names this leader for the new epoch.
        case promoted(PartitionAssignment)
        /// Too few in-sync replicas answered: try again later (the partition stays unavailable).
        case tooFewAnswers(Int)
        /// Someone changed the partition first: read the table again.
        case lostRace
    }

    public let store: PartitionTableStore
    public let ackReplicas: Int
    public let fence: Fence

    public init(store: PartitionTableStore, ackReplicas: Int, fence: @escaping Fence) {
        self.store = store
        self.ackReplicas = ackReplicas
        self.fence = fence
    }

    public func takeOver(_ p: PartitionId, from entry: PartitionTableStore.Entry) async throws(EtcdError) -> Outcome {
        let current = entry.assignment
        let epoch = current.epoch + 1
        let answers = await fence(p, epoch, current.replicas)
        guard let leader = Promotion.choose(answers: answers.mapValues(\.position), replicas: current.replicas, ackReplicas: ackReplicas) else {
            return .tooFewAnswers(answers.count)
        }
        let next = PartitionAssignment(epoch: epoch, leader: leader, replicas: current.replicas, leaderIncarnation: answers[leader]!.incarnation)
        return try await store.swap(p, from: entry, to: next) ? .promoted(next) : .lostRace
    }
}
