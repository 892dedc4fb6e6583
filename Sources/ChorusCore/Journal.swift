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
    /// Up to `limit` records starting at `lsn`, in LSN order.
    func read(from lsn: UInt64, limit: Int) throws -> [JournalRecord]
    /// False once a write or fsync has failed: from then on every append fails.
    var isHealthy: Bool { get }
}
