/// One replica's rules for a partition it does not lead: which appends it takes, what it drops,
/// what it promises. Pure: the shell writes, fsyncs and persists what a decision says, then replies.
///
/// Invariants: `promised` never decreases and is persisted before any reply that depends on it;
/// no append of an epoch below `promised` is ever written (that is the fence that keeps a deposed
/// leader from collecting acknowledgements); entries that match the leader's are never dropped.
public struct ReplicaFollower: Equatable, Sendable {
    /// The highest epoch this replica has seen a leader or a fence for.
    public private(set) var promised: UInt64
    /// This copy of the partition's log.
    public private(set) var history: EpochHistory
    /// Highest index durable on this copy (written and, per `--fsync`, synced).
    public private(set) var durable: UInt64
    /// The newest commit index a leader announced (what clients may have been acknowledged up to).
    public private(set) var leaderCommit: UInt64 = 0
    /// False while this copy is being rebuilt (it started empty in a cluster that had data): it must
    /// not stand in a promotion until it holds everything a leader held after it started.
    public private(set) var inSync: Bool
    /// The index a rebuilding copy must reach to be in sync again.
    private var syncTarget: UInt64?
    /// Identifies this copy's disk (a random nonzero number made with the data directory): a
    /// promotion chosen from this copy's answer holds only while the disk is the same one. 0 (the
    /// default, for tests of other rules) is never allowed to lead past the first epoch.
    public let incarnation: UInt64

    /// A copy as recovered from disk: `durable` defaults to all of it.
    public init(promised: UInt64, history: EpochHistory, durable: UInt64? = nil, inSync: Bool = true, incarnation: UInt64 = 0) {
        self.promised = promised
        self.history = history
        self.durable = min(durable ?? history.lastIndex, history.lastIndex)
        self.inSync = inSync
        self.incarnation = incarnation
    }

    /// What the shell does with an append.
    public struct Decision: Equatable, Sendable {
        /// Persist this epoch as the promise before replying (nil: unchanged).
        public var promise: UInt64?
        /// Drop the local entries after this index first (nil: none).
        public var truncateAfter: UInt64?
        /// Write the batch's entries from offset `firstNew` on, as indexes `write` (nil: nothing new).
        public var write: ClosedRange<UInt64>?
        public var firstNew: Int
        /// The reply to send once the writes are durable (for `accepted`, `lastIndex` is the index
        /// the shell reports after `markDurable`).
        public var reply: ReplicaReply
    }

    /// Decides on an append; applies the decision to this value (the shell must then carry it out).
    public mutating func receive(_ r: AppendRequest) -> Decision {
        guard r.epoch >= promised else {
            return Decision(promise: nil, truncateAfter: nil, write: nil, firstNew: 0, reply: .stale(promised: promised))
        }
        // Epochs no real leader sends (falling, above its own, below the entry before) change
        // nothing: answered as a mismatch, never trusted (and never a trap).
        guard r.isWellFormed else {
            return Decision(promise: nil, truncateAfter: nil, write: nil, firstNew: 0, reply: .mismatch(epoch: r.epoch, history: history))
        }
        let promise = r.epoch > promised ? r.epoch : nil
        promised = r.epoch
        guard history.holds(index: r.prevIndex, epoch: r.prevEpoch) else {
            return Decision(promise: promise, truncateAfter: nil, write: nil, firstNew: 0, reply: .mismatch(epoch: r.epoch, history: history))
        }
        // Skip what this copy already holds alike; the first entry that differs, and all after
        // it, are replaced (Raft's rule: a matching entry is never dropped, so a late duplicate
        // append cannot cut off newer entries).
        var index = r.prevIndex + 1
        var k = 0
        while k < r.entryEpochs.count, index <= history.lastIndex, history.holds(index: index, epoch: r.entryEpochs[k]) {
            index += 1
            k += 1
        }
        if k < r.entryEpochs.count {
            // Below the floor this copy does not know the epochs; the first new entry must not go
            // below the one kept before it.
            let before = index - 1 == 0 ? 0 : (history.epoch(at: index - 1) ?? history.floorEpoch)
            guard r.entryEpochs[k] >= before else {
                return Decision(promise: promise, truncateAfter: nil, write: nil, firstNew: 0, reply: .mismatch(epoch: r.epoch, history: history))
            }
        }
        var truncateAfter: UInt64?
        if k < r.entryEpochs.count, index <= history.lastIndex {
            truncateAfter = index - 1
            history.truncate(after: index - 1)
            durable = min(durable, index - 1)
        }
        // Past the leader's end, entries of an older epoch were never acknowledged: drop them.
        let end = r.prevIndex + UInt64(r.entryEpochs.count)
        if k == r.entryEpochs.count, end == r.leaderLastIndex, let e = history.epoch(at: end + 1), e < r.epoch {
            truncateAfter = end
            history.truncate(after: end)
            durable = min(durable, end)
        }
        var write: ClosedRange<UInt64>?
        if k < r.entryEpochs.count {
            write = index...(index + UInt64(r.entryEpochs.count - k) - 1)
            for epoch in r.entryEpochs[k...] { history.append(epoch: epoch, count: 1) }
        }
        leaderCommit = max(leaderCommit, min(r.commitIndex, r.prevIndex + UInt64(r.entryEpochs.count)))
        // A rebuilding copy is whole again once it holds all its leader held: the leader holds every
        // acknowledged record, while its commit index may lag (a new leader learns it late).
        if !inSync, syncTarget == nil { syncTarget = r.leaderLastIndex }
        // Nothing to wait for (the leader holds nothing this copy lacks durably, as for a
        // partition that never had a record): whole at once, or no append would ever make it so.
        if !inSync, let target = syncTarget, write == nil, durable >= target, history.lastIndex >= target {
            inSync = true
            syncTarget = nil
        }
        // What the leader sent ends at prevIndex + count; only that much is known to match it.
        let matched = r.prevIndex + UInt64(r.entryEpochs.count)
        return Decision(promise: promise, truncateAfter: truncateAfter, write: write, firstNew: k, reply: .accepted(epoch: r.epoch, lastIndex: matched))
    }

