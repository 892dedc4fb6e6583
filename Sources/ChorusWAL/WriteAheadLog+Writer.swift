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
    /// When the last paced group commit began (`WALOptions.minCommitIntervalMicroseconds`).
    var lastCommitStart: ContinuousClock.Instant?
    var index: [IndexEntry] = []
    /// Counters not yet published to `State.stats`.
    var stats = WALStats()
}

extension WriteAheadLog {
    /// Runs on writerQueue: writes one encoded group commit (rolling segments as needed), syncs as
    /// the mode says, publishes the new end of the log, then completes every waiter. Returns true if
    /// the waiters went to `completionQueue` (so the caller must not reuse their array).
    @discardableResult
    func persist(_ batch: EncodedBatch, onLoop: Bool = false) -> Bool {
        if let cause = state.withLock({ $0.failure }) {
            for w in batch.waiters { w.completion(.failure(.stopped(cause: cause))) }
            return false
        }
        do {
            let synced = try write(batch)
            state.withLock { s in
                s.writtenLSN = batch.lastLSN
                if synced { s.durableLSN = batch.lastLSN }
                s.index.append(contentsOf: writer.index)
                s.stats.add(writer.stats)
            }
            writer.stats = WALStats()
            writer.index.removeAll(keepingCapacity: true)
            return complete(batch.waiters, onLoop: onLoop)
        } catch {
            stop(.wrap(error), failing: batch.waiters.map(\.completion))
            return false
        }
    }

    /// Runs waiters' completions in LSN order: inline when no earlier completions still wait on
    /// `completionQueue` and either the commit is small or it runs on an event loop (`CommitDeferral`:
    /// its appends' acks are mostly written on that loop, so a hand-off would cost two thread
    /// wake-ups and save nothing, as that loop's next commit waits for its next tick anyway); else
    /// on that queue, off the writer thread, so a big commit's wake-ups never delay the next pwrite.
    /// Returns true if they were handed to `completionQueue`.
    private func complete(_ waiters: [(lsn: UInt64, completion: AppendCompletion)], onLoop: Bool) -> Bool {
        if (onLoop || waiters.count <= Self.inlineCompletionLimit) && completionsQueued.load(ordering: .acquiring) == 0 {
            for w in waiters { w.completion(.success(w.lsn)) }
            return false
        }
        completionSlots.wait()
        completionsQueued.add(1, ordering: .releasing)
        completionQueue.async {
            for w in waiters { w.completion(.success(w.lsn)) }
            self.completionsQueued.subtract(1, ordering: .releasing)
            self.completionSlots.signal()
        }
        return true
    }

    /// Commits with at most this many waiters may complete on the writer itself.
    static let inlineCompletionLimit = 8

    /// Writes the blocks at the end of the current segment, one `pwrite` per segment touched.
    /// Returns whether the batch is fsynced.
    private func write(_ batch: EncodedBatch) throws -> Bool {
        let w = writer
        var flushed = 0
        var cursor = 0
        for block in batch.blocks {
            if w.file == nil || w.writeOffset + (cursor - flushed) + block.size > options.segmentBytes {
                try writeRange(batch.bytes, flushed..<cursor)
                flushed = cursor
                try roll(firstLSN: block.firstLSN)
            }
            let offset = w.writeOffset + (cursor - flushed)
            if offset == WALFormat.segmentHeaderSize || w.bytesSinceIndex >= options.indexIntervalBytes {
                w.index.append(IndexEntry(firstLSN: block.firstLSN, segmentLSN: w.segmentLSN, offset: offset))
                w.bytesSinceIndex = 0
            }
            w.bytesSinceIndex += block.size
            cursor += block.size
            w.stats.blocks += 1
            w.stats.records += block.records
            w.stats.rawBytes += block.rawBytes
            w.stats.storedBytes += block.size
        }
        try writeRange(batch.bytes, flushed..<cursor)
        w.stats.commits += 1
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

    private func writeRange(_ bytes: [UInt8], _ range: Range<Int>) throws {
        let w = writer
        guard !range.isEmpty, let file = w.file else { return }
        try options.faultHook.fault(.write)
        try bytes.withUnsafeBytes { b in try file.write(UnsafeRawBufferPointer(rebasing: b[range]), at: w.writeOffset) }
        w.writeOffset += range.count
        w.dirty = true
    }

    func syncNow() throws {
        guard writer.dirty, let file = writer.file else { return }
        try options.faultHook.fault(.sync)
        let start = ContinuousClock.now
        try file.syncData()
        writer.dirty = false
        writer.lastSync = ContinuousClock.now
        writer.stats.syncs += 1
        writer.stats.syncTime += writer.lastSync - start
        options.onSync?(writer.lastSync - start)
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
        scheduleCompactionOfSealedSegments()
    }

    /// Makes the failure sticky and fails everything waiting. Never retries.
    func stop(_ error: WALError, failing batch: [AppendCompletion]) {
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
        // A stopped log never writes again, so it gives the directory up for a recovering successor.
        lock.withLock { $0 = nil }
        let failure = WALError.stopped(cause: cause)
        for c in batch { c(.failure(failure)) }
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

extension WALStats {
    mutating func add(_ other: WALStats) {
        commits += other.commits
        blocks += other.blocks
        records += other.records
        rawBytes += other.rawBytes
        storedBytes += other.storedBytes
        syncs += other.syncs
        syncTime += other.syncTime
    }
}
