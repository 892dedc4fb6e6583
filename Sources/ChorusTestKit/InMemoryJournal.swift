import Dispatch
import ChorusCore
import Synchronization

/// A `Journal` in memory, for unit tests of logic that logs. Can be told to fail like a stopped log.
public final class InMemoryJournal: Journal, Sendable {
    private let state = Mutex<(records: [JournalRecord], failing: Bool)>(([], false))

    public init() {}

    public var records: [JournalRecord] { state.withLock { $0.records } }

    /// From now on every append fails, as a stopped write-ahead log does.
    public func fail() { state.withLock { $0.failing = true } }

    public var isHealthy: Bool { state.withLock { !$0.failing } }

    public func append(kind: UInt16, payload: [UInt8]) async throws -> UInt64 {
        try await append(batch: [(kind, payload)]).upperBound
    }

    public func append(batch: [(kind: UInt16, payload: [UInt8])]) async throws -> ClosedRange<UInt64> {
        let range = try state.withLock { s in
            if s.failing { throw InMemoryJournalError.stopped }
            let first = UInt64(s.records.count + 1)
            for r in batch { s.records.append(JournalRecord(lsn: UInt64(s.records.count + 1), kind: r.kind, payload: r.payload)) }
            return first...UInt64(s.records.count)
        }
        wakeWaiters()
        return range
    }

    private let waiters = Mutex<(next: Int, all: [(id: Int, count: Int, continuation: CheckedContinuation<Bool, Never>)])>((0, []))

    /// Returns true once the log holds at least `count` records, or false if the task is cancelled
    /// first (so a test's time limit ends the wait instead of hanging).
    @discardableResult
    public func waitForRecords(_ count: Int) async -> Bool {
        let id = waiters.withLock { w in defer { w.next += 1 }; return w.next }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                // The count is read under `waiters`' lock, which every append takes after appending.
                let ready = waiters.withLock { w in
                    if records.count >= count || Task.isCancelled { return true }
                    w.all.append((id, count, c))
                    return false
                }
                if ready { c.resume(returning: records.count >= count) }
            }
        } onCancel: {
            let gone = waiters.withLock { w in
                let gone = w.all.first { $0.id == id }
                w.all.removeAll { $0.id == id }
                return gone
            }
            gone?.continuation.resume(returning: false)
        }
    }

    private func wakeWaiters() {
        let n = records.count
        let due = waiters.withLock { w in
            let due = w.all.filter { $0.count <= n }
            w.all.removeAll { $0.count <= n }
            return due
        }
        for d in due { d.continuation.resume(returning: true) }
    }

    /// Assigns LSNs at once, in call order, and completes on a serial queue in that order (LSN order),
    /// never on the caller: like the real log, whose completions come from its own thread.
    public func append(
        batch records: [(kind: UInt16, payload: [UInt8])], completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void
    ) {
        let result: Result<UInt64, any Error> = state.withLock { s in
            if s.failing { return .failure(InMemoryJournalError.stopped) }
            for r in records { s.records.append(JournalRecord(lsn: UInt64(s.records.count + 1), kind: r.kind, payload: r.payload)) }
            return .success(UInt64(s.records.count))
        }
        wakeWaiters()
        completions.async { completion(result) }
    }

    private let completions = DispatchQueue(label: "chorus.testkit.journal")

    /// Holds completions back (appends still get their LSNs), as a log waiting for its fsync does.
    public func hold() { completions.suspend() }

    /// Lets held completions run, and returns once every completion queued so far has run.
    public func release() {
        completions.resume()
        completions.sync {}
    }

    public func read(from lsn: UInt64, limit: Int) throws -> [JournalRecord] {
        state.withLock { s in
            guard lsn >= 1, lsn <= UInt64(s.records.count) else { return [] }
            return Array(s.records[Int(lsn - 1)..<min(s.records.count, Int(lsn - 1) + limit)])
        }
    }
}

public enum InMemoryJournalError: Error { case stopped }
