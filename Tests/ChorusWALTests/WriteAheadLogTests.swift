import ChorusTestKit
import ChorusCore
import Foundation
@testable import ChorusWAL
import Synchronization
import Testing

@Suite struct WriteAheadLogTests {
    @Test func appendsSurviveReopenInOrderAcrossSegments() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, report, replayed) = try openCollecting(dir.path, smallOptions())
        #expect(report.lastLSN == 0 && replayed.isEmpty)
        var lsns: [UInt64] = []
        for i in 0..<3000 { lsns.append(try await log.append(kind: UInt16(i % 5), payload: payload(i, size: 20 + i % 60))) }
        #expect(lsns == Array(1...3000))
        try log.close()
        #expect(dir.files().filter { $0.hasSuffix(".wal") }.count > 1, "rolled into several segments")

        let (again, report2, records) = try openCollecting(dir.path, smallOptions())
        defer { try? again.close() }
        #expect(report2.lastLSN == 3000 && report2.tornTail == nil)
        #expect(records.map(\.lsn) == Array(1...3000))
        #expect(records.map(\.payload) == (0..<3000).map { payload($0, size: 20 + $0 % 60) })
        #expect(try await again.append(kind: 1, payload: [1]) == 3001)
    }

    @Test func concurrentAppendersGetContiguousLSNsAndShareFsyncs() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions())
        let results = try await withThrowingTaskGroup(of: [(UInt64, Int)].self) { group in
            for a in 0..<64 {
                group.addTask {
                    var mine: [(UInt64, Int)] = []
                    for j in 0..<20 {
                        let i = a * 1000 + j
                        mine.append((try await log.append(kind: 7, payload: payload(i)), i))
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(results.map(\.0).sorted() == Array(1...1280))
        for (lsn, i) in results.prefix(50) { #expect(try log.read(lsn: lsn).payload == payload(i)) }
        let inspection = try WALInspection.inspect(directory: dir.path)
        #expect(inspection.blockCount < 1280, "group commit put many appends in one block")
        try log.close()
    }

    @Test func readsAnyLSNThroughTheSparseIndex() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions())
        for b in stride(from: 0, to: 5000, by: 50) {
            _ = try await log.append(batch: (b..<(b + 50)).map { (UInt16(1), payload($0, size: 30)) })
        }
        for lsn in [UInt64(1), 2, 777, 2500, 4999, 5000] {
            #expect(try log.read(lsn: lsn).payload == payload(Int(lsn) - 1, size: 30))
        }
        let page = try log.read(from: 1234, limit: 300)
        #expect(page.map(\.lsn) == Array(1234..<1534))
        #expect(try log.read(from: 4990, limit: 50).count == 11)
        #expect(try log.read(from: 5001, limit: 10).isEmpty)
        #expect(throws: WALError.notWritten(lsn: 6000, last: 5000)) { try log.read(lsn: 6000) }
        try log.close()
        // The index is rebuilt by recovery.
        let (again, _, _) = try openCollecting(dir.path, smallOptions())
        #expect(try again.read(from: 3333, limit: 3).map(\.payload) == (3332..<3335).map { payload($0, size: 30) })
        try again.close()
    }

    @Test func recordsOverTheLimitAreRefused() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions())
        await #expect(throws: WALError.recordTooLarge(size: 5000, limit: 4096)) {
            try await log.append(kind: 1, payload: [UInt8](repeating: 1, count: 5000))
        }
        #expect(log.isHealthy)
        try log.close()
        await #expect(throws: WALError.closed) { try await log.append(kind: 1, payload: [1]) }
    }

    /// `Journal`'s one-record append: LSNs in call order alongside the batch form, completions in
    /// LSN order, the records readable back, and a refusal arriving as the WAL's error through
    /// `any Error`.
    @Test func journalsOneRecordAppendKeepsOrderAndRefuses() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions(.never))
        let journal: any Journal = log
        let lsns = Mutex<[UInt64]>([])
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            journal.append(record: 1, payload: payload(0)) { r in lsns.withLock { $0.append((try? r.get()) ?? 0) } }
            journal.append(batch: [(1, payload(1)), (1, payload(2))]) { r in lsns.withLock { $0.append((try? r.get()) ?? 0) } }
            journal.append(record: 1, payload: payload(3)) { r in
                lsns.withLock { $0.append((try? r.get()) ?? 0) }
                done.resume()
            }
        }
        #expect(lsns.withLock { $0 } == [1, 3, 4])
        #expect(try log.read(from: 1, limit: 10).map(\.payload) == (0..<4).map { payload($0) })
        let refused = await withCheckedContinuation { (c: CheckedContinuation<WALError?, Never>) in
            journal.append(record: 1, payload: [UInt8](repeating: 1, count: 5000)) { r in
                if case .failure(let e) = r { c.resume(returning: e as? WALError) } else { c.resume(returning: nil) }
            }
        }
        #expect(refused == .recordTooLarge(size: 5000, limit: 4096))
        try log.close()
    }

    @Test func snapshotThenTailReplay() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions())
        for i in 0..<100 { _ = try await log.append(kind: 1, payload: payload(i)) }
        try log.writeSnapshot(lsn: 60, payload: Array("state@60".utf8))
        for i in 100..<120 { _ = try await log.append(kind: 1, payload: payload(i)) }
        try log.close()

        var restored: WALSnapshot?
        var replayed: [UInt64] = []
        let (again, report) = try WriteAheadLog.open(
            directory: dir.path, options: smallOptions(), restoreSnapshot: { restored = $0 }
        ) { replayed.append($0.lsn) }
        #expect(restored?.lsn == 60 && restored?.payload == Array("state@60".utf8))
        #expect(replayed == Array(61...120))
        #expect(report.snapshotLSN == 60 && report.recordsReplayed == 60)
        // Segments hold history: the snapshot deleted nothing.
        #expect(try again.read(lsn: 1).payload == payload(0))
        try again.close()
    }

    @Test func aDeclinedSnapshotMeansReplayingTheWholeLog() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions())
        for i in 0..<30 { _ = try await log.append(kind: 1, payload: payload(i)) }
        try log.writeSnapshot(lsn: 20, payload: [1])
        try log.close()
        var replayed: [UInt64] = []
        let (again, report) = try WriteAheadLog.open(
            directory: dir.path, options: smallOptions(), restoreSnapshot: { _ in throw SnapshotDeclined(reason: "old format") }
        ) { replayed.append($0.lsn) }
        #expect(replayed == Array(1...30))
        #expect(report.snapshotLSN == 0 && report.skippedSnapshots == [SnapshotStore.fileName(lsn: 20)])
        try again.close()
    }

    @Test func corruptNewestSnapshotFallsBackToAnOlderOne() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions())
        for i in 0..<50 { _ = try await log.append(kind: 1, payload: payload(i)) }
        try log.writeSnapshot(lsn: 20, payload: [1])
        try log.writeSnapshot(lsn: 40, payload: [2])
        try log.close()
        let newest = dir.path + "/" + SnapshotStore.fileName(lsn: 40)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: newest)))
        bytes[bytes.count - 1] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: newest))
        var restored: UInt64 = 0
        var replayed = 0
        let (again, report) = try WriteAheadLog.open(
            directory: dir.path, options: smallOptions(), restoreSnapshot: { restored = $0.lsn }) { _ in replayed += 1 }
        #expect(restored == 20 && replayed == 30)
        #expect(report.skippedSnapshots == [SnapshotStore.fileName(lsn: 40)])
        try again.close()
    }

    @Test func retentionDeletesOnlyCoveredSegmentsWhenAsked() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var options = smallOptions()
        options.retention = .maxBytes(2 * options.segmentBytes)
        let (log, _, _) = try openCollecting(dir.path, options)
        for b in stride(from: 0, to: 6000, by: 50) {
            _ = try await log.append(batch: (b..<(b + 50)).map { (UInt16(1), payload($0, size: 60)) })
        }
        let before = dir.files().filter { $0.hasSuffix(".wal") }.count
        #expect(before > 3)
        try log.writeSnapshot(lsn: 6000, payload: [9])
        let after = dir.files().filter { $0.hasSuffix(".wal") }
        #expect(after.count == 2)
        #expect(log.firstLSN > 1)
        #expect(throws: WALError.compacted(lsn: 1, firstRetained: log.firstLSN)) { try log.read(lsn: 1) }
        #expect(try log.read(lsn: 6000).payload == payload(5999, size: 60))
        try log.close()
        var replayed = 0
        let (again, report) = try WriteAheadLog.open(directory: dir.path, options: options) { _ in replayed += 1 }
        #expect(report.snapshotLSN == 6000 && replayed == 0 && report.lastLSN == 6000)
        try again.close()
    }

    @Test(arguments: [SyncMode.batch(intervalMs: 5), .never])
    func relaxedModesAckAndPersist(_ mode: SyncMode) async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions(mode))
        for i in 0..<500 { _ = try await log.append(kind: 1, payload: payload(i)) }
        try log.close()
        let (again, _, records) = try openCollecting(dir.path, smallOptions(mode))
        #expect(records.count == 500)
        try again.close()
    }
}

