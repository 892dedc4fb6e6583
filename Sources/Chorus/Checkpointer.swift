import ChorusCLI
import ChorusCore
import ChorusEngine
import ChorusWAL
import Dispatch
import Glibc
import Logging
import ServiceLifecycle
import Synchronization

/// Writes engine snapshots in the background so that a restart replays a bounded tail of the log.
///
/// It never touches live state: each time `everyRecords` new records are durable, it loads the newest
/// snapshot, replays the durable records after it into a private copy of the state, and writes that
/// as the new snapshot (the log prunes older snapshots and applies retention). The copy lives only
/// while the snapshot is built. A failure is logged and retried at the next threshold; acks never
/// depend on snapshots. Graceful shutdown abandons a snapshot in progress (the old one stays valid)
/// and, once clients are gone, writes a final one if one is due.
struct Checkpointer: Service {
    let log: WriteAheadLog
    let directory: String
    let everyRecords: UInt64
    let initialSnapshotLSN: UInt64
    let logger: Logger
    /// Which users' inboxes this node keeps (replay must match the live node's).
    var sharesInbox: @Sendable (String, String) -> Bool = { _, _ in true }

    func run() async throws {
        guard everyRecords > 0 else {
            try? await gracefulShutdown()
            return
        }
        let stopping = Atomic<Bool>(false)
        var last = initialSnapshotLSN
        await withGracefulShutdownHandler {
            // Cancelled (another service failed, so the group is cancelled, not shut down gracefully):
            // stop too; the sleep below returns at once then, and this loop would spin forever.
            while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
                // A periodic look at the log's size, not a wait for an event: cheap and bounded.
                try? await Task.sleep(for: .seconds(1))
                let durable = log.durableLSN
                guard !stopping.load(ordering: .relaxed), durable >= last + everyRecords, log.isHealthy else { continue }
                let from = last
                do {
                    last = try await Self.offThread { [self] in
                        // Built at a lower CPU priority: snapshots use cores chat traffic leaves idle.
                        try BackgroundThread.run("chorus.checkpointer") { try build(after: from, upTo: durable, stopping: stopping) }
                    }
                } catch is Abandoned {
                    break
                } catch {
                    logger.error("snapshot failed; will retry", metadata: ["error": "\(error)"])
                    last = max(last, durable)  // retry after another `everyRecords`, not in a loop
                }
            }
        } onGracefulShutdown: {
            stopping.store(true, ordering: .relaxed)
        }
        // The gateway has stopped (it shuts down first): one last snapshot if one is due, so a clean
        // restart replays (almost) nothing. The log closes after this returns.
        let durable = log.durableLSN
        guard durable >= last + everyRecords, log.isHealthy else { return }
        let from = last
        do {
            _ = try await Self.offThread { [self] in try build(after: from, upTo: durable, stopping: Atomic(false)) }
        } catch {
            logger.error("snapshot at shutdown failed", metadata: ["error": "\(error)"])
        }
    }

    struct Abandoned: Error {}

    /// Builds and writes the snapshot at `upTo`; returns its LSN. Runs on a utility thread.
    func build(after lastLSN: UInt64, upTo: UInt64, stopping: borrowing Atomic<Bool>) throws -> UInt64 {
        let started = ContinuousClock.now
        var state = NodeState()
        var inboxes = InboxDirectory()
        var from: UInt64 = 1
        if let newest = try SnapshotStore(directory: directory).loadNewest().0 {
            let decoded: Result<(NodeState, InboxDirectory), EngineSnapshotError> = Result { () throws(EngineSnapshotError) in
                try NodeSnapshot.decode(newest.payload)
            }
            switch decoded {
            case .success(let restored):
                (state, inboxes) = restored
                from = newest.lsn + 1
            case .failure(.unsupportedVersion(let v)) where log.firstLSN == 1:
                // An older format: build this one from the whole log instead.
                logger.info("rebuilding the snapshot from the whole log", metadata: ["oldFormat": "\(v)"])
            case .failure(let e):
                throw e
            }
        }
        state.engine.sharesInbox = sharesInbox
        var next = from
        while next <= upTo {
            guard !stopping.load(ordering: .relaxed) else { throw Abandoned() }
            let records = try log.read(from: next, limit: 4096)
            guard let lastRead = records.last else { break }
            for r in records where r.lsn <= upTo {
                try state.apply(kind: r.kind, payload: r.payload, lsn: r.lsn, inboxes: inboxes)
            }
            next = lastRead.lsn + 1
        }
        let payload = NodeSnapshot.encode(state, inboxes: inboxes)
        defer {
            // The private copy is gone after this function: give its pages back to the system, or
            // the process keeps the peak (state twice) as resident memory.
            ProcessMemory.trimMalloc()
        }
        try log.writeSnapshot(lsn: upTo, payload: payload)
        logger.info("snapshot written", metadata: [
            "lsn": "\(upTo)", "bytes": "\(payload.count)", "replayed": "\(upTo + 1 - from)", "elapsed": "\(ContinuousClock.now - started)",
        ])
        return upTo
    }

    static let queue = DispatchQueue(label: "chorus.checkpointer", qos: .utility)

    static func offThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in queue.async { c.resume(with: Result { try work() }) } }
    }
}
