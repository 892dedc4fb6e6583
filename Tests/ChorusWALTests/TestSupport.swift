import ChorusCore
import Foundation
@testable import ChorusWAL

/// A fresh directory under the system temp dir, removed by `cleanup()`.
struct TempDir {
    let path: String

    init(_ label: String = "wal") {
        let template = NSTemporaryDirectory() + "chorus-\(label)-XXXXXX"
        var bytes = Array(template.utf8CString)
        let made = bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: bytes)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }

    func files() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
}

/// Small segments and blocks so tests roll often.
func smallOptions(_ sync: SyncMode = .always) -> WALOptions {
    var o = WALOptions()
    o.segmentBytes = 64 << 10
    o.blockTargetBytes = 2 << 10
    o.maxRecordBytes = 4 << 10
    o.indexIntervalBytes = 4 << 10
    o.syncMode = sync
    return o
}

/// Deterministic chat-like payload for record `i`.
func payload(_ i: Int, size: Int = 40) -> [UInt8] {
    var out = Array("msg \(i) from user\(i % 17): ".utf8)
    var x = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 | 1
    while out.count < size {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        out.append(UInt8(97 + x % 26))
    }
    return Array(out.prefix(size))
}

/// Opens a log and collects every replayed record.
func openCollecting(_ dir: String, _ options: WALOptions) throws -> (WriteAheadLog, RecoveryReport, [JournalRecord]) {
    var records: [JournalRecord] = []
    let (log, report) = try WriteAheadLog.open(directory: dir, options: options) { records.append($0) }
    return (log, report, records)
}

/// Builds the bytes of one segment holding `blocks` blocks of `perBlock` records each, in a
/// zero-filled buffer of `size` bytes. Returns the buffer, the records and each block's offset.
func buildSegment(
    firstLSN: UInt64 = 1, blocks: Int, perBlock: Int, size: Int, recordSize: Int = 40
) -> (bytes: [UInt8], records: [JournalRecord], offsets: [Int]) {
    var out = SegmentScanner.encodeHeader(firstLSN: firstLSN)
    var records: [JournalRecord] = []
    var offsets: [Int] = []
    var lsn = firstLSN
    for b in 0..<blocks {
        var raw: [UInt8] = []
        let first = lsn
        for r in 0..<perBlock {
            let p = payload(b * perBlock + r, size: recordSize + (r * 7) % 23)
            BlockCodec.appendRecord(kind: UInt16(1 + r % 3), payload: p, to: &raw)
            records.append(JournalRecord(lsn: lsn, kind: UInt16(1 + r % 3), payload: p))
            lsn += 1
        }
        offsets.append(out.count)
        BlockCodec.encodeBlock(firstLSN: first, recordCount: perBlock, raw: raw, into: &out, compressor: BlockCompressor())
    }
    precondition(out.count <= size, "segment too small for the blocks")
    out.append(contentsOf: repeatElement(0, count: size - out.count))
    return (out, records, offsets)
}

/// Scans one segment buffer, plans recovery, and decodes the records recovery would keep.
func recover(_ bytes: [UInt8], firstLSN: UInt64 = 1) -> (RecoveryDecision, [JournalRecord]) {
    bytes.withUnsafeBytes { buf in
        let header = SegmentScanner.decodeHeader(buf)
        let scan = try? header.map { SegmentScanner.scan(buf, firstLSN: $0) }.get()
        let decision = RecoveryPlanner.plan([SegmentInput(file: "seg", nameLSN: firstLSN, header: header, scan: scan)])
        guard case .recover = decision, let scan else { return (decision, []) }
        var records: [JournalRecord] = []
        var scratch: [UInt8] = []
        for block in scan.blocks {
            let start = block.offset + WALFormat.blockHeaderSize
            let payload = UnsafeRawBufferPointer(rebasing: buf[start..<(start + block.header.storedLength)])
            try! BlockCodec.decodeRecords(header: block.header, payload: payload, scratch: &scratch) { records.append($0) }
        }
        return (decision, records)
    }
}

