import ChorusCore
import Glibc

extension WriteAheadLog {
    /// Queues every sealed (not last), not yet compacted segment for background compaction.
    func scheduleCompactionOfSealedSegments() {
        guard options.coldCompressionLevel != nil, options.compactInBackground else { return }
        compactionQueue.async {
            // At a lower CPU priority: compaction may use idle cores, never the event loops' share.
            try? BackgroundThread.run("chorus.wal.compaction") { self.compactSealedSegmentsNow() }
        }
    }

    /// Compacts every sealed segment now and returns when done (for tests, benchmarks and tools).
    public func compactSealedSegments() {
        compactionQueue.sync { compactSealedSegmentsNow() }
    }

    /// Runs on compactionQueue.
    private func compactSealedSegmentsNow() {
        guard let level = options.coldCompressionLevel else { return }
        while true {
            let next = state.withLock { s -> SegmentRef? in
                guard !s.closed, s.failure == nil, s.segments.count > 1 else { return nil }
                return s.segments.dropLast().first { !$0.compacted }
            }
            guard let segment = next else { return }
            do {
                try compact(segment, level: level)
            } catch {
                // Compaction is an optimisation: a failure leaves the sealed segment as it was.
                logger.error("segment compaction failed", metadata: ["segment": "\(segment.path)", "error": "\(error)"])
                state.withLock { s in
                    if let i = s.segments.firstIndex(where: { $0.firstLSN == segment.firstLSN }) { s.segments[i].compacted = true }
                }
            }
        }
    }

    /// Rewrites one sealed segment: same records and LSNs, fewer and larger blocks compressed at the
    /// cold level. Written to a temporary file, checked, fsynced, renamed over the original under the
    /// state lock (so readers switch index and file together), then the directory is fsynced.
    private func compact(_ segment: SegmentRef, level: Int) throws {
        let old = try PosixFile(path: segment.path, flags: O_RDONLY).readAll()
        let scan = old.withUnsafeBytes { SegmentScanner.scan($0, firstLSN: segment.firstLSN) }
        guard case .clean = scan.end else {
            throw WALError.corruptRead(file: segment.path, offset: scan.validEnd, reason: "sealed segment does not scan clean")
        }
        // Streams: each record goes into the new block being built as it is decoded, so what is
        // held besides the two files is one block (holding every record of a segment at once cost
        // two segments' worth of small allocations and fragmented the heap around them).
        var bytes = SegmentScanner.encodeHeader(firstLSN: segment.firstLSN, flags: SegmentScanner.flagCompacted)
        let compressor = BlockCompressor(level: level)
        var raw: [UInt8] = []
        var first: UInt64 = 0
        var count = 0
        var total = 0
        var scratch: [UInt8] = []
        let limit = options.coldBlockBytes
        func seal() {
            guard count > 0 else { return }
            BlockCodec.encodeBlock(firstLSN: first, recordCount: count, raw: raw, into: &bytes, compressor: compressor)
            raw.removeAll(keepingCapacity: true)
            count = 0
        }
        try old.withUnsafeBytes { buf in
            for block in scan.blocks {
                let start = block.offset + WALFormat.blockHeaderSize
                let payload = UnsafeRawBufferPointer(rebasing: buf[start..<(start + block.header.storedLength)])
                try BlockCodec.decodeRecords(header: block.header, payload: payload, scratch: &scratch) { r in
                    if count > 0, raw.count + r.payload.count + WALFormat.recordHeaderSize > limit { seal() }
                    if count == 0 { first = r.lsn }
                    BlockCodec.appendRecord(kind: r.kind, payload: r.payload, to: &raw)
                    count += 1
                    total += 1
                }
            }
        }
        seal()
        // Assert before writing: the new file scans clean and holds exactly the same LSN range.
        let check = bytes.withUnsafeBytes { SegmentScanner.scan($0, firstLSN: segment.firstLSN) }
        guard case .clean = check.end, check.nextLSN == scan.nextLSN, check.recordCount == total,
            bytes.count <= old.count
        else { throw WALError.corruptRead(file: segment.path, offset: 0, reason: "compacted segment failed its own check") }

        let temporary = segment.path + ".compact.tmp"
        do {
            let file = try PosixFile(path: temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try bytes.withUnsafeBytes { try file.write($0, at: 0) }
            try file.sync()
        }
        var index: [IndexEntry] = []
        var since = 0
        for (n, block) in check.blocks.enumerated() {
            if n == 0 || since >= options.indexIntervalBytes {
                index.append(IndexEntry(firstLSN: block.header.firstLSN, segmentLSN: segment.firstLSN, offset: block.offset))
                since = 0
            }
            since += block.header.totalSize
        }
        let swapped = try state.withLock { s -> Bool in
            guard !s.closed, s.failure == nil, let at = s.segments.firstIndex(where: { $0.firstLSN == segment.firstLSN }) else { return false }
            try Directory.rename(temporary, segment.path)
            s.segments[at].compacted = true
            s.index.removeAll { $0.segmentLSN == segment.firstLSN }
            let insertAt = s.index.firstIndex { $0.firstLSN > segment.firstLSN } ?? s.index.count
            s.index.insert(contentsOf: index, at: insertAt)
            s.readFiles[segment.firstLSN] = nil
            return true
        }
        guard swapped else {
            try? Directory.remove(temporary)
            return
        }
        try Directory.syncDirectory(directory)
        logger.debug("segment compacted", metadata: [
            "segment": "\(segment.path)", "bytesBefore": "\(scan.validEnd)", "bytesAfter": "\(bytes.count)",
        ])
    }
}
