import ChorusCluster

/// Rebuilds at start, record by record in log order, what replication decided for each partition:
/// a copy's epoch history, promise and commit index, and which engine events may be applied, in
/// index order, once committed (docs/REPLICATION.md, "The log"). Pure.
///
/// A record not yet committed when the log ends stays pending: it is applied when a leader's
/// commit index covers it, or dropped when a leader truncates it. The pending tail is what the live
/// path had in flight, so its bound is the leader's window of unacknowledged records.
public struct PartitionReplay: Sendable {
    public struct Pending: Equatable, Sendable {
        public var index: UInt64
        public var kind: UInt16
        public var payload: [UInt8]
        public var lsn: UInt64
    }

    /// One partition's copy as the log left it.
    public struct Copy: Equatable, Sendable {
        public var history = EpochHistory()
        public var promised: UInt64 = 0
        public var committed: UInt64 = 0
        /// Written, not yet committed, in index order.
        public var pending: [Pending] = []
        /// Where this node's log holds each record: the LSN of index `lsnBase + 1 + i` is `lsns[i]`
        /// (8 bytes a record), so a leader can resend any record, not only those it keeps in memory.
        public var lsns: [UInt64] = []
        public var lsnBase: UInt64 = 0

        public init(history: EpochHistory = EpochHistory(), promised: UInt64 = 0, committed: UInt64 = 0, pending: [Pending] = []) {
            self.history = history
            self.promised = promised
            self.committed = committed
            self.pending = pending
            lsnBase = history.lastIndex
        }

        /// The LSN of the record at `index` in this node's log, if it holds it.
        public func lsn(of index: UInt64) -> UInt64? {
            guard index > lsnBase, index - lsnBase <= UInt64(lsns.count) else { return nil }
            return lsns[Int(index - lsnBase - 1)]
        }
    }

    /// What the engine does, in order.
    public enum Action: Equatable, Sendable {
        /// Apply this event, logged at `lsn`.
        case apply(kind: UInt16, payload: [UInt8], lsn: UInt64)
        /// Forget every key of the partition (a snapshot replaces them).
        case reset(PartitionId)
    }

    /// A log whose replication records contradict each other: recovery stops (never guesses).
    public enum ReplayError: Error, Equatable, Sendable {
        case gap(PartitionId, expected: UInt64, found: UInt64)
        case epochFalls(PartitionId, index: UInt64, epoch: UInt64, last: UInt64)
        case truncatesCommitted(PartitionId, after: UInt64, committed: UInt64)
    }

    public private(set) var copies: [PartitionId: Copy] = [:]

    public init() {}

    /// Goes on from copies already rebuilt (a follower's copy, when this node starts to lead it).
    public init(copies: [PartitionId: Copy]) { self.copies = copies }

    /// Replaces `p`'s copy with one replayed elsewhere (a leader's, when this node hands it off).
    public mutating func replace(_ p: PartitionId, with copy: Copy) { copies[p] = copy }

    /// An event to apply; none for a leader's epoch-start record.
    static func applying(_ kind: UInt16, _ payload: [UInt8], _ lsn: UInt64) -> [Action] {
        kind == ReplicationRecord.epochStartKind ? [] : [.apply(kind: kind, payload: payload, lsn: lsn)]
    }

    /// Runs `body` on `p`'s copy in place: the copy leaves the dictionary while it changes and
    /// nothing else holds it, so its arrays (an LSN per record, the pending tail) are never
    /// duplicated; a duplicate per record made a rebuild quadratic. An absent copy starts empty and
    /// stays absent if `body` throws. `body` throws only before it changes anything.
    private mutating func update<R>(_ p: PartitionId, _ body: (inout Copy) throws(ReplayError) -> R) throws(ReplayError) -> R {
        var c = copies.removeValue(forKey: p)
        let existed = c != nil
        var copy = c.take() ?? Copy()
        do {
            let result = try body(&copy)
            copies[p] = copy
            return result
        } catch {
            if existed { copies[p] = copy }
            throw error
        }
    }

    public mutating func replay(_ record: ReplicationRecord, lsn: UInt64) throws(ReplayError) -> [Action] {
        switch record {
        case .replicated(let p, let epoch, let index, let kind, let payload):
            return try update(p) { c throws(ReplayError) in
                guard index == c.history.lastIndex + 1 else { throw .gap(p, expected: c.history.lastIndex + 1, found: index) }
                guard epoch >= c.history.lastEpoch else { throw .epochFalls(p, index: index, epoch: epoch, last: c.history.lastEpoch) }
                c.history.append(epoch: epoch, count: 1)
                if c.lsnBase + UInt64(c.lsns.count) + 1 != index {
                    c.lsns = []
                    c.lsnBase = index - 1
                }
                c.lsns.append(lsn)
                if index <= c.committed { return Self.applying(kind, payload, lsn) }
                c.pending.append(Pending(index: index, kind: kind, payload: payload, lsn: lsn))
                return []
            }
        case .committed(let p, let index):
            guard copies[p] != nil else { return [] }
            return try update(p) { c throws(ReplayError) in
                let upTo = min(index, c.history.lastIndex)
                guard upTo > c.committed else { return [] }
                c.committed = upTo
                let ready = c.pending.prefix { $0.index <= upTo }
                let actions = ready.flatMap { Self.applying($0.kind, $0.payload, $0.lsn) }
                c.pending.removeFirst(ready.count)
                return actions
            }
        case .truncated(let p, let after):
            return try update(p) { c throws(ReplayError) in
                guard after >= c.committed else { throw .truncatesCommitted(p, after: after, committed: c.committed) }
                c.history.truncate(after: max(after, c.history.floor))
                c.pending.removeAll { $0.index > after }
                let keep = after > c.lsnBase ? min(Int(after - c.lsnBase), c.lsns.count) : 0
                c.lsns.removeLast(c.lsns.count - keep)
                return []
            }
        case .promised(let p, let epoch):
            copies[p, default: Copy()].promised = max(copies[p, default: Copy()].promised, epoch)
            return []
        case .reset(let p, let history):
            let promised = copies[p]?.promised ?? 0
            copies[p] = Copy(history: history, promised: promised, committed: history.lastIndex, pending: [])
            return [.reset(p)]
        case .snapshotEvent(_, let kind, let payload):
            return [.apply(kind: kind, payload: payload, lsn: lsn)]
        }
    }
}
