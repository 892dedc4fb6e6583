import ChorusCore
import Dispatch
import Glibc

/// The writer's private state. Touched only on `WriteAheadLog.writerQueue`.
final class WriterContext: @unchecked Sendable {
    var file: PosixFile?
    var segmentLSN: UInt64 = 0
    var writeOffset = 0
    /// Bytes of log since the last sparse index entry.
    var bytesSinceIndex = 0
    /// Written but not yet fdatasync'ed.
    var dirty = false
    var syncScheduled = false
    var lastSync = ContinuousClock.now
    // Reused buffers: a group commit allocates nothing once these have grown.
    var raw: [UInt8] = []
    var block: [UInt8] = []
    var out: [UInt8] = []
    var index: [IndexEntry] = []
    let compressor: BlockCompressor

    init(compressionLevel: Int) { compressor = BlockCompressor(level: compressionLevel) }
}

extension WriteAheadLog {
    /// Runs on writerQueue: group commits until nothing waits.
    func drain() {
        while let batch = takeBatch() {
            let last = batch[batch.count - 1].lsn
            do {
                let synced = try commit(batch)
                state.withLock { s in
                    s.writtenLSN = last
                    if synced { s.durableLSN = last }
                    s.index.append(contentsOf: writer.index)
                }
                writer.index.removeAll(keepingCapacity: true)
                for p in batch { p.completion?(.success(p.lsn)) }
            } catch {
                stop(.wrap(error), failing: batch)
            }
        }
    }

    /// Takes what waits, up to `maxBatchBytes`; nil (and the writer unscheduled) when nothing does.
    private func takeBatch() -> [PendingAppend]? {
        if options.batchDelayMicroseconds > 0 { usleep(UInt32(options.batchDelayMicroseconds)) }
        let limit = options.maxBatchBytes
        return state.withLock { s -> [PendingAppend]? in
            guard s.failure == nil, !s.pending.isEmpty else {
                s.writerScheduled = false
                return nil
            }
            var bytes = 0
            var n = 0
            while n < s.pending.count {
                let size = s.pending[n].payload.count + WALFormat.recordHeaderSize
                if n > 0 && bytes + size > limit { break }
                bytes += size
                n += 1
            }
            s.pendingBytes -= bytes
            if n == s.pending.count {
                defer { s.pending.removeAll(keepingCapacity: true) }
                return s.pending
            }
            defer { s.pending.removeFirst(n) }
            return Array(s.pending[0..<n])
        }
    }

    /// Encodes the batch into blocks, writes them (rolling segments as needed) and syncs as the mode
    /// says. Returns whether the batch is fsynced.
    private func commit(_ batch: [PendingAppend]) throws -> Bool {
        let w = writer
        w.out.removeAll(keepingCapacity: true)
        var i = 0
        while i < batch.count {
            w.raw.removeAll(keepingCapacity: true)
            let firstLSN = batch[i].lsn
            var count = 0
            while i < batch.count {
                let size = batch[i].payload.count + WALFormat.recordHeaderSize
                if count > 0 && w.raw.count + size > options.blockTargetBytes { break }
                BlockCodec.appendRecord(kind: batch[i].kind, payload: batch[i].payload, to: &w.raw)
                count += 1
                i += 1
            }
            w.block.removeAll(keepingCapacity: true)
            BlockCodec.encodeBlock(firstLSN: firstLSN, recordCount: count, raw: w.raw, into: &w.block, compressor: w.compressor)
            if w.file == nil || w.writeOffset + w.out.count + w.block.count > options.segmentBytes {
                try flushOut()
                try roll(firstLSN: firstLSN)
            }
            let offset = w.writeOffset + w.out.count
            if offset == WALFormat.segmentHeaderSize || w.bytesSinceIndex >= options.indexIntervalBytes {
                w.index.append(IndexEntry(firstLSN: firstLSN, segmentLSN: w.segmentLSN, offset: offset))
                w.bytesSinceIndex = 0
            }
            w.bytesSinceIndex += w.block.count
            w.out.append(contentsOf: w.block)
        }
        try flushOut()
        switch options.syncMode {
        case .always:
            try syncNow()
            return true
        case .batch(let ms):
            let interval = Duration.milliseconds(ms)
            let since = ContinuousClock.now - w.lastSync
            if since >= interval {
                try syncNow()
                return true
            }
            scheduleSync(after: interval - since)
            return false
        case .never:
            return false
        }
    }

