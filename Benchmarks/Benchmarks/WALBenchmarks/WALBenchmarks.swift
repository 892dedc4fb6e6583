import Benchmark
import ChorusCore
import ChorusTestKit
import ChorusWAL
import Glibc

// Write-ahead log benchmarks. Run from Benchmarks/: `swift package benchmark` (release build).
// Durable benchmarks fsync to the directory in $CHORUS_BENCH_DIR (default /tmp), which must be a
// real disk, not tmpfs, for the figures to mean anything.

let benchDir = getenvString("CHORUS_BENCH_DIR") ?? "/tmp"

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 1,
        maxDuration: .seconds(5),
        maxIterations: 1_000,
        thresholds: [
            .mallocCountTotal: .init(relative: [.p90: 10], absolute: [.p90: 50]),
            .wallClock: .init(relative: [.p50: 50]),
            .throughput: .init(relative: [.p50: 50]),
        ]
    )

    let appendsPerSecond = BenchmarkMetric.custom("appends/s", polarity: .prefersLarger, useScalingFactor: false)
    let recordsPerSecond = BenchmarkMetric.custom("records replayed/s", polarity: .prefersLarger, useScalingFactor: false)
    let ratioPercent = BenchmarkMetric.custom("LZ4 ratio x100", polarity: .prefersLarger, useScalingFactor: false)
    let commitBytesMetric = BenchmarkMetric.custom("mean commit bytes", polarity: .prefersLarger, useScalingFactor: false)
    let groupVsRaw = BenchmarkMetric.custom("group commit % of raw fsync loop", polarity: .prefersLarger, useScalingFactor: false)

    // 64 chat records of ~200 bytes per commit, encoded once to know the commit size in bytes.
    let commitRecords = 64
    var generator = ChatRecordGenerator(seed: 1)
    let records = (0..<commitRecords).map { _ in (kind: ChatRecordGenerator.kind, payload: generator.next(targetBytes: 200)) }
    let commitBytes = encodedBlockSize(records)

    // Commits per second: a plain pwrite+fdatasync loop vs. the log, same bytes per commit.
    Benchmark(
        "Raw fsync loop (one commit of \(commitBytes) bytes)",
        configuration: .init(metrics: [.wallClock, .throughput], thresholds: [:])
    ) { benchmark in
        let raw = try RawFsyncFile(directory: benchDir)
        let bytes = [UInt8](repeating: 0x5A, count: commitBytes)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try raw.commit(bytes) }
        benchmark.stopMeasurement()
        raw.remove()
    }

    Benchmark(
        "WAL group commit (one append(batch:) of \(commitRecords) chat records)",
        configuration: .init(metrics: [.wallClock, .throughput], thresholds: [:])
    ) { benchmark in
        let (log, dir) = try openLog()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { _ = try await log.append(batch: records) }
        benchmark.stopMeasurement()
        try log.close()
        removeTree(dir)
    }

    // Group commit under load vs. the disk's own commit rate: 256 concurrent appenders, then a plain
    // pwrite+fdatasync loop doing the same number of commits of the same mean size, in one iteration.
    Benchmark(
        "Group commit vs raw fsync loop, same commit size",
        configuration: .init(metrics: [groupVsRaw, commitBytesMetric], maxDuration: .seconds(10), maxIterations: 20, thresholds: [
            groupVsRaw: .init(absolute: [.p50: 15]),
        ])
    ) { benchmark in
        let (log, dir) = try openLog()
        let before = log.stats
        let start = ContinuousClock.now
        try await appendConcurrently(log, appenders: 256, each: 40)
        let walTime = ContinuousClock.now - start
        let stats = log.stats
        try log.close()
        removeTree(dir)
        let commits = stats.commits - before.commits
        let meanBytes = (stats.storedBytes - before.storedBytes) / max(commits, 1)
        let raw = try RawFsyncFile(directory: benchDir)
        let bytes = [UInt8](repeating: 0x5A, count: meanBytes)
        let rawTime = try ContinuousClock().measure { for _ in 0..<commits { try raw.commit(bytes) } }
        raw.remove()
        benchmark.measurement(groupVsRaw, Int(100 * seconds(rawTime) / seconds(walTime)))
        benchmark.measurement(commitBytesMetric, meanBytes)
    }

    // Durable appends per second with 256 concurrent appenders of 200-byte chat records.
    Benchmark(
        "WAL durable appends, 256 concurrent appenders",
        configuration: .init(metrics: [appendsPerSecond, .wallClock], maxDuration: .seconds(10), maxIterations: 30, thresholds: [
            appendsPerSecond: .init(relative: [.p50: 40]),
        ])
    ) { benchmark in
        let (log, dir) = try openLog()
        let perAppender = 40
        let start = ContinuousClock.now
        benchmark.startMeasurement()
        try await appendConcurrently(log, appenders: 256, each: perAppender)
        benchmark.stopMeasurement()
        let elapsed = seconds(ContinuousClock.now - start)
        benchmark.measurement(appendsPerSecond, Int(Double(256 * perAppender) / elapsed))
        try log.close()
        removeTree(dir)
    }

    // Allocations on the append path (sync mode never, so the figure is about code, not the disk).
    Benchmark(
        "WAL append allocations (1000 sequential appends, never-sync)",
        configuration: .init(metrics: [.mallocCountTotal, .wallClock], maxIterations: 50)
    ) { benchmark in
        var options = WALOptions()
        options.syncMode = .never
        let (log, dir) = try openLog(options)
        let payload = ChatRecordGenerator(seed: 3).nextPayload()
        for _ in 0..<100 { _ = try await log.append(kind: 1, payload: payload) }  // grow buffers first
        benchmark.startMeasurement()
        for _ in 0..<1000 { _ = try await log.append(kind: 1, payload: payload) }
        benchmark.stopMeasurement()
        try log.close()
        removeTree(dir)
    }

    // Recovery: open a log of 1,000,000 chat records and replay them all.
    let replayDir = benchDir + "/chorus-bench-replay"
    Benchmark(
        "WAL recovery replay (1,000,000 records)",
        configuration: .init(
            metrics: [recordsPerSecond, .wallClock], maxDuration: .seconds(20), maxIterations: 5,
            thresholds: [recordsPerSecond: .init(relative: [.p50: 40])],
            setup: { try await writeReplayLog(replayDir, records: 1_000_000) },
            teardown: { removeTree(replayDir) })
    ) { benchmark in
        var count = 0
        let start = ContinuousClock.now
        benchmark.startMeasurement()
        let (log, _) = try WriteAheadLog.open(directory: replayDir) { record in
            count += 1
            blackHole(record.payload.count)
        }
        benchmark.stopMeasurement()
        let elapsed = seconds(ContinuousClock.now - start)
        try log.close()
        precondition(count == 1_000_000, "replayed \(count)")
        benchmark.measurement(recordsPerSecond, Int(Double(count) / elapsed))
    }

    // Compression ratio of the log's blocks on realistic chat records (what `wal inspect` reports).
    Benchmark(
        "WAL LZ4 block ratio on chat records (256-record group commits)",
        configuration: .init(metrics: [ratioPercent], maxIterations: 1, thresholds: [
            ratioPercent: .init(absolute: [.p50: 5]),
        ])
    ) { benchmark in
        let (log, dir) = try openLog()
        var gen = ChatRecordGenerator(seed: 4)
        for _ in 0..<40 {
            let batch = (0..<256).map { _ in (kind: ChatRecordGenerator.kind, payload: gen.next(targetBytes: 200)) }
            _ = try await log.append(batch: batch)
        }
        try log.close()
        let inspection = try WALInspection.inspect(directory: dir)
        benchmark.measurement(ratioPercent, Int((inspection.compressionRatio * 100).rounded()))
        removeTree(dir)
    }
}
