@testable import ChorusLoad
import Testing

/// The report's timeline: latencies land in the window of their intended send time.
@Suite struct LatencyTimelineTests {
    @Test func latenciesAndSendLagLandInTheirWindow() {
        var t = LatencyTimeline()
        t.record(intendedOffset: 50_000_000, latencyNanos: 1_000_000)  // window 0, 1 ms
        t.record(intendedOffset: 99_999_999, latencyNanos: 7_000_000)  // window 0, over 5 ms
        t.record(intendedOffset: 350_000_000, latencyNanos: 5_000_000)  // window 3, exactly 5 ms: not over
        t.recordSend(intendedOffset: 350_000_000, lagNanos: 2_500_000)
        #expect(t.windows.count == 4)
        #expect(t.windows[0] == .init(count: 2, over5ms: 1, maxMicros: 7000, sendLagMaxMicros: 0))
        #expect(t.windows[3] == .init(count: 1, over5ms: 0, maxMicros: 5000, sendLagMaxMicros: 2500))
        #expect(t.jsonObject == [[0, 2, 1, 7, 0], [0.3, 1, 0, 5, 2.5]], "empty windows are left out")
    }

    @Test func mergeAddsCountsAndKeepsMaxima() {
        var a = LatencyTimeline(), b = LatencyTimeline()
        a.record(intendedOffset: 0, latencyNanos: 9_000_000)
        b.record(intendedOffset: 10_000_000, latencyNanos: 2_000_000)
        b.record(intendedOffset: 250_000_000, latencyNanos: 6_000_000)
        a.merge(b)
        #expect(a.windows.map(\.count) == [2, 0, 1])
        #expect(a.windows.map(\.maxMicros) == [9000, 0, 6000])
        #expect(a.windows.map(\.over5ms) == [1, 0, 1])
    }

    @Test func windowsAreBounded() {
        var t = LatencyTimeline()
        t.record(intendedOffset: UInt64(LatencyTimeline.maxWindows) * LatencyTimeline.windowNanos, latencyNanos: 1)
        #expect(t.windows.isEmpty, "past the bound: not counted, nothing allocated")
    }
}
