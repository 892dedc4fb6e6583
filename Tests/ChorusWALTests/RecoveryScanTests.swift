import ChorusTestKit
import ChorusCore
@testable import ChorusWAL
import Testing

/// Byte tables for recovery: torn tails at every offset, random bit flips, multi-segment rules.
@Suite struct RecoveryScanTests {
    @Test func cleanSegmentRecoversEverything() {
        let seg = buildSegment(blocks: 6, perBlock: 5, size: 8192)
        let (decision, records) = recover(seg.bytes)
        guard case .recover(let plan) = decision else { Issue.record("\(decision)"); return }
        #expect(plan.truncation == nil)
        #expect(plan.nextLSN == 31)
        #expect(records == seg.records)
    }

    @Test func lastBlockCutAtEveryByteRecoversExactlyThePreviousPrefix() {
        let seg = buildSegment(blocks: 4, perBlock: 6, size: 4096)
        let lastStart = seg.offsets.last!
        let lastEnd = seg.bytes.withUnsafeBytes { $0.endOfNonZero(from: 0) }
        let prefix = Array(seg.records.prefix(18))
        for cut in lastStart..<lastEnd {
            // Torn write into preallocated space: bytes from `cut` on never reached the disk.
            var zeroed = seg.bytes
            for i in cut..<zeroed.count { zeroed[i] = 0 }
            // Torn write that also left the file short.
            let short = Array(seg.bytes[..<cut])
            for (label, bytes) in [("zeroed", zeroed), ("short", short)] {
                let (decision, records) = recover(bytes)
                #expect(records == prefix, "\(label) cut at \(cut)")
                guard case .recover(let plan) = decision else {
                    Issue.record("\(label) cut at \(cut): \(decision)")
                    continue
                }
                #expect(plan.nextLSN == 19)
                if cut == lastStart {
                    #expect(plan.truncation == nil, "nothing of the block written is a clean end")
                } else {
                    #expect(plan.truncation?.offset == lastStart, "\(label) cut at \(cut)")
                    #expect(plan.truncation?.bytesDropped ?? 0 > 0)
                }
            }
        }
    }

    @Test func tenThousandRandomBitFlipsAreDetectedNeverDecoded() throws {
        let seg = buildSegment(blocks: 8, perBlock: 4, size: 3072, recordSize: 30)
        let used = try seg.offsets.last! + seg.bytes.withUnsafeBytes { BlockCodec.validate($0, at: seg.offsets.last!) }
            .map(\.totalSize).get()
        var rng = SplitMix64(seed: 0xC0FFEE)
        var damaged = 0, torn = 0
        for flip in 0..<10_000 {
            // Mostly inside the written region; one in eight lands in the zero tail.
            let position = flip % 8 == 7 ? Int.random(in: used..<seg.bytes.count, using: &rng)
                : Int.random(in: 0..<used, using: &rng)
            var bytes = seg.bytes
            bytes[position] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            let (decision, records) = recover(bytes)
            let block = seg.offsets.lastIndex { $0 <= position }
            switch decision {
            case .damaged(let report):
                damaged += 1
                // Damage is only ever reported for a flip before the last block (or in the header).
                #expect(position < seg.offsets.last!, "flip at \(position) called damage: \(report)")
            case .recover(let plan):
                torn += 1
                // Recovered records are always an exact, unmodified prefix of what was written.
                #expect(records == Array(seg.records.prefix(records.count)), "flip at \(position)")
                if position >= used {
                    #expect(records == seg.records && plan.truncation?.offset == used)
                } else {
                    #expect(block == seg.offsets.count - 1, "flip at \(position) in block \(String(describing: block)) not refused")
                    #expect(plan.truncation?.offset == seg.offsets.last!)
                    #expect(records.count == seg.records.count - 4)
                }
            }
        }
        #expect(damaged > 0 && torn > 0)
    }

    func input(_ file: String, _ lsn: UInt64, _ bytes: [UInt8]) -> SegmentInput {
        bytes.withUnsafeBytes { buf in
            let header = SegmentScanner.decodeHeader(buf)
            let scan = try? header.map { SegmentScanner.scan(buf, firstLSN: $0) }.get()
            return SegmentInput(file: file, nameLSN: lsn, header: header, scan: scan)
        }
    }

    @Test func segmentsMustChain() {
        let a = buildSegment(firstLSN: 1, blocks: 2, perBlock: 5, size: 2048)
        let b = buildSegment(firstLSN: 11, blocks: 2, perBlock: 5, size: 2048)
        let gap = buildSegment(firstLSN: 12, blocks: 1, perBlock: 5, size: 2048)
        guard case .recover(let ok) = RecoveryPlanner.plan([input("a", 1, a.bytes), input("b", 11, b.bytes)]) else {
            Issue.record("chained segments refused"); return
        }
        #expect(ok.nextLSN == 21 && ok.keep == [0, 1])
        guard case .damaged(let d) = RecoveryPlanner.plan([input("a", 1, a.bytes), input("c", 12, gap.bytes)]) else {
            Issue.record("gap accepted"); return
        }
        #expect(d.file == "c" && d.reason.contains("gap"))
        guard case .damaged(let named) = RecoveryPlanner.plan([input("a", 2, a.bytes)]) else {
            Issue.record("name mismatch accepted"); return
        }
        #expect(named.reason.contains("file name"))
    }

    @Test func badBlockFollowedByAValidSegmentIsDamageNamingFileAndOffset() {
        var a = buildSegment(firstLSN: 1, blocks: 3, perBlock: 5, size: 2048)
        let b = buildSegment(firstLSN: 16, blocks: 1, perBlock: 5, size: 2048)
        a.bytes[a.offsets[2] + 40] ^= 0x10  // last block of a: a torn tail, were it not for b
        guard case .damaged(let d) = RecoveryPlanner.plan([input("a.wal", 1, a.bytes), input("b.wal", 16, b.bytes)]) else {
            Issue.record("damage accepted"); return
        }
        #expect(d.file == "a.wal" && d.offset == a.offsets[2] && d.reason.contains("b.wal"))
    }

    @Test func tornTailBeforeAnEmptySegmentRemovesIt() {
        var a = buildSegment(firstLSN: 1, blocks: 3, perBlock: 5, size: 2048)
        let empty = buildSegment(firstLSN: 16, blocks: 0, perBlock: 5, size: 2048)
        a.bytes[a.offsets[2] + 40] ^= 0x10
        guard case .recover(let plan) = RecoveryPlanner.plan([input("a", 1, a.bytes), input("e", 16, empty.bytes)]) else {
            Issue.record("refused"); return
        }
        #expect(plan.keep == [0] && plan.remove.map(\.index) == [1] && plan.nextLSN == 11)
        #expect(plan.truncation?.offset == a.offsets[2])
    }

    @Test func checksummedBlockWithWrongLSNIsDamage() {
        var a = buildSegment(firstLSN: 1, blocks: 2, perBlock: 5, size: 2048)
        let stray = buildSegment(firstLSN: 99, blocks: 1, perBlock: 5, size: 2048)
        let blockBytes = Array(stray.bytes[stray.offsets[0]..<(stray.offsets[0] + 512)])
        let end = a.bytes.withUnsafeBytes { $0.endOfNonZero(from: 0) }
        let at = WALFormat.aligned(end)
        for (i, byte) in blockBytes.enumerated() where at + i < a.bytes.count { a.bytes[at + i] = byte }
        guard case .damaged(let d) = RecoveryPlanner.plan([input("a", 1, a.bytes)]) else {
            Issue.record("LSN gap accepted"); return
        }
        #expect(d.reason.contains("expected 11"))
    }
}
