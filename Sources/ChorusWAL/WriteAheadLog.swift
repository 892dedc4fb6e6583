import ChorusCore
import Dispatch
import Glibc
import Logging
import Synchronization

/// A segment file of the log, by the LSN of its first record.
struct SegmentRef: Sendable {
    var firstLSN: UInt64
    var path: String
    /// Sealed and rewritten with the cold compression level (header flag).
    var compacted = false
}

/// A sparse index entry: the block holding `firstLSN` starts at `offset` in segment `segmentLSN`.
struct IndexEntry: Sendable {
    var firstLSN: UInt64
    var segmentLSN: UInt64
    var offset: Int
}

/// An append waiting for the writer. `completion` is nil for all but the last record of a batch.
struct PendingAppend: Sendable {
    var lsn: UInt64
    var kind: UInt16
    var payload: [UInt8]
    var completion: AppendCompletion?
}

/// Whom an append tells when it is durable, kept as the caller gave it: through the typed API or
/// through `Journal`'s (`any Error`). Wrapping one in the other would cost a closure per append.
enum AppendCompletion: Sendable {
    case typed(@Sendable (Result<UInt64, WALError>) -> Void)
    case erased(@Sendable (Result<UInt64, any Error>) -> Void)

    func callAsFunction(_ result: Result<UInt64, WALError>) {
        switch self {
        case .typed(let f): f(result)
        case .erased(let f): f(result.mapError { $0 })
        }
    }
}

/// Counters of the write path since the log was opened.
public struct WALStats: Sendable, Equatable {
    /// Group commits: batches written with one `pwrite` per segment touched.
    public var commits = 0
    public var blocks = 0
    public var records = 0
    /// Raw (uncompressed) record bytes and stored block bytes (headers and padding included).
    public var rawBytes = 0
    public var storedBytes = 0
    public var syncs = 0
    /// Total time spent in fdatasync.
    public var syncTime = Duration.zero

    public init() {}
}

/// The LZ4-compressed, segmented write-ahead log: the only durable state of a node.
///
/// Appenders from any thread or task enqueue records and get their LSN once the group commit that
/// holds them is durable. One writer (a serial dispatch queue) turns everything waiting into blocks,
/// writes them with one `pwrite` per segment and one `fdatasync`, then completes every waiter.
/// After any failed write or fsync the log is stopped: every append fails, `isHealthy` is false.
public final class WriteAheadLog: Journal, Sendable {
    struct State {
        var nextLSN: UInt64
        var pending: [PendingAppend] = []
        var pendingBytes = 0
        var writerScheduled = false
        var failure: String?
        var closed = false
        /// Last LSN written to the OS (readable).
        var writtenLSN: UInt64
        /// Last LSN known fsynced.
        var durableLSN: UInt64
        var segments: [SegmentRef]
        var index: [IndexEntry]
        /// First LSN still on disk (retention may raise it).
        var firstRetainedLSN: UInt64
        var stats = WALStats()
        /// Read-only descriptors per segment, opened on demand (at most 64). Kept under the same lock
        /// as `index`, so a reader always pairs offsets with the file they belong to.
        var readFiles: [UInt64: PosixFile] = [:]
    }

    public let directory: String
    let options: WALOptions
    let logger: Logger
    let state: Mutex<State>
    /// Encodes, writes and fsyncs group commits (stage 1).
    let writerQueue = DispatchQueue(label: "chorus.wal.writer")
    /// Runs append completions in LSN order (stage 2), so waking appenders never delays the next
    /// commit's write. Small commits may complete inline on the writer instead (see `complete`).
    let completionQueue = DispatchQueue(label: "chorus.wal.completions")
    /// Completion batches handed to `completionQueue` and not yet run.
    let completionsQueued = Atomic<Int>(0)
    /// At most 4 commits' completions wait on `completionQueue`; past that the writer waits, and
    /// appends pile up in `pending` until `maxPendingBytes` refuses them.
    let completionSlots = DispatchSemaphore(value: 4)
    /// Only touched on `writerQueue`.
    let encoder: EncoderContext
    /// Only touched on `writerQueue`.
    let writer: WriterContext
    /// Rewrites sealed segments with the cold compression level, one at a time, in the background.
    let compactionQueue = DispatchQueue(label: "chorus.wal.compaction", qos: .utility)

    /// The directory's LOCK file, held while the log is open and healthy.
    let lock: Mutex<PosixFile?>

    init(directory: String, options: WALOptions, logger: Logger, state: State, writer: WriterContext, lock: PosixFile) {
        self.lock = Mutex(lock)
        self.directory = directory
        self.options = options
        self.logger = logger
        self.state = Mutex(state)
        self.writer = writer
        self.encoder = EncoderContext(compressionLevel: options.compressionLevel)
    }

    /// False once a write or fsync failed, or after `close`.
    public var isHealthy: Bool { state.withLock { $0.failure == nil && !$0.closed } }

    /// Why the log stopped, if it did.
    public var failure: String? { state.withLock { $0.failure } }

    /// The last LSN written (readable); 0 when the log is empty.
    public var lastLSN: UInt64 { state.withLock { $0.writtenLSN } }

    /// The last LSN known to be fsynced.
    public var durableLSN: UInt64 { state.withLock { $0.durableLSN } }

    /// Counters since open: group commits, blocks, bytes, fsyncs.
    public var stats: WALStats { state.withLock { $0.stats } }