/// Failure paths: an injected write or fsync error, a crash at each step of a segment roll, torn
/// tails and damage on real files.
@Suite struct WriteAheadLogFailureTests {
    /// A hook that fails at `point` once `armed` is set.
    final class Fault: @unchecked Sendable {
        let point: WALFaultPoint
        private let lock = NSLock()
        private var _armed = false
        init(_ point: WALFaultPoint) { self.point = point }
        var armed: Bool {
            get { lock.withLock { _armed } }
            set { lock.withLock { _armed = newValue } }
        }
        var hook: @Sendable (WALFaultPoint) throws -> Void {
            { [self] p in if p == point && armed { throw WALError.io(operation: "\(p)", path: "(test)", errno: EIO) } }
        }
    }

    func openWithFault(_ point: WALFaultPoint, in dir: TempDir) throws -> (Fault, WriteAheadLog) {
        let fault = Fault(point)
        var options = smallOptions()
        options.faultHook = fault.hook
        return (fault, try openCollecting(dir.path, options).0)
    }

    @Test(arguments: [WALFaultPoint.write, .sync])
    func aFailedWriteOrFsyncIsStickyAndNeverAcked(_ point: WALFaultPoint) async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (fault, log) = try openWithFault(point, in: dir)
        for i in 0..<10 { _ = try await log.append(kind: 1, payload: payload(i)) }
        fault.armed = true
        await #expect(throws: WALError.self) { try await log.append(kind: 1, payload: payload(10)) }
        #expect(!log.isHealthy)
        #expect(log.failure?.contains("\(point)") == true)
        // Disarming does not help: the log never retries and carries on.
        fault.armed = false
        do {
            _ = try await log.append(kind: 1, payload: payload(11))
            Issue.record("append after a failure was acknowledged")
        } catch let error as WALError {
            guard case .stopped = error else { Issue.record("\(error)"); return }
        }
        try? log.close()
        // A restart recovers every acknowledged record (the unacked one may or may not be there).
        let (again, _, records) = try openCollecting(dir.path, smallOptions())
        #expect(Array(records.prefix(10).map(\.payload)) == (0..<10).map { payload($0) })
        #expect(records.count <= 11)
        try again.close()
    }

    @Test(arguments: [WALFaultPoint.rollCreate, .rollPreallocate, .rollHeader, .rollSyncFile, .rollRename, .rollSyncDirectory])
    func aCrashAtEachStepOfASegmentRollRecovers(_ point: WALFaultPoint) async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (fault, log) = try openWithFault(point, in: dir)
        var acked: [UInt64] = []
        fault.armed = true
        var i = 0
        while log.isHealthy {
            do { acked.append(try await log.append(kind: 1, payload: payload(i, size: 200))) } catch { break }
            i += 1
        }
        #expect(!acked.isEmpty && acked.count < i + 1)
        // Simulated crash: the log object is abandoned without close, leaving files as the step left them.
        let (again, report, records) = try openCollecting(dir.path, smallOptions())
        #expect(records.map(\.lsn) == acked, "every acked record, nothing else")
        #expect(records.map(\.payload) == acked.map { payload(Int($0) - 1, size: 200) })
        #expect(!dir.files().contains { $0.hasSuffix(".wal.tmp") })
        if point != .rollRename && point != .rollSyncDirectory {
            #expect(report.removedFiles.contains { $0.hasSuffix(".tmp") } == (point != .rollCreate))
        }
        // And the log carries on, rolling for real this time.
        for j in 0..<400 { _ = try await again.append(kind: 2, payload: payload(j, size: 200)) }
        try again.close()
        let (third, _, all) = try openCollecting(dir.path, smallOptions())
        #expect(all.count == acked.count + 400)
        #expect(all.map(\.lsn) == Array(1...UInt64(acked.count + 400)))
        try third.close()
    }

    func writeLog(_ dir: TempDir, records: Int) async throws {
        let (log, _, _) = try openCollecting(dir.path, smallOptions())
        for i in 0..<records { _ = try await log.append(kind: 1, payload: payload(i, size: 100)) }
        try log.close()
    }

    func lastSegment(_ dir: TempDir) -> String { dir.path + "/" + dir.files().filter { $0.hasSuffix(".wal") }.last! }

    @Test func tornTailOnDiskIsCutAndReported() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try await writeLog(dir, records: 50)
        let path = lastSegment(dir)
        let inspection = try WALInspection.inspect(directory: dir.path)
        let end = inspection.segments.last!.usedBytes + WALFormat.segmentHeaderSize
        // A half-written block: a plausible header start and some bytes, then nothing.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(end))
        handle.write(Data([0x43, 0x48, 0x57, 0x4C, 1, 1, 0, 0, 0xFF, 0x10, 0, 0] + [UInt8](repeating: 7, count: 100)))
        try handle.close()
        #expect(try !WALInspection.inspect(directory: dir.path).isDamaged)

        let (log, report, records) = try openCollecting(dir.path, smallOptions())
        #expect(records.count == 50)
        let tail = try #require(report.tornTail)
        #expect(path.hasSuffix(tail.file) && tail.offset == end && tail.bytesDropped == 112)
        #expect(try await log.append(kind: 1, payload: [1]) == 51)
        try log.close()
        let (again, report2, all) = try openCollecting(dir.path, smallOptions())
        #expect(report2.tornTail == nil && all.count == 51)
        try again.close()
    }

    @Test func damageIsRefusedNamingFileAndOffset() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try await writeLog(dir, records: 300)
        let inspection = try WALInspection.inspect(directory: dir.path)
        let first = dir.path + "/" + inspection.segments[0].file
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: first)))
        bytes[WALFormat.segmentHeaderSize + 40] ^= 0x01  // inside the first block, valid blocks follow
        try Data(bytes).write(to: URL(fileURLWithPath: first))
        do {
            _ = try openCollecting(dir.path, smallOptions())
            Issue.record("a damaged log opened")
        } catch let WALError.damaged(report) {
            #expect(report.file == inspection.segments[0].file && report.offset == WALFormat.segmentHeaderSize)
        }
        #expect(try WALInspection.inspect(directory: dir.path).isDamaged)
        // Nothing was changed by the refused open.
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: first))) == bytes)
    }
}

