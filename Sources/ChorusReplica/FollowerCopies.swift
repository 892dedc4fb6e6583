import ChorusCluster
import ChorusCore
import ChorusPeer
import ChorusReplication
import Dispatch
import Synchronization

/// The copies of partitions this node follows, over the node's log (docs/REPLICATION.md, "The
/// shell: live is replay"). Decisions come from `ReplicaFollower`; each is logged first, as
/// `ReplicationRecord`s; on the log's completion path, one batch at a time in LSN order, the same
/// records go through a `PartitionReplay`, whose actions `apply` carries out, exactly as recovery
/// will; a reply goes once what it covers is durable.
public final class FollowerCopies: ReplicationRequestHandler {
    /// Runs on the log's completion path, in LSN order; must not block.
    public typealias Apply = @Sendable ([PartitionReplay.Action]) -> Void

    struct Held {
        var partition: PartitionId
        var epoch: UInt64
        var lastIndex: UInt64
        var reply: PeerReplyHandler
    }

    struct State {
        var followers: [PartitionId: ReplicaFollower]
        var replay: PartitionReplay
        /// The highest commit index logged per partition (replay learns it on completion).
        var loggedCommit: [PartitionId: UInt64]
        /// `accepted` replies waiting for their records to be durable.
        var held: [Held] = []
        /// Partitions this node leads: their copy is the leader's now, so appends from another
        /// leader are refused until the node follows again (it restarts to do so).
        var led: Set<PartitionId> = []
    }

    let journal: any Journal
    let incarnation: UInt64
    let apply: Apply
    private let state: Mutex<State>

    /// Copies as recovery left them (`recovered`); `inSync` false when this disk was found empty in
    /// a cluster that had data (every copy is rebuilding).
    public init(journal: any Journal, incarnation: UInt64, recovered: PartitionReplay, inSync: Bool, apply: @escaping Apply) {
        self.journal = journal
        self.incarnation = incarnation
        self.apply = apply
        var followers: [PartitionId: ReplicaFollower] = [:]
        var commits: [PartitionId: UInt64] = [:]
        for (p, copy) in recovered.copies {
            followers[p] = ReplicaFollower(promised: copy.promised, history: copy.history, inSync: inSync, incarnation: incarnation)
            commits[p] = copy.committed
        }
        state = Mutex(State(followers: followers, replay: recovered, loggedCommit: commits))
        defaultInSync = inSync
    }

    private let defaultInSync: Bool

    /// Marks a partition led (or no longer led) here.
    public func setLed(_ p: PartitionId, _ led: Bool) {
        state.withLock { s in if led { s.led.insert(p) } else { s.led.remove(p) } }
    }

    /// Follows `p` again from the copy its leader here left (a hand-off: every record it wrote is
    /// durable and committed): fences and appends are answered from that copy from now on.
    public func resume(_ p: PartitionId, from copy: PartitionReplay.Copy) {
        state.withLock { s in
            s.followers[p] = ReplicaFollower(promised: copy.promised, history: copy.history, inSync: true, incarnation: incarnation)
            s.replay.replace(p, with: copy)
            s.loggedCommit[p] = copy.committed
            s.led.remove(p)
        }
    }

    /// Partitions whose copy here is being rebuilt (not counted by fences until it has caught up).
    public var rebuilding: [PartitionId] {
        state.withLock { s in s.followers.filter { !$0.value.inSync }.keys.sorted() }
    }

    /// What replay knows of a copy (the same as a restart would rebuild).
    public func copy(_ p: PartitionId) -> PartitionReplay.Copy? { state.withLock { $0.replay.copies[p] } }

    public func handle(_ request: ReplicationRequest, from peer: String, reply: @escaping PeerReplyHandler) {
        switch request {
        case .fence(let p, let epoch): fence(p, epoch: epoch, reply: reply)
        case .append(let p, let r, let records): append(p, r, records: records, reply: reply)
        }
    }

    private func newFollower() -> ReplicaFollower {
        ReplicaFollower(promised: 0, history: EpochHistory(), inSync: defaultInSync, incarnation: incarnation)
    }

    private func fence(_ p: PartitionId, epoch: UInt64, reply: @escaping PeerReplyHandler) {
        let stale = state.withLock { s -> ReplicaFollower.FenceAnswer? in
            // A led copy's follower state lags its leader's writes: answering from it would report
            // a position short of records this node acknowledged.
            if s.led.contains(p) { return .leading }
            var f = s.followers[p] ?? newFollower()
            let answer = f.fence(epoch: epoch)
            s.followers[p] = f
            if case .stale = answer { return answer }
            // The promise is durable before anyone counts it.
            log(p, [.promised(partition: p, epoch: epoch)], lastWritten: nil) { result in reply(result.map { .fenced(answer) }) }
            return nil
        }
        if let stale { reply(.success(.fenced(stale))) }
    }

