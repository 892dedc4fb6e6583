import ChorusCore
import Glibc

extension WriteAheadLog {
    /// The record with this LSN.
    public func read(lsn: UInt64) throws -> JournalRecord {
        guard let record = try read(from: lsn, limit: 1).first else {
            throw WALError.notWritten(lsn: lsn, last: lastLSN)
        }
        return record
    }

    /// Up to `limit` records from `lsn` on, in LSN order; empty past the end of the log.
    /// Every block read back is checked against its CRC32C before it is decoded.
    public func read(from lsn: UInt64, limit: Int) throws -> [JournalRecord] {
        guard limit > 0 else { return [] }
        let snapshot = try state.withLock { s in
            let entry = Self.indexEntry(s.index, lsn)
            return (s.writtenLSN, s.firstRetainedLSN, s.segments, entry, try entry.map { try Self.readFile(&s, $0.segmentLSN) })
        }
        let (written, firstRetained, segments, found, foundFile) = snapshot
        guard lsn >= firstRetained else { throw WALError.compacted(lsn: lsn, firstRetained: firstRetained) }
        guard lsn <= written, var entry = found, var file = foundFile else { return [] }
        let end = min(written, lsn &+ UInt64(limit) &- 1)
        var records: [JournalRecord] = []
        records.reserveCapacity(Int(end - lsn + 1))
        var scratch: [UInt8] = []
        var next = lsn
        while next <= end {
            // Jump to a later segment once the wanted LSN lives there.
            // The first block of every segment sits right after its header, whatever its compaction.
            if let seg = segments.last(where: { $0.firstLSN <= next }), seg.firstLSN > entry.segmentLSN {
                entry = IndexEntry(firstLSN: seg.firstLSN, segmentLSN: seg.firstLSN, offset: WALFormat.segmentHeaderSize)
                file = try state.withLock { try Self.readFile(&$0, seg.firstLSN) }
            }
            let (header, block) = try readBlock(file, at: entry.offset)
            if header.nextLSN > next {
                try block.withUnsafeBytes { (buf) in
                    let payload = UnsafeRawBufferPointer(rebasing: buf[WALFormat.blockHeaderSize..<(WALFormat.blockHeaderSize + header.storedLength)])
                    do {
                        try BlockCodec.decodeRecords(header: header, payload: payload, scratch: &scratch) { r in
                            if r.lsn >= next && r.lsn <= end { records.append(r) }
                        }
                    } catch {
                        throw WALError.corruptRead(file: file.path, offset: entry.offset, reason: "\(error)")
                    }
                }
                next = min(header.nextLSN, end &+ 1)
            }
            entry.offset += header.totalSize
        }
        return records
    }

    /// The last index entry at or before `lsn` (binary search).
    static func indexEntry(_ index: [IndexEntry], _ lsn: UInt64) -> IndexEntry? {
        var lo = 0
        var hi = index.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if index[mid].firstLSN <= lsn { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? nil : index[lo - 1]
    }

    /// Reads and validates one block (header bounds, extent, CRC, padding).
    private func readBlock(_ file: PosixFile, at offset: Int) throws -> (BlockHeader, [UInt8]) {
        var head = [UInt8](repeating: 0, count: WALFormat.blockHeaderSize)
        let n = try head.withUnsafeMutableBytes { (b) in try file.read(into: b, at: offset) }
        let parsed = head.withUnsafeBytes { n == head.count ? BlockCodec.parseHeader($0, at: 0) : .failure(.truncatedHeader) }
        guard case .success(let header) = parsed else {
            throw WALError.corruptRead(file: file.path, offset: offset, reason: "\(parsed)")
        }
        var block = [UInt8](repeating: 0, count: header.totalSize)
        let got = try block.withUnsafeMutableBytes { (b) in try file.read(into: b, at: offset) }
        let valid = block.withUnsafeBytes { got == block.count ? BlockCodec.validate($0, at: 0) : .failure(.truncatedHeader) }
        guard case .success = valid else { throw WALError.corruptRead(file: file.path, offset: offset, reason: "\(valid)") }
        return (header, block)
    }

    /// A cached read-only descriptor for a segment (at most 64 kept open). Called under the state lock.
    static func readFile(_ s: inout State, _ segmentLSN: UInt64) throws -> PosixFile {
        if let f = s.readFiles[segmentLSN] { return f }
        guard let seg = s.segments.first(where: { $0.firstLSN == segmentLSN }) else {
            throw WALError.compacted(lsn: segmentLSN, firstRetained: s.firstRetainedLSN)
        }
        let file = try PosixFile(path: seg.path, flags: O_RDONLY)
        if s.readFiles.count >= 64, let victim = s.readFiles.keys.first { s.readFiles[victim] = nil }
        s.readFiles[segmentLSN] = file
        return file
    }

    /// Writes a snapshot of state as of `lsn` (which must be written), prunes older snapshots, then
    /// applies the retention policy. Call it off the hot path: it writes and fsyncs a whole file.
    public func writeSnapshot(lsn: UInt64, payload: [UInt8]) throws {
        let written = lastLSN
        guard lsn <= written else { throw WALError.notWritten(lsn: lsn, last: written) }
        let store = SnapshotStore(directory: directory)
        try store.write(lsn: lsn, payload: payload)
        try store.prune(keepingOlder: options.snapshotsKept)
        try applyRetention(snapshotLSN: lsn)
    }

    /// Deletes the oldest segments wholly covered by the snapshot while the log is over the policy's
    /// size. `keepAll` deletes nothing. The segment being written is never deleted.
    func applyRetention(snapshotLSN: UInt64) throws {
        guard case .maxBytes(let limit) = options.retention else { return }
        let doomed: [SegmentRef] = state.withLock { s in
            var out: [SegmentRef] = []
            var total = s.segments.count * options.segmentBytes
            var i = 0
            // Segment i is covered when the next one starts at or before snapshotLSN + 1.
            while total > limit, i + 1 < s.segments.count, s.segments[i + 1].firstLSN <= snapshotLSN + 1 {
                out.append(s.segments[i])
                total -= options.segmentBytes
                i += 1
            }
            guard !out.isEmpty else { return [] }
            s.segments.removeFirst(out.count)
            let first = s.segments[0].firstLSN
            s.index.removeAll { $0.segmentLSN < first }
            s.firstRetainedLSN = first
            for seg in out { s.readFiles[seg.firstLSN] = nil }
            return out
        }
        guard !doomed.isEmpty else { return }
        for seg in doomed { try Directory.remove(seg.path) }
        try Directory.syncDirectory(directory)
        logger.info("retention removed segments", metadata: ["count": "\(doomed.count)", "firstLSN": "\(firstLSN)"])
    }
}