@Suite struct SnapshotCodecTests {
    @Test func roundTripsCompressedAndRaw() throws {
        let text = Array(String(repeating: "state of many users ", count: 200).utf8)
        var rng = SplitMix64(seed: 9)
        let noise = (0..<500).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for payload in [text, noise, []] {
            let bytes = SnapshotStore.encode(lsn: 77, payload: payload)
            let back = try SnapshotStore.decode(bytes, file: "s")
            #expect(back.lsn == 77 && back.payload == payload)
        }
        #expect(SnapshotStore.encode(lsn: 1, payload: text)[5] == WALFormat.flagLZ4)
        #expect(SnapshotStore.encode(lsn: 1, payload: noise)[5] == 0)
    }

    @Test func everySingleBitFlipIsRejected() {
        let bytes = SnapshotStore.encode(lsn: 5, payload: Array(String(repeating: "abc ", count: 40).utf8))
        for bit in 0..<(bytes.count * 8) {
            var flipped = bytes
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(throws: WALError.self, "bit \(bit)") { try SnapshotStore.decode(flipped, file: "s") }
        }
        for cut in 0..<bytes.count {
            #expect(throws: WALError.self, "cut at \(cut)") { try SnapshotStore.decode(Array(bytes[..<cut]), file: "s") }
        }
    }
}

