import ChorusCluster
import ChorusCore
import ChorusPeer
import ChorusReplication
import Synchronization

/// Why the replicated journal refused an append (the edge maps both to `unavailable`).
public enum ReplicatedJournalError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The point's partition is not led here (now): its leader is elsewhere or being chosen.
    case notLeader(PartitionId)
    /// An append named no key, so it has no partition.
    case unkeyed

    public var description: String {
        switch self {
        case .notLeader(let p): "partition \(p) is not led by this node"
        case .unkeyed: "an append without a key cannot be replicated"
        }
    }
}

/// The engine's `Journal` on a replicated node: a keyed append goes to the `LeaderCopy` of the
/// partition its point falls in and completes once committed on `--ack-replicas` copies, with its
/// LSN in this node's log; a read unwraps replicated records, so the engine reads its events back
/// by LSN as on a plain log. The node's replication service installs and removes leader copies as
/// etcd assigns partitions.
public final class ReplicatedJournal: Journal {
    /// The node's own log, which every copy (led or followed) appends to.
    public let log: any Journal
    private let leaders = Mutex<[PartitionId: LeaderCopy]>([:])

    public init(log: any Journal) { self.log = log }

    /// Routes the partition's appends to `copy` from now on.
    public func lead(_ copy: LeaderCopy) { leaders.withLock { $0[copy.partition] = copy } }

    /// Stops routing the partition's appends here; returns the copy that led it.
    @discardableResult
    public func stopLeading(_ p: PartitionId) -> LeaderCopy? { leaders.withLock { $0.removeValue(forKey: p) } }

    /// The copy leading `p` here, if any.
    public func leader(of p: PartitionId) -> LeaderCopy? { leaders.withLock { $0[p] } }

    /// The partitions led here, in order.
    public var led: [PartitionId] { leaders.withLock { $0.keys.sorted() } }

    public var isHealthy: Bool { log.isHealthy }

    public func append(
        batch records: [(kind: UInt16, payload: [UInt8])], at point: UInt64, completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void
    ) {
        let p = Partitioning.partition(ofPoint: point)
        guard let copy = leaders.withLock({ $0[p] }) else { return completion(.failure(ReplicatedJournalError.notLeader(p))) }
        copy.append(records.map { ReplicatedRecord(kind: $0.kind, payload: $0.payload) }) { result in
            completion(result.map(\.lsn).mapError { $0 })
        }
    }

    public func append(record kind: UInt16, payload: [UInt8], at point: UInt64, completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
        append(batch: [(kind, payload)], at: point, completion: completion)
    }

    // Appends without a key have no partition: refused, so a call site that forgets its key fails
    // loudly in every replicated test instead of writing an unreplicated record.

    public func append(batch records: [(kind: UInt16, payload: [UInt8])], completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
        completion(.failure(ReplicatedJournalError.unkeyed))
    }

    public func append(kind: UInt16, payload: [UInt8]) async throws -> UInt64 { throw ReplicatedJournalError.unkeyed }

    public func append(batch records: [(kind: UInt16, payload: [UInt8])]) async throws -> ClosedRange<UInt64> {
        throw ReplicatedJournalError.unkeyed
    }

    /// The log's records, a replicated record read as the event it carries (same LSN).
    public func read(from lsn: UInt64, limit: Int) throws -> [JournalRecord] {
        try log.read(from: lsn, limit: limit).map { r in
            guard r.kind == ReplicationRecord.replicatedKind,
                case .replicated(_, _, _, let kind, let payload)? = try? ReplicationRecord.decode(kind: r.kind, payload: r.payload)
            else { return r }
            return JournalRecord(lsn: r.lsn, kind: kind, payload: payload)
        }
    }
}
