/// When an append is acknowledged relative to fsync.
public enum SyncMode: Equatable, Sendable {
    /// The append returns once its block is written and fdatasync'ed (group commit). The default.
    case always
    /// The append returns once written to the OS; fdatasync runs at most `intervalMs` later.
    /// Risk window: a machine crash (not a process crash) can lose the last `intervalMs` of acks.
    case batch(intervalMs: Int)
    /// The append returns once written to the OS; fdatasync only on segment roll and close.
    case never
}

/// Which segments may be deleted. Segments hold the message history, so a snapshot alone never
/// deletes anything.
public enum RetentionPolicy: Equatable, Sendable {
    /// Keep every segment (the default).
    case keepAll
    /// Delete the oldest segments wholly covered by the newest snapshot while the log is larger than
    /// `maxBytes`. History before the first kept segment is gone.
    case maxBytes(Int)
}

/// A step of the write path at which tests can inject a failure. Production passes no hook.
public enum WALFaultPoint: Equatable, Sendable {
    case write, sync
    case rollCreate, rollPreallocate, rollHeader, rollSyncFile, rollRename, rollSyncDirectory
}

/// Configuration of a log. Every bound is here with its behaviour at the bound.
public struct WALOptions: Sendable {
    public var syncMode: SyncMode = .always
    /// Size each segment file is preallocated to; a segment rolls when the next block would not fit.
    public var segmentBytes: Int = 64 << 20
    /// A block is closed once its records reach this many raw bytes (one oversized record still fits).
    public var blockTargetBytes: Int = 1 << 20
    /// Compression of blocks on the commit path: 0 is LZ4's fast mode (about 420 MB/s per core here,
    /// ratio about 1.6 on chat records); 3...12 are LZ4HC levels. LZ4HC level 3 (about 70 MB/s) cost a
    /// third of group-commit throughput on this machine's 0.2 ms fdatasync, so the default is fast.
    public var compressionLevel: Int = 0
    /// Sealed segments are rewritten in the background into blocks of `coldBlockBytes` compressed at
    /// this LZ4HC level (ratio about 2.0 on chat records at level 4, about 56 MB/s per core);
    /// nil leaves them as written.
    public var coldCompressionLevel: Int? = 4
    /// Compact sealed segments automatically (after open and after each roll). When false, only
    /// `compactSealedSegments()` does.
    public var compactInBackground = true
    /// Raw size of the blocks compaction writes.
    public var coldBlockBytes: Int = 1 << 20
    /// Largest record payload accepted (at most `WALFormat.maxRecordPayloadBytes`).
    public var maxRecordBytes: Int = WALFormat.maxRecordPayloadBytes
    /// One group commit writes at most this many raw bytes before its fsync.
    public var maxBatchBytes: Int = 4 << 20
    /// Group commits on the writer thread start at least this far apart (0: at once). A commit due
    /// sooner waits out the rest while more appends join it, so at most one commit per interval; when
    /// commits come further apart than this (light load) nothing waits. A commit that runs on an
    /// event loop (`never`, `deferredCommits`) never waits. See `CommitPacing`.
    public var minCommitIntervalMicroseconds: Int = 0
    /// In mode `never`, an append made on a thread with a `CommitDeferral` (an event loop) that finds
    /// the writer idle has the commit run on that thread (at the end of its loop tick, or earlier at a
    /// `CommitDeferral.checkpoint`) instead of waking the writer thread. Ignored in `always` and
    /// `batch`: an fsync never runs on a caller.
    public var deferredCommits = true
    /// Appends waiting for the writer, in payload bytes. Past it, `append` fails with `.overloaded`.
    public var maxPendingBytes: Int = 64 << 20
    /// One sparse index entry per this many bytes of log (plus one per segment).
    public var indexIntervalBytes: Int = 64 << 10
    public var retention: RetentionPolicy = .keepAll
    /// Snapshot files kept besides the newest.
    public var snapshotsKept: Int = 1
    /// Called on the writer after each successful fdatasync with its duration (for a latency
    /// histogram). Must not block.
    public var onSync: (@Sendable (Duration) -> Void)?
    /// Test hook: throw from it to make that step fail as if the system call had.
    public var faultHook: (@Sendable (WALFaultPoint) throws -> Void)?

    public init() {}

    /// The largest batch of one `append(batch:)` call, in raw bytes: a batch must fit in one block.
    public var maxAtomicBatchBytes: Int { max(blockTargetBytes, maxRecordBytes + WALFormat.recordHeaderSize) }

    /// The largest raw block the writer produces: a block filled to the target, then one more batch.
    var maxBlockRawBytes: Int { blockTargetBytes + maxAtomicBatchBytes }

    /// A segment must hold its header and the largest possible block.
    var minimumSegmentBytes: Int {
        WALFormat.segmentHeaderSize
            + WALFormat.aligned(WALFormat.blockHeaderSize + maxBlockRawBytes)  // stored is never above raw
    }

    func validate() throws {
        guard maxRecordBytes > 0, maxRecordBytes <= WALFormat.maxRecordPayloadBytes else {
            throw WALError.invalidOptions("record limit \(maxRecordBytes) out of 1...\(WALFormat.maxRecordPayloadBytes)")
        }
        guard blockTargetBytes > 0, maxBlockRawBytes <= WALFormat.maxBlockRawBytes else {
            throw WALError.invalidOptions("block target \(blockTargetBytes) with records of \(maxRecordBytes) bytes makes blocks over \(WALFormat.maxBlockRawBytes)")
        }
        guard segmentBytes >= minimumSegmentBytes else {
            throw WALError.invalidOptions("segment size \(segmentBytes) below the minimum \(minimumSegmentBytes) for these block sizes")
        }
        guard maxBatchBytes >= maxAtomicBatchBytes, maxPendingBytes >= maxAtomicBatchBytes else {
            throw WALError.invalidOptions("batch or pending bound too small")
        }
        guard compressionLevel == 0 || (3...12).contains(compressionLevel) else {
            throw WALError.invalidOptions("compression level \(compressionLevel) is neither 0 (fast) nor 3...12 (LZ4HC)")
        }
        if let cold = coldCompressionLevel, !(0...12).contains(cold) {
            throw WALError.invalidOptions("cold compression level \(cold) is not in 0...12")
        }
        guard coldBlockBytes > 0, coldBlockBytes <= WALFormat.maxBlockRawBytes else {
            throw WALError.invalidOptions("cold block size \(coldBlockBytes) out of 1...\(WALFormat.maxBlockRawBytes)")
        }
        if case .batch(let ms) = syncMode, ms <= 0 { throw WALError.invalidOptions("batch interval must be positive") }
        if case .maxBytes(let n) = retention, n <= 0 { throw WALError.invalidOptions("retention size must be positive") }
    }
}
