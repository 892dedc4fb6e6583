import ChorusMesh
import Testing

@Suite struct BackoffTests {
    @Test func ceilingsDoubleToTheCapAndResetAfterSuccess() {
        var b = Backoff(baseMs: 100, capMs: 1_000)
        var ceilings: [Int64] = []
        for _ in 0..<6 {
            ceilings.append(b.ceilingMs)
            _ = b.nextDelayMs(unit: 0.5)
        }
        #expect(ceilings == [100, 200, 400, 800, 1_000, 1_000])
        b.reset()
        #expect(b.ceilingMs == 100 && b.attempt == 0)
    }

    @Test func jitterSpansZeroToTheCeilingAndNeverOverflows() {
        var b = Backoff(baseMs: 100, capMs: 10_000)
        let first = b.nextDelayMs(unit: 0), second = b.nextDelayMs(unit: 0.5), third = b.nextDelayMs(unit: 1.0)
        #expect(first == 0 && second == 100 && third == 399)  // ceilings 100, 200, 400; unit clamped below 1
        for _ in 0..<200 {
            let d = b.nextDelayMs(unit: 0.99)
            #expect((0..<10_000).contains(d))
        }
    }
}
