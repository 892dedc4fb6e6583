import ChorusCore
import ChorusPeer
import ChorusReplication
import Synchronization

/// A partition this node leads, over its log: the engine's events become the partition's next
/// records, stream to the followers, and each append completes once `ackReplicas` copies hold it
/// durably (committed), in index order. Its own records go through `PartitionReplay` exactly as a
/// follower's do (live is replay).
public final class LeaderCopy: Sendable {
    /// The engine's completion of an append: the index of its last record once committed, or why not.
    public typealias Completion = @Sendable (Result<UInt64, ChatError>) -> Void
    public typealias Apply = @Sendable ([PartitionReplay.Action]) -> Void

    /// Records kept in memory for resending; a follower behind them needs a snapshot.
    public static let kept = 100_000
    /// Records in one append to a follower (`PeerBounds.replicatedRecords` bounds what arrives).
    public static let batch = 512

    struct State {
        var leader: ReplicaLeader
        var replay: PartitionReplay
        var records: [UInt64: ReplicatedRecord] = [:]
        var waiting: [(index: UInt64, completion: Completion)] = []
        var loggedCommit: UInt64
        var deposedBy: UInt64?
        /// Followers whose last request failed: tried again at the next heartbeat, not at once (a
        /// dead node must not be probed in a loop).
        var unreachable: Set<String> = []
    }

    public let partition: PartitionId
    let journal: any Journal
    let client: PeerClient
    let apply: Apply
    private let state: Mutex<State>

    /// Leads `partition` in `epoch` with the copy recovery (or following) left: `replay`'s copy.
    public init(
        partition: PartitionId, epoch: UInt64, followers: [String], ackReplicas: Int, replay: PartitionReplay,
        journal: any Journal, client: PeerClient, apply: @escaping Apply
    ) {
        self.partition = partition
        self.journal = journal
        self.client = client
        self.apply = apply
        let copy = replay.copies[partition] ?? PartitionReplay.Copy()
        var records: [UInt64: ReplicatedRecord] = [:]
        for p in copy.pending { records[p.index] = ReplicatedRecord(kind: p.kind, payload: p.payload) }
        let leader = ReplicaLeader(
            epoch: epoch, history: copy.history, followers: followers, ackReplicas: ackReplicas, commitIndex: copy.committed)
        state = Mutex(State(leader: leader, replay: replay, records: records, loggedCommit: copy.committed))
    }

    public var commitIndex: UInt64 { state.withLock { $0.leader.commitIndex } }
    public var copy: PartitionReplay.Copy? { state.withLock { $0.replay.copies[partition] } }

    /// Appends events as the partition's next records; `completion` runs once they are committed.
    public func append(_ events: [ReplicatedRecord], completion: @escaping Completion) {
        let batch: [ReplicationRecord]? = state.withLock { s in
            if let epoch = s.deposedBy { completion(.failure(.unavailable("partition \(partition) has a newer leader (epoch \(epoch))"))); return nil }
            let range = s.leader.append(count: events.count)
            var batch: [ReplicationRecord] = []
            for (index, e) in zip(range, events) {
                s.records[index] = e
                batch.append(.replicated(partition: partition, epoch: s.leader.epoch, index: index, kind: e.kind, payload: e.payload))
            }
            if let oldest = s.records.keys.min(), s.records.count > Self.kept { s.records[oldest] = nil }
            s.waiting.append((range.upperBound, completion))
            return batch
        }
        guard let batch else { return }
        log(batch) { [self] s, _ in s.leader.markDurable(through: s.leader.history.lastIndex) }
        pump()
    }

    /// Sends each follower what it lacks; with `heartbeat` (the shell's timer, every 50 ms), also an
    /// empty append to those that lack nothing (they learn the commit index) and a probe to those
    /// whose last request failed.
    public func pump(heartbeat: Bool = false) {
        let sends = state.withLock { s -> [(String, ReplicationRequest)] in
            guard s.deposedBy == nil else { return [] }
            var out: [(String, ReplicationRequest)] = []
            let oldest = s.records.keys.min() ?? s.leader.history.lastIndex + 1
            if heartbeat { s.unreachable = [] }
            for f in s.leader.followers.keys.sorted() where !s.unreachable.contains(f) {
                var beat = heartbeat
                while let send = s.leader.next(for: f, oldestKept: oldest, maxEntries: Self.batch, heartbeat: beat) {
                    beat = false
                    guard case .append(let r) = send else { break }  // snapshots: not built yet
                    let records = r.indexes.map { $0.compactMap { s.records[$0] } } ?? []
                    out.append((f, .append(partition: partition, r, records: records)))
                    if r.entryEpochs.isEmpty { break }
                }
            }
            return out
        }
        for (f, request) in sends {
            client.call(.replication(request), to: f) { [self] result in receive(result, from: f) }
        }
    }

    private func receive(_ result: Result<PeerReply, ChatError>, from follower: String) {
        let (committed, failed) = state.withLock { s -> (ClosedRange<UInt64>?, [Completion]) in
            guard case .success(.replica(let reply)) = result else {
                s.leader.linkLost(follower)
                s.unreachable.insert(follower)
                return (nil, [])
            }
            let (committed, deposed) = s.leader.receive(reply, from: follower)
            guard deposed, case .stale(let epoch) = reply else { return (committed, []) }
            s.deposedBy = epoch
            defer { s.waiting = [] }
            return (nil, s.waiting.map(\.completion))
        }
        for c in failed { c(.failure(.unavailable("partition \(partition) has a newer leader"))) }
        if committed != nil { logCommit() }
        pump()
    }

    private func logCommit() {
        let record: ReplicationRecord? = state.withLock { s in
            guard s.leader.commitIndex > s.loggedCommit else { return nil }
            s.loggedCommit = s.leader.commitIndex
            return .committed(partition: partition, index: s.leader.commitIndex)
        }
        guard let record else { return }
        log([record]) { _, _ in }
    }

    /// Logs `records`; on completion (LSN order) replays them, runs `then` under the lock, applies
    /// what became committed and completes the appends it covers, in index order.
    private func log(_ records: [ReplicationRecord], then: @escaping @Sendable (inout State, UInt64) -> Void) {
        journal.append(batch: records.map { ($0.kind, $0.encode()) }) { [self] result in
            guard case .success(let lastLSN) = result else {
                let all = state.withLock { s in defer { s.waiting = [] }; return s.waiting.map(\.completion) }
                for c in all { c(.failure(.unavailable("the log is stopped"))) }
                return
            }
            var actions: [PartitionReplay.Action] = []
            var committedNow = false
            let done = state.withLock { s -> [(Completion, UInt64)] in
                let first = lastLSN - UInt64(records.count) + 1
                for (i, r) in records.enumerated() { actions += (try? s.replay.replay(r, lsn: first + UInt64(i))) ?? [] }
                let before = s.leader.commitIndex
                then(&s, lastLSN)
                committedNow = s.leader.commitIndex > before
                let upTo = s.replay.copies[partition]?.committed ?? 0
                let ready = s.waiting.prefix { $0.index <= upTo }
                s.waiting.removeFirst(ready.count)
                return ready.map { ($0.completion, $0.index) }
            }
            if !actions.isEmpty { apply(actions) }
            for (c, index) in done { c(.success(index)) }
            if committedNow { logCommit() }
        }
    }
}
