import ChorusCore
import ChorusTestKit
import Foundation
@testable import ChorusWAL
import Testing

/// Sealed segments are rewritten with stronger compression; nothing else may change.
@Suite struct CompactionTests {
    func chatOptions() -> WALOptions {
        var o = WALOptions()
        o.segmentBytes = 256 << 10
        o.blockTargetBytes = 8 << 10
        o.maxRecordBytes = 8 << 10
        o.coldBlockBytes = 128 << 10
        o.indexIntervalBytes = 16 << 10
        return o
    }

    func fill(_ log: WriteAheadLog, records: Int) async throws -> [[UInt8]] {
        var gen = ChatRecordGenerator(seed: 11)
        var payloads: [[UInt8]] = []
        for _ in 0..<(records / 30) {
            let batch = (0..<30).map { _ in (kind: ChatRecordGenerator.kind, payload: gen.next(targetBytes: 200)) }
            payloads += batch.map(\.payload)
            _ = try await log.append(batch: batch)
        }
        return payloads
    }

    /// A closed log of chat records whose sealed segments are still as committed.
    func writeUncompacted(_ dir: TempDir, records: Int) async throws -> [[UInt8]] {
        var options = chatOptions()
        options.coldCompressionLevel = nil
        let (plain, _, _) = try openCollecting(dir.path, options)
        let payloads = try await fill(plain, records: records)
        try plain.close()
        return payloads
    }

    @Test func compactionKeepsEveryRecordAndImprovesTheRatio() async throws {
        let dir = TempDir("compact")
        defer { dir.cleanup() }
        let payloads = try await writeUncompacted(dir, records: 6000)
        let before = try WALInspection.inspect(directory: dir.path)
        #expect(before.segments.count >= 3 && before.segments.allSatisfy { !$0.compacted })

        let (log, _, _) = try openCollecting(dir.path, chatOptions())
        log.compactSealedSegments()
        let after = try WALInspection.inspect(directory: dir.path)
        #expect(after.segments.dropLast().allSatisfy { $0.compacted })
        #expect(!after.segments.last!.compacted, "the segment being written is never compacted")
        #expect(after.recordCount == 6000 && !after.isDamaged)
        let sealedBefore = before.segments.dropLast().reduce(0) { $0 + $1.storedBytes }
        let sealedAfter = after.segments.dropLast().reduce(0) { $0 + $1.storedBytes }
        print("sealed segments: \(sealedBefore) bytes before compaction, \(sealedAfter) after; ratio \(after.compressionRatio)")
        #expect(Double(sealedBefore) / Double(sealedAfter) > 1.1)
        #expect(try log.read(from: 1, limit: 6000).map(\.payload) == payloads)
        #expect(try await log.append(kind: 1, payload: [1]) == 6001)
        try log.close()

        let (again, report, records) = try openCollecting(dir.path, chatOptions())
        #expect(report.tornTail == nil && records.map(\.payload).prefix(6000) == payloads[...])
        try again.close()
    }

    @Test func readsDuringCompactionStayCorrect() async throws {
        let dir = TempDir("compact-read")
        defer { dir.cleanup() }
        let payloads = try await writeUncompacted(dir, records: 6000)
        var manual = chatOptions()
        manual.compactInBackground = false
        let (log, _, _) = try openCollecting(dir.path, manual)
        let (started, startedSignal) = AsyncStream<Void>.makeStream()
        let reader = Task.detached {
            var rng = SplitMix64(seed: 3)
            var reads = 0
            while !Task.isCancelled {
                if reads == 20 { startedSignal.yield() }
                let lsn = UInt64.random(in: 1...6000, using: &rng)
                let page = try log.read(from: lsn, limit: 20)
                for r in page where r.payload != payloads[Int(r.lsn) - 1] { throw WALError.corruptRead(file: "", offset: Int(r.lsn), reason: "wrong payload") }
                reads += 1
            }
            return reads
        }
        for await _ in started { break }
        log.compactSealedSegments()
        reader.cancel()
        let reads = try await reader.value
        #expect(reads >= 20)  // overlap with compaction is likely, not guaranteed; every read was checked
        #expect(try WALInspection.inspect(directory: dir.path).segments.dropLast().allSatisfy { $0.compacted })
        try log.close()
    }

    @Test func aSecondOpenOfTheSameDirectoryIsRefused() throws {
        let dir = TempDir("lock")
        defer { dir.cleanup() }
        let (log, _, _) = try openCollecting(dir.path, smallOptions())
        #expect(throws: WALError.locked(directory: dir.path)) { try openCollecting(dir.path, smallOptions()) }
        try log.close()
        let (again, _, _) = try openCollecting(dir.path, smallOptions())
        try again.close()
    }
}

extension CompactionTests {
    @Test func aCompactionCutShortByACrashLeavesTheOriginalInPlace() async throws {
        let dir = TempDir("compact-crash")
        defer { dir.cleanup() }
        let payloads = try await writeUncompacted(dir, records: 3000)
        // What a crash before the rename leaves: a half-written temporary beside the original.
        let first = dir.files().first { $0.hasSuffix(".wal") }!
        let temporary = dir.path + "/" + first + ".compact.tmp"
        FileManager.default.createFile(atPath: temporary, contents: Data([0x43, 0x48, 0x57, 0x53, 1, 1]))
        let (log, report, records) = try openCollecting(dir.path, chatOptions())
        #expect(report.removedFiles.contains(first + ".compact.tmp"))
        #expect(records.map(\.payload) == payloads)
        try log.close()
    }
}