@Suite struct AtomicBatchTests {
    @Test func aBatchIsNeverSplitAcrossBlocks() async throws {
        let dir = TempDir("atomic")
        defer { dir.cleanup() }
        var options = smallOptions()
        options.compactInBackground = false  // compaction re-blocks sealed segments; look at blocks as committed
        let (log, _, _) = try openCollecting(dir.path, options)
        // Concurrent batches of 1-9 records of ~300 bytes against 2 KiB blocks: many would straddle.
        let ranges = try await withThrowingTaskGroup(of: [ClosedRange<UInt64>].self) { group in
            for t in 0..<8 {
                group.addTask {
                    var mine: [ClosedRange<UInt64>] = []
                    for b in 0..<25 {
                        let n = 1 + (t + b) % 9
                        mine.append(try await log.append(batch: (0..<n).map { (UInt16(1), payload(t * 1000 + b * 10 + $0, size: 300)) }))
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        try log.close()
        let starts = Set(ranges.map(\.lowerBound))
        let ends = Set(ranges.map(\.upperBound))
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.path + "/" + dir.files().first { $0.hasSuffix(".wal") }!)))
        let scan = bytes.withUnsafeBytes { SegmentScanner.scan($0, firstLSN: 1) }
        #expect(scan.blocks.count > 10)
        for block in scan.blocks {
            #expect(starts.contains(block.header.firstLSN), "block starts inside a batch at \(block.header.firstLSN)")
            #expect(ends.contains(block.header.nextLSN - 1), "block ends inside a batch at \(block.header.nextLSN - 1)")
        }
    }

    @Test func aBatchLargerThanABlockIsRefusedWhole() async throws {
        let dir = TempDir("atomic-big")
        defer { dir.cleanup() }
        let options = smallOptions()
        let (log, _, _) = try openCollecting(dir.path, options)
        let big = (0..<20).map { (UInt16(1), payload($0, size: 400)) }
        await #expect(throws: WALError.batchTooLarge(size: 20 * 406, limit: options.maxAtomicBatchBytes)) {
            try await log.append(batch: big)
        }
        #expect(log.lastLSN == 0 && log.isHealthy)
        try log.close()
    }
}
