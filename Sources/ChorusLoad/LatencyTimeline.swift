/// End-to-end latency per window of intended send time (count, count over 5 ms, maximum), so a
/// report shows whether its tail is a few stalls or a whole run near saturation.
/// Bounded: at most `maxWindows` windows (over 100 minutes at 100 ms); later sends are not counted.
public struct LatencyTimeline: Sendable, Equatable {
    public struct Window: Sendable, Equatable {
        public var count: UInt32 = 0
        public var over5ms: UInt32 = 0
        public var maxMicros: UInt32 = 0
    }

    public static let windowNanos: UInt64 = 100_000_000
    public static let maxWindows = 60_000
    public private(set) var windows: [Window] = []

    public init() {}

    /// Records one latency for a message meant to be sent at `intendedOffset` (both nanoseconds).
    public mutating func record(intendedOffset: UInt64, latencyNanos: UInt64) {
        let i = Int(intendedOffset / Self.windowNanos)
        guard i < Self.maxWindows else { return }
        if windows.count <= i { windows.append(contentsOf: repeatElement(Window(), count: i + 1 - windows.count)) }
        let micros = UInt32(min(latencyNanos / 1000, UInt64(UInt32.max)))
        windows[i].count += 1
        if micros > 5000 { windows[i].over5ms += 1 }
        windows[i].maxMicros = max(windows[i].maxMicros, micros)
    }

    public mutating func merge(_ other: LatencyTimeline) {
        if windows.count < other.windows.count {
            windows.append(contentsOf: repeatElement(Window(), count: other.windows.count - windows.count))
        }
        for (i, w) in other.windows.enumerated() {
            windows[i].count += w.count
            windows[i].over5ms += w.over5ms
            windows[i].maxMicros = max(windows[i].maxMicros, w.maxMicros)
        }
    }

    /// `[[startSeconds, count, over5ms, maxMs], ...]`, windows with no message left out.
    var jsonObject: [[Double]] {
        windows.enumerated().compactMap { i, w in
            w.count == 0 ? nil : [Double(i) / 10, Double(w.count), Double(w.over5ms), Double(w.maxMicros) / 1000]
        }
    }
}
