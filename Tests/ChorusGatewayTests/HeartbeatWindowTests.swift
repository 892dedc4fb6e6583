import ChorusGateway
import Testing

/// A silent session is closed within 2 x heartbeatMs, never later, and a client that sends a
/// frame every heartbeat is never closed: checked for every phase of silence against the sweeps.
@Suite struct HeartbeatWindowTests {
    /// The time from a session's last frame to the sweep that closes it, sweeps at multiples of the
    /// interval and the last frame at `lastFrameMs`.
    func closedAfter(_ w: HeartbeatWindow, lastFrameMs: Int64) -> Int64 {
        var sweep = (lastFrameMs / w.sweepIntervalMs + 1) * w.sweepIntervalMs
        while !w.isSilent(silentForMs: sweep - lastFrameMs) { sweep += w.sweepIntervalMs }
        return sweep - lastFrameMs
    }

    @Test(arguments: [100, 300, 1_000, 30_000, 3_600_000])
    func closedWithinTwiceTheHeartbeatAndNotBeforeOneAndAHalf(heartbeatMs: Int64) {
        let w = HeartbeatWindow(heartbeatMs: heartbeatMs)
        for phase in stride(from: Int64(0), to: w.sweepIntervalMs, by: Int(max(1, w.sweepIntervalMs / 97))) {
            let after = closedAfter(w, lastFrameMs: 10 * heartbeatMs + phase)
            #expect(after <= w.latestCloseMs && w.latestCloseMs <= heartbeatMs * 7 / 4 + 1, "phase \(phase)")
            #expect(after > heartbeatMs * 3 / 2, "phase \(phase)")
        }
        // A client that sends every heartbeat is never silent at a sweep.
        #expect(!w.isSilent(silentForMs: heartbeatMs))
    }
}