    private func append(_ p: PartitionId, _ r: AppendRequest, records: [ReplicatedRecord], reply: @escaping PeerReplyHandler) {
        guard records.count == r.entryEpochs.count else { return reply(.failure(.badRequest("append with \(records.count) records for \(r.entryEpochs.count) epochs"))) }
        var isLed = false
        let answerNow = state.withLock { s -> ReplicaReply? in
            guard !s.led.contains(p) else {
                isLed = true
                return nil
            }
            var f = s.followers[p] ?? newFollower()
            let d = f.receive(r)
            s.followers[p] = f
            var batch: [ReplicationRecord] = []
            if let promise = d.promise { batch.append(.promised(partition: p, epoch: promise)) }
            if let t = d.truncateAfter { batch.append(.truncated(partition: p, after: t)) }
            if let write = d.write {
                for (k, index) in zip(d.firstNew..., write) {
                    batch.append(.replicated(partition: p, epoch: r.entryEpochs[k], index: index, kind: records[k].kind, payload: records[k].payload))
                }
            }
            guard case .accepted(let e, let lastIndex) = d.reply else {
                // A refusal: any promise it made is durable before it is told.
                if batch.isEmpty { return d.reply }
                log(p, batch, lastWritten: nil) { result in reply(result.map { .replica(d.reply) }) }
                return nil
            }
            // The leader's commit index, as far as this copy holds the leader's records.
            let commit = min(r.commitIndex, lastIndex)
            if commit > s.loggedCommit[p, default: 0] {
                batch.append(.committed(partition: p, index: commit))
                s.loggedCommit[p] = commit
            }
            s.held.append(Held(partition: p, epoch: e, lastIndex: lastIndex, reply: reply))
            if !batch.isEmpty {
                log(p, batch, lastWritten: d.write?.upperBound) { if case .failure(let e) = $0 { reply(.failure(e)) } }
            }
            return nil
        }
        if isLed { return reply(.failure(.unavailable("\(p) is led by this node"))) }
        if let answerNow { reply(.success(.replica(answerNow))) }
        // What an earlier batch made durable may already cover a reply held just now.
        releaseHeld()
    }

    /// Logs `records`; on completion (LSN order) replays them, marks what is durable, releases held
    /// replies, applies what became committed, then calls `done`. Called under the state lock, so
    /// records reach the log in the order they were decided; a refusal, which may complete at once
    /// on this thread, is settled on another.
    private func log(_ p: PartitionId, _ records: [ReplicationRecord], lastWritten: UInt64?, done: @escaping @Sendable (Result<Void, ChatError>) -> Void) {
        journal.append(batch: records.map { ($0.kind, $0.encode()) }) { [self] result in
            guard case .success(let lastLSN) = result else {
                return DispatchQueue.global().async { done(.failure(.unavailable("the log is stopped"))) }
            }
            var actions: [PartitionReplay.Action] = []
            var replayError: PartitionReplay.ReplayError?
            state.withLock { s in
                let firstLSN = lastLSN - UInt64(records.count) + 1
                for (i, record) in records.enumerated() {
                    do throws(PartitionReplay.ReplayError) { actions += try s.replay.replay(record, lsn: firstLSN + UInt64(i)) } catch { replayError = replayError ?? error }
                }
                if let lastWritten, var f = s.followers[p] {
                    _ = f.markDurable(through: lastWritten)
                    s.followers[p] = f
                }
            }
            if !actions.isEmpty { apply(actions) }
            releaseHeld()
            done(replayError.map { .failure(.unavailable("replication records contradict each other: \($0)")) } ?? .success(()))
        }
    }

    /// Sends the held replies whose records are now durable; drops those a newer epoch overtook.
    private func releaseHeld() {
        let ready = state.withLock { s -> [(PeerReplyHandler, ReplicaReply)] in
            var ready: [(PeerReplyHandler, ReplicaReply)] = []
            s.held.removeAll { h in
                guard let f = s.followers[h.partition] else { return true }
                switch f.confirm(epoch: h.epoch, lastIndex: h.lastIndex) {
                case .send:
                    ready.append((h.reply, .accepted(epoch: h.epoch, lastIndex: h.lastIndex)))
                    return true
                case .drop:
                    ready.append((h.reply, .stale(promised: f.promised)))
                    return true
                case .wait: return false
                }
            }
            return ready
        }
        for (reply, answer) in ready { reply(.success(.replica(answer))) }
    }
}
