import ChorusWAL
import Testing

@Suite struct CommitPacingTests {
    @Test func theFirstCommitAndCommitsPastTheIntervalStartAtOnce() {
        let interval = Duration.milliseconds(1)
        #expect(CommitPacing.wait(sincePrevious: nil, interval: interval) == .zero)
        #expect(CommitPacing.wait(sincePrevious: .milliseconds(1), interval: interval) == .zero)
        #expect(CommitPacing.wait(sincePrevious: .seconds(3), interval: interval) == .zero)
    }

    @Test func aCommitDueSoonerWaitsOutTheRestOfTheInterval() {
        let interval = Duration.microseconds(1_000)
        #expect(CommitPacing.wait(sincePrevious: .microseconds(300), interval: interval) == .microseconds(700))
        #expect(CommitPacing.wait(sincePrevious: .zero, interval: interval) == interval)
        // A clock read that went backwards (another thread's instant) never waits more than one interval.
        #expect(CommitPacing.wait(sincePrevious: .microseconds(-50), interval: interval) == interval)
    }

    @Test func noIntervalNeverWaits() {
        #expect(CommitPacing.wait(sincePrevious: .zero, interval: .zero) == .zero)
        #expect(CommitPacing.wait(sincePrevious: .microseconds(5), interval: .zero) == .zero)
    }

    /// The writer thread: back-to-back commits start an interval apart, and appends that arrive
    /// meanwhile share the next commit; an fsync still comes before every ack.
    @Test func backToBackCommitsOnTheWriterAreSpacedAndShared() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var options = smallOptions(.always)
        options.minCommitIntervalMicroseconds = 1_000_000
        let (log, _, _) = try openCollecting(dir.path, options)
        // Timed from before the first commit began, so a slow fsync cannot hide the wait.
        let start = ContinuousClock.now
        _ = try await log.append(kind: 1, payload: [0])  // the first commit: no wait
        try await withThrowingTaskGroup(of: UInt64.self) { group in
            for i in 1...8 { group.addTask { try await log.append(kind: 1, payload: [UInt8(i)]) } }
            for try await _ in group {}
        }
        #expect(ContinuousClock.now - start >= .seconds(1), "the next commit waited out the interval")
        let stats = log.stats
        #expect(stats.commits <= 3, "the eight appends shared the paced commit: \(stats.commits) commits")
        #expect(stats.syncs == stats.commits)
        try log.close()
    }
}
