import Glibc

/// Everything the log can fail with. Mapped to wire codes only at the gateway.
public enum WALError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed. `operation` names the step ("fdatasync", "preallocate", ...).
    case io(operation: String, path: String, errno: Int32)
    /// An earlier write or fsync failed; the log refuses all appends until the process restarts
    /// and recovers from disk. Never cleared in-process.
    case stopped(cause: String)
    /// Recovery found damage it will not skip.
    case damaged(DamageReport)
    /// A record above `WALFormat.maxRecordPayloadBytes`.
    case recordTooLarge(size: Int, limit: Int)
    /// One `append(batch:)` above `WALOptions.maxAtomicBatchBytes` (a batch must fit in one block).
    case batchTooLarge(size: Int, limit: Int)
    /// The queue of appends waiting for the writer is at its bound; retry later.
    case overloaded(pendingBytes: Int, limit: Int)
    /// The log was closed.
    case closed
    /// The LSN was never written (beyond the end of the log).
    case notWritten(lsn: UInt64, last: UInt64)
    /// The LSN was removed by the retention policy.
    case compacted(lsn: UInt64, firstRetained: UInt64)
    /// A block read back did not validate (the disk changed under a running log).
    case corruptRead(file: String, offset: Int, reason: String)
    /// A snapshot file is unusable.
    case badSnapshot(file: String, reason: String)
    /// Another log (this process or another) has the directory open.
    case locked(directory: String)
    /// Options that cannot work together.
    case invalidOptions(String)

    public var description: String {
        switch self {
        case .io(let op, let path, let e): "\(op) \(path): \(String(cString: strerror(e))) (errno \(e))"
        case .stopped(let cause): "write-ahead log stopped after a failure: \(cause)"
        case .damaged(let d): "write-ahead log damaged: \(d)"
        case .recordTooLarge(let size, let limit): "record of \(size) bytes over the limit of \(limit)"
        case .batchTooLarge(let size, let limit): "batch of \(size) bytes over the atomic limit of \(limit)"
        case .overloaded(let p, let l): "append queue full (\(p) of \(l) bytes pending)"
        case .closed: "write-ahead log is closed"
        case .notWritten(let lsn, let last): "LSN \(lsn) not written (last is \(last))"
        case .compacted(let lsn, let first): "LSN \(lsn) removed by retention (first kept is \(first))"
        case .corruptRead(let f, let o, let r): "corrupt block read back from \(f) at offset \(o): \(r)"
        case .badSnapshot(let f, let r): "snapshot \(f): \(r)"
        case .locked(let dir): "\(dir) is in use by another process (its LOCK file is held)"
        case .invalidOptions(let why): "invalid log options: \(why)"
        }
    }
}

extension WALError {
    /// Every throw in this module is a `WALError`; this keeps the type when an API erases it.
    static func wrap(_ error: any Error) -> WALError {
        error as? WALError ?? .io(operation: "\(error)", path: "", errno: EIO)
    }
}