    /// Bytes the log's segment files take on disk (preallocated space included).
    public var diskBytes: Int {
        state.withLock { $0.segments.map(\.path) }.reduce(0) { total, path in
            var st = stat()
            return total + (stat(path, &st) == 0 ? Int(st.st_size) : 0)
        }
    }

    /// The first LSN still stored (older ones were removed by retention).
    public var firstLSN: UInt64 { state.withLock { $0.firstRetainedLSN } }

    /// Appends one record; returns its LSN once durable as the sync mode promises.
    public func append(kind: UInt16, payload: [UInt8]) async throws -> UInt64 {
        try await withUnsafeThrowingContinuation { (c: UnsafeContinuation<UInt64, any Error>) in
            append(kind: kind, payload: payload) { c.resume(with: $0.mapError { $0 }) }
        }
    }

    /// Appends records that get consecutive LSNs; returns them once all are durable. Atomic: the
    /// records share one block, so after a crash either all of them are in the log or none is.
    public func append(batch records: [(kind: UInt16, payload: [UInt8])]) async throws -> ClosedRange<UInt64> {
        precondition(!records.isEmpty, "empty batch")
        let last = try await withUnsafeThrowingContinuation { (c: UnsafeContinuation<UInt64, any Error>) in
            enqueue(records, completion: .typed { c.resume(with: $0.mapError { $0 }) })
        }
        return (last - UInt64(records.count) + 1)...last
    }

    /// `Journal`'s callback form of a batch append (completions in LSN order on one serial queue).
    public func append(
        batch records: [(kind: UInt16, payload: [UInt8])], completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void
    ) {
        enqueue(records, completion: .erased(completion))
    }

    /// `Journal`'s one-record append: the batch form's contract, without the array.
    public func append(
        record kind: UInt16, payload: [UInt8], completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void
    ) {
        enqueue(CollectionOfOne((kind: kind, payload: payload)), completion: .erased(completion))
    }

    /// Callback form of `append` for shells that must not await. Completions run on one serial
    /// queue in LSN order; they must not block and must not call `close`.
    public func append(kind: UInt16, payload: [UInt8], completion: @escaping @Sendable (Result<UInt64, WALError>) -> Void) {
        enqueue(CollectionOfOne((kind: kind, payload: payload)), completion: .typed(completion))
    }

    /// Assigns LSNs in call order under the lock and wakes the writer if it sleeps. Each
    /// continuation is resumed exactly once: by the completion queue, or here on refusal.
    func enqueue<Records: Collection>(
        _ records: Records, completion: AppendCompletion
    ) where Records.Element == (kind: UInt16, payload: [UInt8]) {
        var bytes = 0
        for r in records {
            guard r.payload.count <= options.maxRecordBytes else {
                completion(.failure(.recordTooLarge(size: r.payload.count, limit: options.maxRecordBytes)))
                return
            }
            bytes += r.payload.count + WALFormat.recordHeaderSize
        }
        guard bytes <= options.maxAtomicBatchBytes else {
            completion(.failure(.batchTooLarge(size: bytes, limit: options.maxAtomicBatchBytes)))
            return
        }
        let limit = options.maxPendingBytes
        let outcome: Result<Bool, WALError> = state.withLock { s in
            if let f = s.failure { return .failure(.stopped(cause: f)) }
            if s.closed { return .failure(.closed) }
            if s.pendingBytes + bytes > limit { return .failure(.overloaded(pendingBytes: s.pendingBytes, limit: limit)) }
            var left = records.count
            for r in records {
                left -= 1
                s.pending.append(PendingAppend(
                    lsn: s.nextLSN, kind: r.kind, payload: r.payload, completion: left == 0 ? completion : nil))
                s.nextLSN += 1
            }
            s.pendingBytes += bytes
            defer { s.writerScheduled = true }
            return .success(!s.writerScheduled)
        }
        switch outcome {
        case .failure(let e): completion(.failure(e))
        case .success(true):
            // This append holds the writer's turn (`writerScheduled`): the commit runs here at the end
            // of the loop tick (`CommitDeferral`), or on the writer thread.
            if case .never = options.syncMode, options.deferredCommits, CommitDeferral.hand({ self.writeLoop(onLoop: true) }) {
                break
            }
            writerQueue.async { self.writeLoop() }
        case .success(false): break
        }
    }

    /// True if the writer was idle and now is the caller's.
    private func takeWriterTurn() -> Bool {
        state.withLock { s in
            guard !s.writerScheduled else { return false }
            s.writerScheduled = true
            return true
        }
    }

    /// Drains waiting appends, fsyncs what `always`/`batch` need, and closes every file.
    /// Appends after this fail with `.closed`. Safe to call twice.
    public func close() throws {
        let first = state.withLock { s -> Bool in
            defer { s.closed = true }
            return !s.closed
        }
        guard first else { return }
        // A deferred commit may be running on an event loop: wait for the writer's turn, then take it.
        while !takeWriterTurn() { usleep(200) }
        // Everything enqueued before `closed` was set is encoded, handed over, and written first.
        let result: WALError? = writerQueue.sync {
            writeLoop()
            defer { writer.file = nil }
            if state.withLock({ $0.failure }) == nil, writer.dirty, let file = writer.file {
                do {
                    try file.syncData()
                    writer.dirty = false
                } catch {
                    return .wrap(error)
                }
            }
            return nil
        }
        compactionQueue.sync {}
        state.withLock { $0.readFiles.removeAll() }
        lock.withLock { $0 = nil }
        if let result { throw result }
    }
}
