/// A partition leader's rules: what to send each follower, and when an entry is acknowledged (on
/// `ackReplicas` copies, its own included). Pure: the shell appends, sends and acks clients.
///
/// Invariants: the leader only appends in its own epoch; `commitIndex` never decreases and only
/// moves to an entry of this epoch (Raft's rule: an entry of an older epoch is committed by a newer
/// one above it, never by counting its own copies, which a later leader could still overwrite).
public struct ReplicaLeader: Equatable, Sendable {
    /// How a follower is being fed (etcd raft's `Progress` states).
    public enum Mode: Equatable, Sendable {
        /// Not known where it agrees: one append at a time until it accepts.
        case probe
        /// Agrees up to `match`: appends are pipelined.
        case stream
        /// It needs entries the leader no longer keeps: it must be rebuilt from a snapshot.
        case snapshot
    }

    public struct Progress: Equatable, Sendable {
        /// Highest index known durable on the follower and equal to the leader's.
        public var match: UInt64 = 0
        /// Next index to send.
        public var next: UInt64
        public var mode: Mode = .probe
        /// A probe is outstanding (probe mode sends one at a time).
        public var probing = false
    }

    public let epoch: UInt64
    public let ackReplicas: Int
    public private(set) var history: EpochHistory
    /// Highest index durable on this node.
    public private(set) var durable: UInt64
    public private(set) var commitIndex: UInt64
    public private(set) var followers: [String: Progress]

    /// Leading `epoch` with this copy of the log, durable through `durable` (default: all of it);
    /// `commitIndex` is what this node knew committed.
    public init(epoch: UInt64, history: EpochHistory, durable: UInt64? = nil, followers: [String], ackReplicas: Int, commitIndex: UInt64 = 0) {
        precondition(history.lastEpoch <= epoch, "a leader's log holds no newer epoch")
        precondition(ackReplicas >= 1 && ackReplicas <= followers.count + 1, "ack-replicas within the replica count")
        self.epoch = epoch
        self.ackReplicas = ackReplicas
        self.history = history
        self.durable = min(durable ?? history.lastIndex, history.lastIndex)
        self.commitIndex = min(commitIndex, history.lastIndex)
        self.followers = Dictionary(uniqueKeysWithValues: followers.map { ($0, Progress(next: history.lastIndex + 1)) })
    }

    /// Appends `count` new entries in this epoch; returns their indexes.
    public mutating func append(count: Int) -> ClosedRange<UInt64> {
        precondition(count > 0)
        let first = history.lastIndex + 1
        history.append(epoch: epoch, count: UInt64(count))
        return first...history.lastIndex
    }

    /// Entries through `index` are durable here. Returns the newly committed range, if any.
    public mutating func markDurable(through index: UInt64) -> ClosedRange<UInt64>? {
        durable = max(durable, min(index, history.lastIndex))
        return advanceCommit()
    }

    /// A follower's reply. Returns the newly committed range, if any; `deposed` when a newer epoch
    /// was promised (this node must stop acknowledging for the partition and step down).
    public mutating func receive(_ reply: ReplicaReply, from follower: String) -> (committed: ClosedRange<UInt64>?, deposed: Bool) {
        guard var p = followers[follower] else { return (nil, false) }
        switch reply {
        case .stale(let promised):
            return (nil, promised > epoch)
        case .accepted(let e, let lastIndex):
            guard e == epoch, lastIndex <= history.lastIndex else { return (nil, false) }
            p.match = max(p.match, lastIndex)
            p.next = max(p.next, p.match + 1)
            p.mode = .stream
            p.probing = false
            followers[follower] = p
            return (advanceCommit(), false)
        case .mismatch(let e, let theirs):
            guard e == epoch else { return (nil, false) }
            let common = history.commonPrefix(with: theirs)
            p.match = min(p.match, common)
            p.next = common + 1
            p.mode = .probe
            p.probing = false
            followers[follower] = p
            return (nil, false)
        }
    }

    /// The link to a follower broke: what was in flight may be lost, so probe again from its match.
    public mutating func linkLost(_ follower: String) {
        guard var p = followers[follower] else { return }
        p.next = p.match + 1
        p.mode = .probe
        p.probing = false
        followers[follower] = p
    }

    /// A rebuilt follower holds the log through `index` (from a snapshot): stream from there.
    public mutating func rebuilt(_ follower: String, through index: UInt64) {
        guard var p = followers[follower] else { return }
        p.match = max(p.match, min(index, history.lastIndex))
        p.next = p.match + 1
        p.mode = .probe
        p.probing = false
        followers[follower] = p
    }

    /// What to send a follower now. `oldestKept` is the oldest entry the shell can still send;
    /// `maxEntries` bounds the batch. Nil: nothing to send (caught up, or a probe is outstanding).
    public enum Send: Equatable, Sendable {
        case append(AppendRequest)
        /// The follower needs entries older than `oldestKept`: send a snapshot of the partition.
        case snapshot
    }

    public mutating func next(for follower: String, oldestKept: UInt64, maxEntries: Int, heartbeat: Bool = false) -> Send? {
        guard var p = followers[follower], p.mode != .snapshot else { return nil }
        if p.probing { return nil }
        if p.next < oldestKept, p.next <= history.lastIndex {
            p.mode = .snapshot
            followers[follower] = p
            return .snapshot
        }
        let last = min(history.lastIndex, p.next + UInt64(max(maxEntries, 1)) - 1)
        guard p.next <= last || heartbeat || p.mode == .probe else { return nil }
        let prev = p.next - 1
        var epochs: [UInt64] = []
        if p.next <= last {
            epochs.reserveCapacity(Int(last - p.next + 1))
            for i in p.next...last { epochs.append(history.epoch(at: i) ?? epoch) }
        }
        let request = AppendRequest(
            epoch: epoch, prevIndex: prev, prevEpoch: history.epoch(at: prev) ?? (prev == 0 ? 0 : history.floorEpoch),
            entryEpochs: epochs, commitIndex: commitIndex, leaderLastIndex: history.lastIndex)
        if p.mode == .probe {
            p.probing = true
        } else {
            p.next = last + 1
        }
        followers[follower] = p
        return .append(request)
    }

    /// The shell gave up on a snapshot transfer (link lost): try again from the follower's match.
    public mutating func snapshotFailed(_ follower: String) { linkLost(follower) }

    private mutating func advanceCommit() -> ClosedRange<UInt64>? {
        var copies = followers.values.map(\.match)
        copies.append(durable)
        copies.sort(by: >)
        let candidate = copies[ackReplicas - 1]
        guard candidate > commitIndex, history.epoch(at: candidate) == epoch else { return nil }
        let newly = (commitIndex + 1)...candidate
        commitIndex = candidate
        return newly
    }
}
