import Benchmark
import ChorusCore
import ChorusTestKit
import ChorusWAL
import Glibc

// Write-ahead log benchmarks. Run from Benchmarks/: `swift package benchmark` (release build).
// Names have no spaces: package-benchmark 1.38 looks static thresholds up by the raw name.
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
        // Static thresholds (Thresholds/*.p90.json) are checked with these tolerances. Disk-bound timings
        // are noisy on a shared VM, so they only catch gross regressions; allocation counts are exact.
        thresholds: [
            .mallocCountTotal: .init(relative: [.p90: 5], absolute: [.p90: 200]),
            .wallClock: .init(relative: [.p90: 100]),
            .throughput: .init(relative: [.p90: 50]),
        ]
    )

    // Tolerances. fdatasync latency on this VM swings 2x between runs, so disk-bound figures only
    // catch a collapse; CPU-bound codec figures are tighter; allocation counts and ratios are exact-ish.
    let loose = BenchmarkThresholds(relative: [.p90: 75])
    let diskTime = BenchmarkThresholds(relative: [.p90: 300])
    let cpuTime = BenchmarkThresholds(relative: [.p90: 35])
    let appendsPerSecond = BenchmarkMetric.custom("appends/s", polarity: .prefersLarger, useScalingFactor: false)
    let recordsPerSecond = BenchmarkMetric.custom("records replayed/s", polarity: .prefersLarger, useScalingFactor: false)
    let ratioPercent = BenchmarkMetric.custom("ratio stored x100", polarity: .prefersLarger, useScalingFactor: false)
    let commitBytesMetric = BenchmarkMetric.custom("mean commit bytes", polarity: .prefersLarger, useScalingFactor: false)
    let groupVsRaw = BenchmarkMetric.custom("group commit % of raw fsync loop", polarity: .prefersLarger, useScalingFactor: false)

    // 64 chat records of ~200 bytes per commit, encoded once to know the commit size in bytes.
    let commitRecords = 64
    var generator = ChatRecordGenerator(seed: 1)
    let records = (0..<commitRecords).map { _ in (kind: ChatRecordGenerator.kind, payload: generator.next(targetBytes: 200)) }
    let commitBytes = encodedBlockSize(records)

    // Commits per second: a plain pwrite+fdatasync loop vs. the log, same bytes per commit.
    Benchmark(
        "RawFsyncLoop.commit64Records",
        configuration: .init(metrics: [.wallClock, .throughput], thresholds: [.wallClock: diskTime, .throughput: loose])
    ) { benchmark in
        let raw = try RawFsyncFile(directory: benchDir)
        let bytes = [UInt8](repeating: 0x5A, count: commitBytes)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try raw.commit(bytes) }
        benchmark.stopMeasurement()
        raw.remove()
    }

    Benchmark(
        "WAL.sequentialGroupCommit64Records",
        configuration: .init(metrics: [.wallClock, .throughput], thresholds: [.wallClock: diskTime, .throughput: loose])
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
        "WAL.groupCommitVsRawFsyncLoop",
        configuration: .init(
            metrics: [groupVsRaw, commitBytesMetric, .wallClock], maxDuration: .seconds(10), maxIterations: 20,
            thresholds: [groupVsRaw: loose, commitBytesMetric: loose, .wallClock: diskTime])
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
        "WAL.durableAppends256Appenders",
        configuration: .init(
            metrics: [appendsPerSecond, .wallClock], maxDuration: .seconds(10), maxIterations: 30,
            thresholds: [appendsPerSecond: loose, .wallClock: diskTime])
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
        "WAL.appendAllocations1000",
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
        "WAL.recoveryReplay1M",
        configuration: .init(
            metrics: [recordsPerSecond, .wallClock], maxDuration: .seconds(20), maxIterations: 5,
            thresholds: [recordsPerSecond: .init(relative: [.p90: 35]), .wallClock: cpuTime],
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

    // Compression ratio of the log's blocks on realistic chat records (what `wal inspect` reports):
    // as written by group commits (LZ4 fast), and as stored once sealed segments are compacted.
    let hotRatio = BenchmarkMetric.custom("ratio as committed x100", polarity: .prefersLarger, useScalingFactor: false)
    Benchmark(
        "WAL.lz4RatioChatRecords",
        configuration: .init(
            metrics: [hotRatio, ratioPercent, .wallClock], maxIterations: 1,
            thresholds: [hotRatio: .init(relative: [.p90: 10]), ratioPercent: .init(relative: [.p90: 10]), .wallClock: diskTime])
    ) { benchmark in
        var options = WALOptions()
        options.segmentBytes = 4 << 20
        options.compactInBackground = false
        let (log, dir) = try openLog(options)
        try await appendConcurrently(log, appenders: 256, each: 400, distinct: true)
        let committed = try WALInspection.inspect(directory: dir).compressionRatio
        log.compactSealedSegments()
        let stored = try WALInspection.inspect(directory: dir).compressionRatio
        try log.close()
        benchmark.measurement(hotRatio, Int((committed * 100).rounded()))
        benchmark.measurement(ratioPercent, Int((stored * 100).rounded()))
        removeTree(dir)
    }

    // CPU only: frame, compress (commit-path level) and checksum 256 chat records into one block,
    // then validate and decode it back.
    Benchmark(
        "BlockCodec.encodeDecode256Records",
        configuration: .init(
            metrics: [.wallClock, .mallocCountTotal], maxDuration: .seconds(3),
            thresholds: [.wallClock: cpuTime, .mallocCountTotal: .init(relative: [.p90: 5], absolute: [.p90: 20])])
    ) { benchmark in
        var gen = ChatRecordGenerator(seed: 6)
        let batch = (0..<256).map { _ in gen.next(targetBytes: 200) }
        let compressor = BlockCompressor(level: WALOptions().compressionLevel)
        var raw: [UInt8] = []
        var block: [UInt8] = []
        var scratch: [UInt8] = []
        raw.reserveCapacity(64 << 10)
        block.reserveCapacity(64 << 10)
        benchmark.startMeasurement()
        raw.removeAll(keepingCapacity: true)
        for p in batch { BlockCodec.appendRecord(kind: 1, payload: p, to: &raw) }
        block.removeAll(keepingCapacity: true)
        BlockCodec.encodeBlock(firstLSN: 1, recordCount: batch.count, raw: raw, into: &block, compressor: compressor)
        var decoded = 0
        try block.withUnsafeBytes { buf in
            let header = try BlockCodec.validate(buf, at: 0).get()
            let payload = UnsafeRawBufferPointer(rebasing: buf[32..<(32 + header.storedLength)])
            try BlockCodec.decodeRecords(header: header, payload: payload, scratch: &scratch) { _ in decoded += 1 }
        }
        benchmark.stopMeasurement()
        precondition(decoded == 256)
    }
}
