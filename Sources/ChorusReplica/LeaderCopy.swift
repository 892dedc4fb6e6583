import ChorusCore
import ChorusPeer
import ChorusReplication
import Dispatch
import Synchronization

/// A partition this node leads, over its log: the engine's events become the partition's next
/// records, stream to the followers, and each append completes once `ackReplicas` copies hold it
/// durably (committed), in index order, without waiting for the commit record, which follows in a
/// later group commit (a restart before it finds the records pending, and a new epoch's leader
/// commits them again). Its own records go through `PartitionReplay` exactly as a follower's do.
public final class LeaderCopy: Sendable {
    /// The engine's completion of an append: the index of its last record once committed, or why not.
    public typealias Completion = @Sendable (Result<UInt64, ChatError>) -> Void
    public typealias Apply = @Sendable ([PartitionReplay.Action]) -> Void

    /// Records kept in memory for resending, by default; a follower behind them needs a snapshot
    /// (not built yet: such a follower gets nothing until it is rebuilt).
    public static let defaultKept = 100_000
    /// Records in one append to a follower (`PeerBounds.replicatedRecords` bounds what arrives).
    public static let batch = 512

    struct State {
        var leader: ReplicaLeader
        var replay: PartitionReplay
        /// Records kept for resending: the contiguous indexes from `keptFrom` to the last one.
        var records: [UInt64: ReplicatedRecord] = [:]
        var keptFrom: UInt64
        var waiting: [(index: UInt64, completion: Completion)] = []
        var loggedCommit: UInt64
        var deposedBy: UInt64?
        /// Followers whose last request failed: tried again at the next heartbeat, not at once (a
        /// dead node must not be probed in a loop).
        var unreachable: Set<String> = []
        /// LSN of this leader's first own record: replay's releases from there on are the engine's
        /// own appends, which it applied when they completed.
        var firstOwnLSN: UInt64?
    }

    public let partition: PartitionId
    let kept: Int
    let journal: any Journal
    let client: PeerClient
    let apply: Apply
    private let state: Mutex<State>

    /// Leads `partition` in `epoch` with the copy recovery (or following) left: `replay`'s copy.
    /// `apply` gets the events replay releases that the engine has not applied itself: records
    /// inherited uncommitted from the previous epoch, once this leader commits them.
    public init(
        partition: PartitionId, epoch: UInt64, followers: [String], ackReplicas: Int, replay: PartitionReplay,
        journal: any Journal, client: PeerClient, kept: Int = LeaderCopy.defaultKept, apply: @escaping Apply
    ) {
        self.partition = partition
        self.kept = max(1, kept)
        self.journal = journal
        self.client = client
        self.apply = apply
        let copy = replay.copies[partition] ?? PartitionReplay.Copy()
        var records: [UInt64: ReplicatedRecord] = [:]
        for p in copy.pending { records[p.index] = ReplicatedRecord(kind: p.kind, payload: p.payload) }
        let leader = ReplicaLeader(
            epoch: epoch, history: copy.history, followers: followers, ackReplicas: ackReplicas, commitIndex: copy.committed)
        let keptFrom = copy.pending.first?.index ?? copy.history.lastIndex + 1
        state = Mutex(State(leader: leader, replay: replay, records: records, keptFrom: keptFrom, loggedCommit: copy.committed))
    }

    public var commitIndex: UInt64 { state.withLock { $0.leader.commitIndex } }
    public var copy: PartitionReplay.Copy? { state.withLock { $0.replay.copies[partition] } }

    /// Appends events as the partition's next records; `completion` runs once they are committed.
    public func append(_ events: [ReplicatedRecord], completion: @escaping Completion) {
        let refused = state.withLock { s -> UInt64? in
            if let epoch = s.deposedBy { return epoch }
            let range = s.leader.append(count: events.count)
            var batch: [ReplicationRecord] = []
            for (index, e) in zip(range, events) {
                s.records[index] = e
                batch.append(.replicated(partition: partition, epoch: s.leader.epoch, index: index, kind: e.kind, payload: e.payload))
            }
            while s.records.count > kept {
                s.records[s.keptFrom] = nil
                s.keptFrom += 1
            }
            s.waiting.append((range.upperBound, completion))
            log(batch) { [count = batch.count] s, lastLSN in
                if s.firstOwnLSN == nil { s.firstOwnLSN = lastLSN - UInt64(count) + 1 }
                _ = s.leader.markDurable(through: s.leader.history.lastIndex)
            }
            return nil
        }
        if let refused { return completion(.failure(.unavailable("partition \(partition) has a newer leader (epoch \(refused))"))) }
        pump()
    }

    /// Sends each follower what it lacks; with `heartbeat` (the shell's timer, every 50 ms), also an
    /// empty append to those that lack nothing (they learn the commit index) and a probe to those
    /// whose last request failed.
    public func pump(heartbeat: Bool = false) {
        let sends = state.withLock { s -> [(String, ReplicationRequest)] in
            guard s.deposedBy == nil else { return [] }
            var out: [(String, ReplicationRequest)] = []
            let oldest = s.keptFrom
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
        if committed != nil {
            completeCommitted()
            logCommit()
        }
        pump()
    }

    /// Completes the appends the commit index covers, in index order.
    private func completeCommitted() {
        let done = state.withLock { s -> [(Completion, UInt64)] in
            let ready = s.waiting.prefix { $0.index <= s.leader.commitIndex }
            s.waiting.removeFirst(ready.count)
            return ready.map { ($0.completion, $0.index) }
        }
        for (c, index) in done { c(.success(index)) }
    }

    private func logCommit() {
        state.withLock { s in
            guard s.leader.commitIndex > s.loggedCommit else { return }
            s.loggedCommit = s.leader.commitIndex
            log([.committed(partition: partition, index: s.leader.commitIndex)]) { _, _ in }
        }
    }

    /// Logs `records`; on completion (LSN order) replays them, runs `then` under the lock, applies
    /// what replay released, and completes the appends a commit it caused covers. Called under the
    /// state lock, so records reach the log in index order; a refusal, which may complete at once on
    /// this thread, is settled on another.
    private func log(_ records: [ReplicationRecord], then: @escaping @Sendable (inout State, UInt64) -> Void) {
        journal.append(batch: records.map { ($0.kind, $0.encode()) }) { [self] result in
            guard case .success(let lastLSN) = result else {
                return DispatchQueue.global().async { [self] in
                    let all = state.withLock { s in defer { s.waiting = [] }; return s.waiting.map(\.completion) }
                    for c in all { c(.failure(.unavailable("the log is stopped"))) }
                }
            }
            var actions: [PartitionReplay.Action] = []
            let committedNow = state.withLock { s -> Bool in
                let first = lastLSN - UInt64(records.count) + 1
                for (i, r) in records.enumerated() { actions += (try? s.replay.replay(r, lsn: first + UInt64(i))) ?? [] }
                let before = s.leader.commitIndex
                then(&s, lastLSN)
                if let own = s.firstOwnLSN {
                    actions.removeAll { if case .apply(_, _, let lsn) = $0 { lsn >= own } else { false } }
                }
                return s.leader.commitIndex > before
            }
            if !actions.isEmpty { apply(actions) }
            if committedNow {
                completeCommitted()
                logCommit()
            }
        }
    }
}
