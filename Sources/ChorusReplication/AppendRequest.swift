/// What a partition's leader sends a follower: entries after `prevIndex`, with the epoch of each.
public struct AppendRequest: Equatable, Sendable {
    /// The epoch the sender leads the partition in.
    public var epoch: UInt64
    /// The entry just before the batch, and the epoch that wrote it (0 and 0 for the log's start).
    public var prevIndex: UInt64
    public var prevEpoch: UInt64
    /// The epoch of each entry of the batch, from `prevIndex + 1` on (empty: a heartbeat or probe).
    public var entryEpochs: [UInt64]
    /// The leader's commit index: every entry up to it is on `--ack-replicas` copies.
    public var commitIndex: UInt64
    /// The leader's last index when it sent this: a follower drops entries of older epochs past it
    /// (written under a deposed leader, never acknowledged), so copies converge without new writes.
    public var leaderLastIndex: UInt64

    public init(epoch: UInt64, prevIndex: UInt64, prevEpoch: UInt64, entryEpochs: [UInt64], commitIndex: UInt64, leaderLastIndex: UInt64? = nil) {
        self.epoch = epoch
        self.prevIndex = prevIndex
        self.prevEpoch = prevEpoch
        self.entryEpochs = entryEpochs
        self.commitIndex = commitIndex
        self.leaderLastIndex = leaderLastIndex ?? prevIndex + UInt64(entryEpochs.count)
    }

    /// Whether a real leader could have sent this: the previous entry's epoch at most the sender's
    /// (and 0 only before the log's start), entries' epochs from 1, never falling, at least the
    /// previous entry's and at most the sender's, and the batch within the leader's last index.
    public var isWellFormed: Bool {
        guard prevEpoch <= epoch, prevIndex > 0 || prevEpoch == 0, prevIndex <= UInt64.max / 2 else { return false }
        guard leaderLastIndex >= prevIndex + UInt64(entryEpochs.count) else { return false }
        var floor = max(prevEpoch, 1)
        for e in entryEpochs {
            guard e >= floor, e <= epoch else { return false }
            floor = e
        }
        return true
    }

    /// The indexes the batch carries.
    public var indexes: ClosedRange<UInt64>? {
        entryEpochs.isEmpty ? nil : (prevIndex + 1)...(prevIndex + UInt64(entryEpochs.count))
    }
}

/// A follower's answer to an append or a fence, as the leader or the fencing node reads it.
public enum ReplicaReply: Equatable, Sendable {
    /// The follower holds the leader's log through `lastIndex`, durably (per `--fsync`).
    case accepted(epoch: UInt64, lastIndex: UInt64)
    /// The entry before the batch is missing or differs; here is the follower's history.
    case mismatch(epoch: UInt64, history: EpochHistory)
    /// The follower promised a newer epoch: the sender no longer leads.
    case stale(promised: UInt64)
}
