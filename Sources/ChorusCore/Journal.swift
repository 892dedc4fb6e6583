import Glibc
import Synchronization

/// One durable event: its log sequence number, a type tag owned by the writer, and encoded bytes.
public struct JournalRecord: Sendable, Equatable {
    /// Log sequence number: 1 for the first record ever written, +1 for each record after it.
    public var lsn: UInt64
    /// Record type. The engine owns the numbering; the log never interprets it.
    public var kind: UInt16
    /// The encoded event (a compact, versioned binary encoding; never JSON).
    public var payload: [UInt8]

    public init(lsn: UInt64, kind: UInt16, payload: [UInt8]) {
        self.lsn = lsn
        self.kind = kind
        self.payload = payload
    }
}

/// The port through which the engine makes state changes durable and reads history back.
///
/// `ChorusWAL.WriteAheadLog` is the real implementation; the engine never imports it.
public protocol Journal: Sendable {
    /// Appends one record and returns its LSN once it is as durable as the log's mode promises
    /// (`always`: written and fsynced).
    func append(kind: UInt16, payload: [UInt8]) async throws -> UInt64
    /// Appends records with consecutive LSNs; returns them once all are durable.
    func append(batch records: [(kind: UInt16, payload: [UInt8])]) async throws -> ClosedRange<UInt64>
    /// Enqueues records with consecutive LSNs, assigned in call order, and returns at once;
    /// `completion` gets the last LSN once all are durable. Contract the engine relies on: completions
    /// run one at a time, in LSN order, and must not block. The batch is atomic across crashes. A
    /// refusal (no LSN assigned: too large, log stopped or closed) may complete at once on the caller.
    func append(batch records: [(kind: UInt16, payload: [UInt8])], completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void)
    /// `append(batch:completion:)` of one record, without building the array (the send path).
    func append(record kind: UInt16, payload: [UInt8], completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void)
    /// `append(batch:completion:)` of records that change the key at `point` (a user's or a
    /// conversation's ring point). A replicated log appends them to that point's partition; a plain
    /// log ignores the point. Every engine append names its key this way.
    func append(batch records: [(kind: UInt16, payload: [UInt8])], at point: UInt64, completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void)
    /// `append(record:payload:completion:)` naming the key's point, as `append(batch:at:completion:)`.
    func append(record kind: UInt16, payload: [UInt8], at point: UInt64, completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void)
    /// Up to `limit` records starting at `lsn`, in LSN order.
    func read(from lsn: UInt64, limit: Int) throws -> [JournalRecord]
    /// False once a write or fsync has failed: from then on every append fails.
    var isHealthy: Bool { get }
}

extension Journal {
    public func append(record kind: UInt16, payload: [UInt8], completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
        append(batch: [(kind, payload)], completion: completion)
    }

    public func append(
        batch records: [(kind: UInt16, payload: [UInt8])], at point: UInt64, completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void
    ) {
        append(batch: records, completion: completion)
    }

    public func append(
        record kind: UInt16, payload: [UInt8], at point: UInt64, completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void
    ) {
        append(record: kind, payload: payload, completion: completion)
    }

    /// Appends the records of several keys, each group as `append(batch:at:)`, all enqueued before
    /// any is waited for (one group commit on a plain log). Groups of different keys may complete
    /// in any order; a failure of any fails the whole.
    public func append(groups: [(point: UInt64, records: [(kind: UInt16, payload: [UInt8])])]) async throws {
        let groups = groups.filter { !$0.records.isEmpty }
        guard !groups.isEmpty else { return }
        let state = Mutex<(left: Int, error: (any Error)?)>((groups.count, nil))
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            for g in groups {
                append(batch: g.records, at: g.point) { result in
                    let finished = state.withLock { s -> Result<Void, any Error>? in
                        if case .failure(let e) = result, s.error == nil { s.error = e }
                        s.left -= 1
                        guard s.left == 0 else { return nil }
                        return s.error.map { .failure($0) } ?? .success(())
                    }
                    if let finished { c.resume(with: finished) }
                }
            }
        }
    }

    /// `append(batch:at:completion:)`, waiting until durable; returns the records' LSNs.
    public func append(batch records: [(kind: UInt16, payload: [UInt8])], at point: UInt64) async throws -> ClosedRange<UInt64> {
        let count = UInt64(records.count)
        let last = try await withCheckedThrowingContinuation { c in append(batch: records, at: point) { c.resume(with: $0) } }
        return (last + 1 - count)...last
    }

    /// Enqueues on the caller's actor, so the order of one actor's calls is their LSN order, then
    /// waits until durable. (A plain `async` call would first hop off the actor, and another call of
    /// the same actor could enqueue ahead of it.)
    public func appendInOrder(
        _ records: [(kind: UInt16, payload: [UInt8])], at point: UInt64, isolation: isolated (any Actor)? = #isolation
    ) async throws -> UInt64 {
        try await withCheckedThrowingContinuation(isolation: isolation) { c in
            append(batch: records, at: point) { c.resume(with: $0) }
        }
    }

    /// `appendInOrder`, running `onDurable` with the last LSN on the completion path (one at a time,
    /// in LSN order) before returning its result: how live changes keep replay's order.
    public func appendInOrder<T: Sendable>(
        _ records: [(kind: UInt16, payload: [UInt8])], at point: UInt64, isolation: isolated (any Actor)? = #isolation,
        onDurable: @escaping @Sendable (UInt64) -> T
    ) async -> Result<T, any Error> {
        await withCheckedContinuation(isolation: isolation) { c in
            append(batch: records, at: point) { result in c.resume(returning: result.map(onDurable)) }
        }
    }
}