    /// Whether an `accepted` reply held until its entries were durable may go out now: only while
    /// the epoch it answers is still the promised one (after a newer leader truncated this copy, the
    /// old leader must not count entries this copy no longer holds).
    public enum Confirmation: Equatable, Sendable { case send, wait, drop }

    public func confirm(epoch: UInt64, lastIndex: UInt64) -> Confirmation {
        guard epoch == promised, lastIndex <= history.lastIndex else { return .drop }
        return durable >= lastIndex ? .send : .wait
    }

    /// The shell made entries through `index` durable. True when this made a rebuilding copy in sync.
    public mutating func markDurable(through index: UInt64) -> Bool {
        durable = max(durable, min(index, history.lastIndex))
        guard !inSync, let target = syncTarget, durable >= target else { return false }
        inSync = true
        syncTarget = nil
        return true
    }

    /// The answer to a fence for `epoch` (a node about to choose a new leader).
    public enum FenceAnswer: Equatable, Sendable {
        /// Promised: no append of an older epoch is taken from now on. Here is how far this copy
        /// goes, and which disk it is on.
        case promised(LogPosition, incarnation: UInt64)
        /// Promised too, but this copy is being rebuilt and must not be counted.
        case rebuilding
        /// A newer epoch was promised already.
        case stale(promised: UInt64)
        /// This node leads the partition: its follower state is not where its log is (the leader
        /// copy writes past it), so it promises nothing and is not counted. The fence still stops
        /// it, through the other copies: it cannot collect W of them without those that promised.
        case leading
    }

    /// Fences this copy at `epoch` (the shell persists `promised` before answering).
    public mutating func fence(epoch: UInt64) -> FenceAnswer {
        guard epoch >= promised else { return .stale(promised: promised) }
        promised = epoch
        // A copy counts with what is durable on it: a crash would lose the rest.
        var durablePart = history
        durablePart.truncate(after: max(durable, history.floor))
        return inSync ? .promised(durablePart.position, incarnation: incarnation) : .rebuilding
    }

    /// Replaces this copy with a leader's snapshot of the partition (entries through
    /// `history.lastIndex`), which the shell writes and syncs before it replies.
    public mutating func install(snapshot: EpochHistory, epoch: UInt64, commitIndex: UInt64) -> (promise: UInt64?, reply: ReplicaReply) {
        guard epoch >= promised else { return (nil, .stale(promised: promised)) }
        let promise = epoch > promised ? epoch : nil
        promised = epoch
        history = snapshot
        durable = snapshot.lastIndex
        leaderCommit = max(leaderCommit, min(commitIndex, snapshot.lastIndex))
        // A snapshot is the leader's whole log: this copy holds all the leader held.
        inSync = true
        syncTarget = nil
        return (promise, .accepted(epoch: epoch, lastIndex: snapshot.lastIndex))
    }

    /// Raises the promise without an append (an epoch read from etcd at start, so a copy that lost
    /// its disk cannot take appends from a leader that was deposed before it came back).
    public mutating func observe(epoch: UInt64) -> UInt64? {
        guard epoch > promised else { return nil }
        promised = epoch
        return epoch
    }
}
