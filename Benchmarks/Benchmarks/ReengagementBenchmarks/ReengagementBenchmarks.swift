import Benchmark
import ChorusCore
import ChorusReengagement

// The timer wheel at the scale the design asks for: 10,000,000 armed inactivity timers (bytes per
// timer, schedule and cancel per operation), a burst of 1,000,000 falling due at once, and the
// outbox taking 1,000,000 queued emails and then their sends.
// Run from Benchmarks/: `swift package benchmark --target ReengagementBenchmarks`.

let benchmarks: @Sendable () -> Void = {
    let perOp = BenchmarkMetric.custom("ns per operation", polarity: .prefersSmaller, useScalingFactor: false)
    let perTimer = BenchmarkMetric.custom("bytes per timer", polarity: .prefersSmaller, useScalingFactor: false)
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .peakMemoryResident],
        timeUnits: .milliseconds,
        warmupIterations: 0,
        maxDuration: .seconds(60),
        maxIterations: 3,
        thresholds: [
            // A shared 2-core VM: these catch a collapse, not a few per cent; the bytes per timer
            // are exact.
            .wallClock: .init(relative: [.p90: 60]),
            .peakMemoryResident: .init(relative: [.p90: 25]),
            perOp: .init(relative: [.p90: 60]),
            perTimer: .init(relative: [.p90: 10]),
        ]
    )
    let day: Int64 = 86_400_000
    let now: Int64 = 1_795_000_000_000

    // 10M timers spread over ten days of deadlines (logins spread over the last ten days), armed
    // then all cancelled; the wheel's own accounting gives the bytes per timer.
    Benchmark("Wheel.scheduleAndCancel10M", configuration: .init(metrics: [.wallClock, .peakMemoryResident, perOp, perTimer])) { benchmark in
        let n = 10_000_000
        var wheel = TimerWheel(nowMs: now)
        wheel.reserve(ids: n)
        benchmark.startMeasurement()
        let started = ContinuousClock.now
        for id in 0..<UInt32(n) { wheel.schedule(id, atMs: now + day * 10 - Int64(id % 864_000) * 1_000) }
        let armed = ContinuousClock.now
        let bytes = wheel.bytesPerTimer
        for id in 0..<UInt32(n) { wheel.cancel(id) }
        let done = ContinuousClock.now
        benchmark.stopMeasurement()
        func ns(_ d: Duration) -> Int { Int(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000) }
        benchmark.measurement(perOp, ns(done - started) / (2 * n))
        benchmark.measurement(perTimer, Int(bytes.rounded(.up)))
        blackHole(armed)
    }

    // 1M timers due in the same second: the time the wheel takes to hand them over.
    Benchmark("Wheel.burst1MDueAtOnce", configuration: .init(metrics: [.wallClock])) { benchmark in
        let n = 1_000_000
        var wheel = TimerWheel(nowMs: now)
        wheel.reserve(ids: n)
        for id in 0..<UInt32(n) { wheel.schedule(id, atMs: now + 10 * day) }
        benchmark.startMeasurement()
        let fired = wheel.advance(toMs: now + 10 * day)
        benchmark.stopMeasurement()
        precondition(fired.count == n)
    }

    // A burst through the outbox: 1,000,000 emails queued, then all sent in queueing order, as the
    // sender records them. Linear; an array's `removeAll` per send made this quadratic (minutes).
    Benchmark("Outbox.queueAndSend1M", configuration: .init(metrics: [.wallClock, .peakMemoryResident])) { benchmark in
        let n = 1_000_000
        let queued: [ChorusEvent] = (0..<n).map { i in
            .emailQueued(userId: "u_\(i)", periodStart: now, messageId: "<r.u_\(i)@chorus.test>", to: "u\(i)@example.com", at: now)
        }
        let sent: [ChorusEvent] = (0..<n).map { i in .emailSent(messageId: "<r.u_\(i)@chorus.test>", at: now + 1) }
        var outbox = Outbox()
        benchmark.startMeasurement()
        for e in queued { outbox.apply(e) }
        precondition(outbox.pending.count == n)
        for e in sent { outbox.apply(e) }
        benchmark.stopMeasurement()
        precondition(outbox.pending.isEmpty)
    }
}
