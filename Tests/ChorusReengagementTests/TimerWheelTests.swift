import ChorusReengagement
import ChorusTestKit
import Testing

/// The wheel against a plain model: every timer fires exactly once, never early, at most one tick
/// late, whatever the mix of deadlines, cancels, re-arms and advance steps.
@Suite struct TimerWheelTests {
    static let day: Int64 = 86_400_000
    let start: Int64 = 1_795_000_000_000

    @Test func firesAtTheTickOfItsDeadlineNeverBefore() {
        var w = TimerWheel(nowMs: start)
        let deadline = start + 10 * Self.day
        w.schedule(7, atMs: deadline)
        #expect(w.advance(toMs: deadline - 1).isEmpty, "one millisecond before: nothing")
        #expect(w.advance(toMs: deadline) == [7], "at the deadline: fires")
        #expect(w.advance(toMs: deadline + Self.day).isEmpty, "once")
        #expect(!w.isArmed(7) && w.count == 0)
    }

    @Test func aDeadlineBetweenTicksFiresAtTheNextTick() {
        var w = TimerWheel(nowMs: start)
        w.schedule(1, atMs: start + 1_500)
        #expect(w.advance(toMs: start + 1_999).isEmpty)
        #expect(w.advance(toMs: start + 2_000) == [1])
    }

    @Test func cancelAndRearm() {
        var w = TimerWheel(nowMs: start)
        w.schedule(1, atMs: start + Self.day)
        w.schedule(2, atMs: start + Self.day)
        w.cancel(1)
        w.schedule(2, atMs: start + 2 * Self.day)  // a login moved the deadline
        #expect(w.advance(toMs: start + Self.day).isEmpty)
        #expect(w.advance(toMs: start + 2 * Self.day) == [2])
        w.cancel(99)  // never armed: nothing
        #expect(w.count == 0)
    }

    @Test func aPastDeadlineFiresAtTheNextAdvance() {
        var w = TimerWheel(nowMs: start)
        _ = w.advance(toMs: start + 5_000)
        w.schedule(3, atMs: start)
        #expect(w.advance(toMs: start + 5_000) == [3])
    }

    @Test func timersBeyondTheTopLevelWaitInOverflowAndStillFireOnTime() {
        var w = TimerWheel(nowMs: start, tickMs: 1_000, levels: 2)  // 2 levels: 4,096 s of reach
        let far = start + 3 * Self.day
        w.schedule(5, atMs: far)
        w.schedule(6, atMs: start + 30_000)
        #expect(w.advance(toMs: start + 30_000) == [6])
        #expect(w.advance(toMs: far - 1).isEmpty)
        #expect(w.advance(toMs: far) == [5])
    }

    @Test(arguments: [(1_000 as Int64, 4), (1_000, 2), (60_000, 3), (100, 4)])
    func randomScheduleCancelAndAdvanceMatchAPlainModel(tickMs: Int64, levels: Int) {
        var rng = SplitMix64(seed: UInt64(tickMs) &* 31 &+ UInt64(levels))
        var w = TimerWheel(nowMs: start, tickMs: tickMs, levels: levels)
        var model: [UInt32: Int64] = [:]
        var now = start
        let horizon = 12 * Self.day
        var problems: [String] = []
        for _ in 0..<4_000 {
            switch rng.next() % 10 {
            case 0...4:
                let id = UInt32(rng.next() % 500)
                let deadline = now + Int64(rng.next() % UInt64(horizon)) - 5_000
                w.schedule(id, atMs: deadline)
                model[id] = deadline
            case 5:
                let id = UInt32(rng.next() % 500)
                w.cancel(id)
                model[id] = nil
            default:
                now += Int64(rng.next() % UInt64(Self.day / 4))
                let fired = w.advance(toMs: now)
                if Set(fired).count != fired.count { problems.append("a timer fired twice at \(now)") }
                for id in fired {
                    guard let deadline = model.removeValue(forKey: id) else { problems.append("\(id) fired unarmed"); continue }
                    if deadline > now { problems.append("\(id) fired early: \(deadline) at \(now)") }
                }
                // Everything due by the last completed tick has fired: at most one tick late.
                for (id, deadline) in model where deadline <= now - tickMs { problems.append("\(id) for \(deadline) late at \(now)") }
            }
            if w.count != model.count { problems.append("count \(w.count) != \(model.count)") }
        }
        #expect(problems.isEmpty, "\(problems.prefix(5))")
    }

    @Test func memoryPerTimerStaysFarUnder64Bytes() {
        var w = TimerWheel(nowMs: start)
        let n = 200_000
        w.reserve(ids: n)
        for id in 0..<UInt32(n) { w.schedule(id, atMs: start + Int64(id % 20) * Self.day / 2 + Int64(id)) }
        #expect(w.count == n)
        #expect(w.bytesPerTimer < 64, "\(w.bytesPerTimer) bytes per timer")
    }
}