    /// Writes the accumulated blocks at the current offset of the current segment.
    private func flushOut() throws {
        let w = writer
        guard !w.out.isEmpty, let file = w.file else { return }
        try options.faultHook.fault(.write)
        try w.out.withUnsafeBytes { (b) in try file.write(b, at: w.writeOffset) }
        w.writeOffset += w.out.count
        w.out.removeAll(keepingCapacity: true)
        w.dirty = true
    }

    private func syncNow() throws {
        guard writer.dirty, let file = writer.file else { return }
        try options.faultHook.fault(.sync)
        try file.syncData()
        writer.dirty = false
        writer.lastSync = ContinuousClock.now
    }

    /// `batch` mode: one deferred fdatasync, so nothing stays unsynced longer than the interval.
    private func scheduleSync(after delay: Duration) {
        guard !writer.syncScheduled else { return }
        writer.syncScheduled = true
        let ns = Int(delay.components.seconds) * 1_000_000_000 + Int(delay.components.attoseconds / 1_000_000_000)
        writerQueue.asyncAfter(deadline: .now() + .nanoseconds(ns)) {
            self.writer.syncScheduled = false
            guard self.state.withLock({ $0.failure == nil }) else { return }
            do {
                try self.syncNow()
                self.state.withLock { $0.durableLSN = $0.writtenLSN }
            } catch {
                self.stop(.wrap(error), failing: [])
            }
        }
    }

    /// Segment roll. Order matters for crash safety: the old segment is fsynced, the new one is
    /// created under a temporary name, preallocated, given its header, fsynced, renamed, and the
    /// directory fsynced; only then does a block go into it.
    func roll(firstLSN: UInt64) throws {
        let w = writer
        if w.file != nil { try syncNow() }
        let hook = options.faultHook
        let final = directory + "/" + WALFormat.segmentName(firstLSN: firstLSN)
        let temporary = final + ".tmp"
        try hook.fault(.rollCreate)
        let created = try PosixFile(path: temporary, flags: O_RDWR | O_CREAT | O_TRUNC)
        try hook.fault(.rollPreallocate)
        try created.preallocate(options.segmentBytes)
        try hook.fault(.rollHeader)
        try SegmentScanner.encodeHeader(firstLSN: firstLSN).withUnsafeBytes { (b) in
            try created.write(b, at: 0)
        }
        try hook.fault(.rollSyncFile)
        try created.sync()
        try hook.fault(.rollRename)
        try Directory.rename(temporary, final)
        try hook.fault(.rollSyncDirectory)
        try Directory.syncDirectory(directory)
        w.file = try PosixFile(path: final, flags: O_RDWR)
        w.segmentLSN = firstLSN
        w.writeOffset = WALFormat.segmentHeaderSize
        w.dirty = false
        state.withLock { $0.segments.append(SegmentRef(firstLSN: firstLSN, path: final)) }
    }

    /// Makes the failure sticky and fails everything waiting. Never retries.
    func stop(_ error: WALError, failing batch: [PendingAppend]) {
        let cause = error.description
        logger.critical("write-ahead log stopped; no further appends are acknowledged", metadata: ["cause": "\(cause)"])
        let waiting = state.withLock { s -> [PendingAppend] in
            if s.failure == nil { s.failure = cause }
            defer {
                s.pending.removeAll()
                s.pendingBytes = 0
            }
            return s.pending
        }
        let failure = WALError.stopped(cause: cause)
        for p in batch { p.completion?(.failure(failure)) }
        for p in waiting { p.completion?(.failure(failure)) }
    }
}

extension Optional where Wrapped == @Sendable (WALFaultPoint) throws -> Void {
    /// Runs the test hook, turning anything it throws into an I/O error at that step.
    func fault(_ point: WALFaultPoint) throws {
        guard let hook = self else { return }
        do { try hook(point) } catch let e as WALError { throw e } catch {
            throw WALError.io(operation: "\(point)", path: "(injected)", errno: EIO)
        }
    }
}
