import ChorusCore
import Foundation
import Synchronization
@testable import ChorusWAL
import Testing

/// A stand-in for an event loop: one dedicated thread that runs jobs handed to it, and keeps the work
/// deferred to it (`CommitDeferral`) until told to run it.
/// A mutex-guarded value that escaping closures can share.
private final class Shared<T: Sendable>: Sendable {
    private let m: Mutex<T>
    init(_ v: T) { m = Mutex(v) }
    func with<R: Sendable>(_ body: (inout T) -> R) -> R { m.withLock { body(&$0) } }
}

private final class LoopThread: @unchecked Sendable {
    private let queued = Shared<[@Sendable () -> Void]>([])
    private let jobs = Shared<[@Sendable () -> Void]>([])
    private let ready = DispatchSemaphore(value: 0)
    let threadID = Shared<pthread_t?>(nil)

    init() {
        let started = DispatchSemaphore(value: 0)
        Thread { [self] in
            threadID.with { $0 = pthread_self() }
            CommitDeferral.install { [queued] work in queued.with { $0.append(work) } }
            started.signal()
            while true {
                ready.wait()
                guard let job = jobs.with({ $0.isEmpty ? nil : $0.removeFirst() }) else { return }
                job()
            }
        }.start()
        started.wait()
    }

    /// Runs `body` on the loop thread and waits for it.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let result = Shared<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        jobs.with { $0.append { result.with { $0 = body() }; done.signal() } }
        ready.signal()
        done.wait()
        return result.with { $0! }
    }

    /// Runs what was deferred so far, on the loop thread; returns how many closures ran.
    func drain() -> Int {
        run { [queued] in
            let work = queued.with { q in defer { q.removeAll() }; return q }
            for w in work { w() }
            return work.count
        }
    }

    /// Ends the thread (its deferrer goes with it).
    func stop() { ready.signal() }
}

