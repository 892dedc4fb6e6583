/// End-to-end latency per window of intended send time (count, count over 5 ms, maximum), so a
/// report shows whether its tail is a few stalls or a whole run near saturation, and how late the
/// generator itself sent (a stall on its side, not the server's).
/// Bounded: at most `maxWindows` windows (over 100 minutes at 100 ms); later sends are not counted.
public struct LatencyTimeline: Sendable, Equatable {
    public struct Window: Sendable, Equatable {
        public var count: UInt32 = 0
        public var over5ms: UInt32 = 0
        public var maxMicros: UInt32 = 0
        /// The latest an open-loop send left after its intended time.
        public var sendLagMaxMicros: UInt32 = 0
    }

    public static let windowNanos: UInt64 = 100_000_000
    public static let maxWindows = 60_000
    public private(set) var windows: [Window] = []

    public init() {}

    /// Records one latency for a message meant to be sent at `intendedOffset` (both nanoseconds).
    public mutating func record(intendedOffset: UInt64, latencyNanos: UInt64) {
        guard let i = window(intendedOffset) else { return }
        let micros = Self.micros(latencyNanos)
        windows[i].count += 1
        if micros > 5000 { windows[i].over5ms += 1 }
        windows[i].maxMicros = max(windows[i].maxMicros, micros)
    }

    /// Records how late a message left (nanoseconds after its intended send time).
    public mutating func recordSend(intendedOffset: UInt64, lagNanos: UInt64) {
        guard let i = window(intendedOffset) else { return }
        windows[i].sendLagMaxMicros = max(windows[i].sendLagMaxMicros, Self.micros(lagNanos))
    }

    private mutating func window(_ offset: UInt64) -> Int? {
        let i = Int(offset / Self.windowNanos)
        guard i < Self.maxWindows else { return nil }
        if windows.count <= i { windows.append(contentsOf: repeatElement(Window(), count: i + 1 - windows.count)) }
        return i
    }

    private static func micros(_ nanos: UInt64) -> UInt32 { UInt32(min(nanos / 1000, UInt64(UInt32.max))) }

    public mutating func merge(_ other: LatencyTimeline) {
        if windows.count < other.windows.count {
            windows.append(contentsOf: repeatElement(Window(), count: other.windows.count - windows.count))
        }
        for (i, w) in other.windows.enumerated() {
            windows[i].count += w.count
            windows[i].over5ms += w.over5ms
            windows[i].maxMicros = max(windows[i].maxMicros, w.maxMicros)
            windows[i].sendLagMaxMicros = max(windows[i].sendLagMaxMicros, w.sendLagMaxMicros)
        }
    }

    /// `[[startSeconds, count, over5ms, maxMs, sendLagMaxMs], ...]`, windows with no message left out.
    var jsonObject: [[Double]] {
        windows.enumerated().compactMap { i, w in
            w.count == 0 ? nil : [Double(i) / 10, Double(w.count), Double(w.over5ms), Double(w.maxMicros) / 1000, Double(w.sendLagMaxMicros) / 1000]
        }
    }
}
