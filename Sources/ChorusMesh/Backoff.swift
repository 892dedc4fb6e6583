/// Reconnect delays: exponential from `base` to `cap`, with full jitter (a uniform draw in
/// [0, ceiling]) so peers that lost each other at the same moment do not reconnect in lockstep.
/// Pure: the random draw comes in as a value in [0, 1).
public struct Backoff: Sendable, Equatable {
    public let baseMs: Int64
    public let capMs: Int64
    public private(set) var attempt = 0

    public init(baseMs: Int64 = 100, capMs: Int64 = 10_000) {
        precondition(baseMs > 0 && capMs >= baseMs)
        self.baseMs = baseMs
        self.capMs = capMs
    }

    /// The ceiling of the next delay (before jitter).
    public var ceilingMs: Int64 {
        let shift = min(attempt, 40)
        let grown = baseMs.multipliedReportingOverflow(by: Int64(1) << Int64(shift))
        return grown.overflow ? capMs : min(capMs, grown.partialValue)
    }

    /// The delay before the next attempt, given a uniform `unit` in [0, 1); counts the attempt.
    public mutating func nextDelayMs(unit: Double) -> Int64 {
        let ceiling = ceilingMs
        attempt += 1
        return Int64((Double(ceiling) * min(max(unit, 0), 0.999_999)).rounded(.down))
    }

    /// A connection succeeded: start again from `base`.
    public mutating func reset() { attempt = 0 }
}