@Suite struct DeferredCommitTests {
    @Test func neverModeAppendsOnALoopCommitThereWhenTheLoopRunsItsDeferredWork() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions(.never))
        let loop = LoopThread()
        defer { loop.stop() }
        let done = Shared<[(lsn: UInt64, onLoop: Bool)]>([])
        let loopThread = loop.threadID.with { $0! }
        loop.run {
            for i in 0..<3 {
                log.append(kind: 1, payload: payload(i)) { result in
                    done.with { $0.append((try! result.get(), pthread_equal(pthread_self(), loopThread) != 0)) }
                }
            }
        }
        // Nothing is written until the loop runs its deferred work: one commit for all three appends.
        #expect(done.with { $0.isEmpty })
        #expect(log.stats.commits == 0)
        #expect(loop.drain() == 1)
        #expect(done.with { $0.map(\.lsn) } == [1, 2, 3])
        #expect(done.with { $0.allSatisfy(\.onLoop) }, "written and completed on the loop thread")
        #expect(log.stats.commits == 1)
        #expect(try log.read(lsn: 2).payload == payload(1))
        try log.close()
        let (_, report, records) = try openCollecting(dir.path, smallOptions(.never))
        #expect(report.lastLSN == 3 && records.map(\.payload) == (0..<3).map { payload($0) })
    }

    @Test func aCheckpointPastItsReadCountCommitsBeforeTheTickEnds() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions(.never))
        let loop = LoopThread()
        defer { loop.stop() }
        let done = Shared<[UInt64]>([])
        let commitsAt = loop.run { () -> [Int] in
            var seen: [Int] = []
            for i in 0..<3 { log.append(kind: 1, payload: payload(i)) { r in done.with { $0.append(try! r.get()) } } }
            CommitDeferral.checkpoint(every: 2)  // one read: not yet
            seen.append(log.stats.commits)
            CommitDeferral.checkpoint(every: 2)  // the second: the three appends are committed here
            seen.append(log.stats.commits)
            log.append(kind: 1, payload: payload(3)) { r in done.with { $0.append(try! r.get()) } }
            CommitDeferral.checkpoint(every: 2)  // a new count starts with the new hand-over
            seen.append(log.stats.commits)
            return seen
        }
        #expect(commitsAt == [0, 1, 1])
        #expect(done.with { $0 } == [1, 2, 3], "acknowledged at the checkpoint, in LSN order")
        // The tick's end runs what is left (the fourth append) in the one task already queued.
        #expect(loop.drain() == 1)
        #expect(done.with { $0 } == [1, 2, 3, 4])
        #expect(log.stats.commits == 2)
        try log.close()
        let (_, report, records) = try openCollecting(dir.path, smallOptions(.never))
        #expect(report.lastLSN == 4 && records.map(\.payload) == (0..<4).map { payload($0) })
    }

    @Test func workHandedOverWhileHandedWorkRunsGoesInTheSameRunInOrder() {
        let loop = LoopThread()
        defer { loop.stop() }
        let order = Shared<[String]>([])
        let ranAtCheckpoint = loop.run { () -> [String] in
            _ = CommitDeferral.hand {
                order.with { $0.append("commit") }
                // What a commit's completions do: hand over their sessions' flushes.
                _ = CommitDeferral.hand { order.with { $0.append("flush a") } }
                _ = CommitDeferral.hand { order.with { $0.append("flush b") } }
            }
            CommitDeferral.checkpoint(every: 1)
            return order.with { $0 }
        }
        #expect(ranAtCheckpoint == ["commit", "flush a", "flush b"])
        #expect(loop.drain() == 1, "the tick's task still runs once")
        #expect(order.with { $0 } == ["commit", "flush a", "flush b"], "and runs nothing twice")
    }

    @Test func aThreadWithoutADeferrerKeepsNothing() {
        let kept = CommitDeferral.hand { Issue.record("ran work handed to a thread without a deferrer") }
        #expect(!kept)
        CommitDeferral.checkpoint(every: 1)
    }

    @Test func aCommitOnTheLoopNeverWaitsOutTheCommitInterval() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var options = smallOptions(.never)
        options.minCommitIntervalMicroseconds = 2_000_000  // a writer-thread wait; the loop must not take it
        let (log, _, _) = try openCollecting(dir.path, options)
        // A commit on the writer thread (no deferrer here) starts the interval.
        _ = try await log.append(kind: 1, payload: [2])
        let loop = LoopThread()
        defer { loop.stop() }
        let acked = Shared(0)
        loop.run { log.append(kind: 1, payload: [3]) { if case .success = $0 { acked.with { $0 += 1 } } } }
        let start = ContinuousClock.now
        #expect(loop.drain() == 1)
        #expect(ContinuousClock.now - start < .seconds(1), "the deferred commit waited on the event loop")
        #expect(acked.with { $0 } == 1)
        try log.close()
    }

    @Test func alwaysModeNeverCommitsOnTheCaller() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions(.always))
        let loop = LoopThread()
        defer { loop.stop() }
        let lsn = try await withCheckedThrowingContinuation { (c: CheckedContinuation<UInt64, any Error>) in
            loop.run { log.append(kind: 1, payload: [7]) { c.resume(with: $0.mapError { $0 }) } }
        }
        #expect(lsn == 1)
        #expect(loop.drain() == 0, "an fsync never runs on an event loop")
        try log.close()
    }

    @Test func closeWaitsForADeferredCommitAndKeepsItsRecords() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions(.never))
        let loop = LoopThread()
        defer { loop.stop() }
        let acked = Shared(0)
        loop.run { log.append(kind: 1, payload: [9]) { if case .success = $0 { acked.with { $0 += 1 } } } }
        // close() waits for the writer's turn, which the loop holds until it runs its deferred work.
        let closed = DispatchSemaphore(value: 0)
        Thread { try! log.close(); closed.signal() }.start()
        #expect(closed.wait(timeout: .now() + .milliseconds(100)) == .timedOut)
        #expect(loop.drain() == 1)
        #expect(closed.wait(timeout: .now() + .seconds(10)) == .success)
        #expect(acked.with { $0 } == 1)
        let (_, report, _) = try openCollecting(dir.path, smallOptions(.never))
        #expect(report.lastLSN == 1)
    }
}
