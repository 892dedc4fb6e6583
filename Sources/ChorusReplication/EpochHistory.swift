/// Which epoch wrote each entry of one copy of a partition log, as runs (Kafka's leader-epoch cache).
///
/// Entries are numbered from 1; `lastIndex` 0 is an empty log. Runs have strictly increasing epochs
/// and starts. Two copies that hold an entry of the same epoch at the same index hold the same entry
/// and everything before it (one leader per epoch, which writes each index once), so comparing runs
/// finds where two copies part without reading a single entry.
public struct EpochHistory: Equatable, Sendable, CustomStringConvertible {
    public struct Run: Equatable, Sendable {
        public var epoch: UInt64
        /// Index of the run's first entry.
        public var start: UInt64
        public init(epoch: UInt64, start: UInt64) {
            self.epoch = epoch
            self.start = start
        }
    }

    /// Bound on runs kept (one per epoch that wrote here). Past it the oldest run is folded into the
    /// floor: entries that old are committed long since, the same on every copy.
    public static let maxRuns = 1024

    public private(set) var runs: [Run] = []
    public private(set) var lastIndex: UInt64 = 0
    /// Entries up to `floor` are no longer described by runs; they are committed and common to all copies.
    public private(set) var floor: UInt64 = 0
    /// The epoch of the entry at `floor` (0 when `floor` is 0).
    public private(set) var floorEpoch: UInt64 = 0

    public init() {}

    /// A history as another copy describes it (a peer's reply): nil unless the runs are strictly
    /// ascending, non-empty, contiguous from `floor + 1` and within `lastIndex`, at most `maxRuns`, with
    /// epochs from 1 (0 is the empty log's).
    public init?(floor: UInt64, floorEpoch: UInt64, runs: [Run], lastIndex: UInt64) {
        guard runs.count <= Self.maxRuns, floor <= lastIndex, (floor > 0) == (floorEpoch > 0) else { return nil }
        guard let first = runs.first else {
            guard floor == lastIndex else { return nil }
            (self.floor, self.floorEpoch, self.lastIndex) = (floor, floorEpoch, lastIndex)
            return
        }
        guard first.start > 0, first.start - 1 == floor, first.epoch >= floorEpoch else { return nil }
        for (a, b) in zip(runs, runs.dropFirst()) where !(a.epoch < b.epoch && a.start < b.start) { return nil }
        guard runs[runs.count - 1].start <= lastIndex else { return nil }
        (self.runs, self.floor, self.floorEpoch, self.lastIndex) = (runs, floor, floorEpoch, lastIndex)
    }

    public var lastEpoch: UInt64 { runs.last?.epoch ?? floorEpoch }
    public var position: LogPosition { LogPosition(lastEpoch: lastEpoch, lastIndex: lastIndex) }

    /// The epoch that wrote entry `index`; nil past the end, for 0, and at or below the floor.
    public func epoch(at index: UInt64) -> UInt64? {
        guard index > floor, index <= lastIndex else { return nil }
        var low = 0, high = runs.count - 1
        while low < high {
            let mid = (low + high + 1) >> 1
            if runs[mid].start <= index { low = mid } else { high = mid - 1 }
        }
        return runs[low].epoch
    }

    /// True if this copy holds entry `index` written in `epoch` (index 0, the empty prefix, always;
    /// entries at or below the floor are taken as held: they are committed).
    public func holds(index: UInt64, epoch: UInt64) -> Bool {
        if index == 0 { return true }
        if index > lastIndex { return false }
        if index <= floor { return true }
        return self.epoch(at: index) == epoch
    }

    /// Records `count` entries written in `epoch` after the last one.
    public mutating func append(epoch: UInt64, count: UInt64) {
        guard count > 0 else { return }
        append(epoch: epoch, through: lastIndex + count)
    }

    private mutating func append(epoch: UInt64, through index: UInt64) {
        precondition(epoch >= lastEpoch, "epochs only grow along a log")
        if runs.last?.epoch != epoch { runs.append(Run(epoch: epoch, start: lastIndex + 1)) }
        lastIndex = index
        if runs.count > Self.maxRuns {
            let dropped = runs.removeFirst()
            floor = runs[0].start - 1
            floorEpoch = dropped.epoch
        }
    }

    /// Drops every entry after `index`. Committed entries (at or below the floor) are never dropped.
    public mutating func truncate(after index: UInt64) {
        precondition(index >= floor, "truncating committed entries")
        guard index < lastIndex else { return }
        lastIndex = index
        while let last = runs.last, last.start > index { runs.removeLast() }
    }

    /// The last index this copy and `other` certainly hold alike: entries after it must be dropped
    /// from the copy that is behind before anything is appended to it.
    public func commonPrefix(with other: EpochHistory) -> UInt64 {
        let shortest = min(lastIndex, other.lastIndex)
        // Each floor is a committed prefix, which both copies hold as far as they reach.
        var best = min(max(floor, other.floor), shortest)
        var theirs: [UInt64: (UInt64, UInt64)] = [:]
        for (i, run) in other.runs.enumerated() {
            theirs[run.epoch] = (run.start, i + 1 < other.runs.count ? other.runs[i + 1].start - 1 : other.lastIndex)
        }
        for (i, run) in runs.enumerated() {
            guard let (start, end) = theirs[run.epoch] else { continue }
            let myEnd = i + 1 < runs.count ? runs[i + 1].start - 1 : lastIndex
            let low = max(run.start, start), high = min(myEnd, end)
            if low <= high { best = max(best, high) }
        }
        return best
    }

    public var description: String {
        "[" + runs.map { "e\($0.epoch)@\($0.start)" }.joined(separator: " ") + "] ..\(lastIndex)" + (floor > 0 ? " floor \(floor)" : "")
    }
}
