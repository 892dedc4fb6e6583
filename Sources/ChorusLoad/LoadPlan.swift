/// What one load run does, as plain values: who talks to whom and when each message is due.
/// Connections are paired (0 with 1, 2 with 3, ...); each pair shares one direct conversation and
/// both sides send. Open loop (`rate > 0`): the run's messages form one evenly spaced stream at
/// `rate` per second, connection `i` taking every `connections`-th slot, so latency is measured from
/// the *intended* send time and a stalled server cannot hide its stall (no coordinated omission).
/// Closed loop (`rate == 0`): every connection keeps `window` messages in flight.
public struct LoadPlan: Sendable, Equatable {
    public var connections: Int
    public var rate: Double
    public var window: Int
    public var durationNanos: UInt64
    public var warmupNanos: UInt64

    public init(connections: Int, rate: Double, window: Int = 1, durationNanos: UInt64, warmupNanos: UInt64 = 0) {
        precondition(connections >= 2 && connections % 2 == 0, "connections come in pairs")
        precondition(rate >= 0 && window >= 1)
        self.connections = connections
        self.rate = rate
        self.window = window
        self.durationNanos = durationNanos
        self.warmupNanos = warmupNanos
    }

    public var isOpenLoop: Bool { rate > 0 }

    /// The connection that shares a conversation with `index`.
    public func peer(of index: Int) -> Int { index ^ 1 }

    /// Nanoseconds between two messages of one connection (open loop).
    public var intervalNanos: Double { Double(connections) * 1e9 / rate }

    /// When connection `index` should send its `n`-th message (n from 1), relative to the start.
    public func intendedOffset(connection index: Int, n: UInt64) -> UInt64 {
        UInt64((Double(index) * 1e9 / rate + Double(n - 1) * intervalNanos).rounded())
    }

    /// Whether a latency sample for a message intended at `offset` counts (after the warm-up).
    public func counts(intendedOffset offset: UInt64) -> Bool { offset >= warmupNanos }
}
