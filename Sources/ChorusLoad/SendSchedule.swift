/// The open-loop send order of the connections on one event loop, as a plain value.
///
/// Every connection sends with the same period and connection `i` is offset by `i / rate`, so over
/// the connections of one loop, sorted by index, the due times rise cyclically: i1, i2, ..., ik,
/// then i1 one period later. One cursor walking that cycle therefore yields the loop's slots in
/// time order, and one timer per loop replaces a timer per connection.
public struct SendSchedule: Sendable, Equatable {
    public struct Slot: Sendable, Equatable {
        /// Position in `indices` (and in the shell's connection array).
        public var position: Int
        /// The connection's index in the plan.
        public var connection: Int
        /// Which of the connection's messages (from 1).
        public var n: UInt64
        /// Intended send time relative to the start, nanoseconds.
        public var offset: UInt64
    }

    public let plan: LoadPlan
    /// The loop's connection indices, ascending.
    public let indices: [Int]
    private var cursor = 0
    private var round: UInt64 = 0

    public init(plan: LoadPlan, indices: [Int]) {
        self.plan = plan
        self.indices = indices.sorted()
    }

    /// The next slot, or nil when the run's sending window is over (or the loop has no connections).
    public var next: Slot? {
        guard !indices.isEmpty else { return nil }
        let connection = indices[cursor]
        let offset = plan.intendedOffset(connection: connection, n: round + 1)
        guard offset < plan.durationNanos else { return nil }
        return Slot(position: cursor, connection: connection, n: round + 1, offset: offset)
    }

    /// Moves past the slot `next` returned.
    public mutating func advance() {
        cursor += 1
        if cursor == indices.count {
            cursor = 0
            round += 1
        }
    }
}
