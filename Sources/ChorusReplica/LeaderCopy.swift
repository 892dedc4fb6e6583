import ChorusCluster
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
    /// Where an append's last record is: its index in the partition and its LSN in this node's log.
    public struct Committed: Sendable, Equatable {
        public var index: UInt64
        public var lsn: UInt64
    }
    /// The engine's completion of an append, once it is committed and in this node's log, or why not.
    /// Completions of one copy run one at a time, in index order.
    public typealias Completion = @Sendable (Result<Committed, ChatError>) -> Void

    struct Waiting {
        var index: UInt64
        /// Set once the leader's own log holds the append.
        var lsn: UInt64?
        /// Set when the append can no longer commit here (deposed, log stopped).
        var failure: ChatError?
        var completion: Completion

        func outcome(commitIndex: UInt64) -> Result<Committed, ChatError>? {
            if let failure { return .failure(failure) }
            guard index <= commitIndex, let lsn else { return nil }
            return .success(Committed(index: index, lsn: lsn))
        }
    }
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
        var waiting: [Waiting] = []
        /// A thread is running completions: others leave theirs to it (one at a time, in order,
        /// and a completion that appends again cannot deadlock on it).
        var completing = false
        /// A pump is queued: appends until it runs share it (one request per follower for all).
        var pumpQueued = false
        /// `start`'s completion, once its record is committed, waiting for the commit record that
        /// releases the inherited records to be logged and applied.
        var started: (at: Committed, completion: Completion)?
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
    let async: @Sendable (@escaping @Sendable () -> Void) -> Void
    private let state: Mutex<State>

    /// Leads `partition` in `epoch` with the copy recovery (or following) left: `replay`'s copy.
    /// `apply` gets the events replay releases that the engine has not applied itself: records
    /// inherited uncommitted from the previous epoch, once this leader commits them. `async` runs
    /// the sends an append causes: never on the appending thread (a transport may answer at once,
    /// and a completion must not run under the engine's lock that appended), and appends made
    /// before it runs share one request per follower.
    public init(
        partition: PartitionId, epoch: UInt64, followers: [String], ackReplicas: Int, replay: PartitionReplay,
        journal: any Journal, client: PeerClient, kept: Int = LeaderCopy.defaultKept,
        async: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void = { DispatchQueue.global().async(execute: $0) },
        apply: @escaping Apply
    ) {
        self.async = async
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

    /// Whether this leader may hand the partition to `follower` now: nothing waits for a commit,
    /// every record is committed with its commit record logged here (so following from this copy
    /// applies nothing twice), and the follower holds every record durably.
    public func caughtUp(_ follower: String) -> Bool {
        state.withLock { s in Self.settled(s, partition) && s.leader.followers[follower]?.match == s.leader.history.lastIndex }
    }

    private static func settled(_ s: State, _ p: PartitionId) -> Bool {
        s.deposedBy == nil && s.waiting.isEmpty && s.started == nil && s.replay.copies[p]?.committed == s.leader.history.lastIndex
    }

    /// Ends this leader for a hand-off: appends are refused from now on and nothing more is sent.
    /// Returns the copy as this node's log holds it, for the node to follow from, or nil while an
    /// append or a commit record is still in flight (the hand-off waits for them).
    public func retire() -> PartitionReplay.Copy? {
        state.withLock { s in
            guard Self.settled(s, partition), var copy = s.replay.copies[partition] else { return nil }
            s.deposedBy = s.leader.epoch + 1
            copy.promised = max(copy.promised, s.leader.epoch)
            return copy
        }
    }

    /// Appends the epoch's first record (`ReplicationRecord.epochStartKind`); once it completes,
    /// every record this leader inherited is committed and applied: the partition may serve.
    public func start(completion: @escaping Completion) {
        append([ReplicatedRecord(kind: ReplicationRecord.epochStartKind, payload: [])]) { [self] result in
            guard case .success(let at) = result else { return completion(result) }
            // Inherited records are applied when the commit record covering them is replayed.
            let now = state.withLock { s -> Bool in
                if s.replay.copies[partition]?.committed ?? 0 >= at.index { return true }
                s.started = (at, completion)
                return false
            }
            if now { completion(result) }
        }
    }

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
            s.waiting.append(Waiting(index: range.upperBound, completion: completion))
            log(batch) { [count = batch.count, last = range.upperBound] s, lastLSN in
                if s.firstOwnLSN == nil { s.firstOwnLSN = lastLSN - UInt64(count) + 1 }
                // Through this batch only: later batches may be enqueued but not yet durable.
                _ = s.leader.markDurable(through: last)
                if let i = s.waiting.lastIndex(where: { $0.index == last }) { s.waiting[i].lsn = lastLSN }
            }
            return nil
        }
        if let refused { return completion(.failure(.unavailable("partition \(partition) has a newer leader (epoch \(refused))"))) }
        let queue = state.withLock { s in
            defer { s.pumpQueued = true }
            return !s.pumpQueued
        }
        if queue {
            async { [self] in
                state.withLock { $0.pumpQueued = false }
                pump()
            }
        }
    }

    /// Sends each follower what it lacks; with `heartbeat` (the shell's timer, every 50 ms), also an
    /// empty append to those that lack nothing (they learn the commit index) and a probe to those
    /// whose last request failed.
    public func pump(heartbeat: Bool = false) {
        let sends = state.withLock { s -> [(String, ReplicationRequest)] in
            guard s.deposedBy == nil else { return [] }
            var out: [(String, ReplicationRequest)] = []
            // Records before the kept ones are read back from the log; only a follower behind what
            // the log holds of the partition needs a snapshot.
            let copy = s.replay.copies[partition]
            let oldest = min(s.keptFrom, (copy?.lsnBase ?? s.keptFrom - 1) + 1)
            if heartbeat { s.unreachable = [] }
            for f in s.leader.followers.keys.sorted() where !s.unreachable.contains(f) {
                var beat = heartbeat
                while let send = s.leader.next(for: f, oldestKept: oldest, maxEntries: Self.batch, heartbeat: beat) {
                    beat = false
                    guard case .append(let r) = send else { break }  // snapshots: not built yet
                    var records: [ReplicatedRecord] = []
                    if let indexes = r.indexes {
                        // Those no longer kept are a prefix: read back in one pass over the log.
                        let old = indexes.prefix { s.records[$0] == nil }
                        let fromLog = old.isEmpty ? [:] : recordsFromLog(old.first!...old.last!, copy)
                        records = indexes.compactMap { s.records[$0] ?? fromLog[$0] }
                    }
                    guard records.count == r.entryEpochs.count else { break }  // the log could not be read
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
        let (committed, deposed) = state.withLock { s -> (ClosedRange<UInt64>?, Bool) in
            guard case .success(.replica(let reply)) = result else {
                s.leader.linkLost(follower)
                s.unreachable.insert(follower)
                return (nil, false)
            }
            let (committed, deposed) = s.leader.receive(reply, from: follower)
            guard deposed, case .stale(let epoch) = reply else { return (committed, false) }
            s.deposedBy = epoch
            fail(&s, .unavailable("partition \(partition) has a newer leader"))
            return (nil, true)
        }
        if deposed { completeCommitted() }
        if committed != nil {
            completeCommitted()
            logCommit()
        }
        pump()
    }

    /// Marks every waiting append failed (completed, in order, by `completeCommitted`).
    private func fail(_ s: inout State, _ error: ChatError) {
        for i in s.waiting.indices where s.waiting[i].failure == nil { s.waiting[i].failure = error }
    }

    /// Records this copy no longer keeps in memory, read back from the node's log in one read of
    /// the LSNs between the first and the last (other partitions' records among them are skipped).
    private func recordsFromLog(_ indexes: ClosedRange<UInt64>, _ copy: PartitionReplay.Copy?) -> [UInt64: ReplicatedRecord] {
        guard let first = copy?.lsn(of: indexes.lowerBound), let last = copy?.lsn(of: indexes.upperBound), last >= first,
            let read = try? journal.read(from: first, limit: Int(min(last - first + 1, 4_000_000)))
        else { return [:] }
        var out: [UInt64: ReplicatedRecord] = [:]
        for r in read where r.kind == ReplicationRecord.replicatedKind {
            if case .replicated(let p, _, let i, let kind, let payload)? = try? ReplicationRecord.decode(kind: r.kind, payload: r.payload),
                p == partition, indexes.contains(i), copy?.lsn(of: i) == r.lsn
            {
                out[i] = ReplicatedRecord(kind: kind, payload: payload)
            }
        }
        return out
    }

    /// Completes the appends that are committed and in this node's log, in index order, one thread
    /// at a time: a thread that finds another completing leaves its share to it.
    private func completeCommitted() {
        while true {
            let done = state.withLock { s -> [(Completion, Result<Committed, ChatError>)]? in
                guard !s.completing else { return nil }
                let ready = s.waiting.prefix { $0.outcome(commitIndex: s.leader.commitIndex) != nil }
                guard !ready.isEmpty else { return nil }
                s.waiting.removeFirst(ready.count)
                s.completing = true
                return ready.map { ($0.completion, $0.outcome(commitIndex: s.leader.commitIndex)!) }
            }
            guard let done else { return }
            for (c, outcome) in done { c(outcome) }
            state.withLock { $0.completing = false }
        }
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
                    state.withLock { fail(&$0, .unavailable("the log is stopped")) }
                    completeCommitted()
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
            let started = state.withLock { s -> (Committed, Completion)? in
                guard let w = s.started, s.replay.copies[partition]?.committed ?? 0 >= w.at.index else { return nil }
                s.started = nil
                return w
            }
            if let (at, completion) = started { completion(.success(at)) }
            completeCommitted()
            if committedNow { logCommit() }
        }
    }
}
