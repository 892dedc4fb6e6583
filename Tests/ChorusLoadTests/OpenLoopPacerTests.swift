@testable import ChorusLoad
import Testing

@Suite struct OpenLoopPacerTests {
    /// Slots within one quantum share the timer at its end; one on a boundary keeps its own time, so no
    /// slot is ever sent before it is due.
    @Test func timersFallOnQuantumBoundariesNeverEarly() {
        let q = OpenLoopPacer.quantumNanos
        #expect(OpenLoopPacer.timerOffset(for: 0) == 0)
        #expect(OpenLoopPacer.timerOffset(for: 1) == q)
        #expect(OpenLoopPacer.timerOffset(for: q - 1) == q)
        #expect(OpenLoopPacer.timerOffset(for: q) == q)
        #expect(OpenLoopPacer.timerOffset(for: q + 1) == 2 * q)
        for offset in stride(from: UInt64(0), to: 10 * q, by: 37_777) {
            let t = OpenLoopPacer.timerOffset(for: offset)
            #expect(t >= offset && t - offset < q && t % q == 0)
        }
    }
}
