import ChorusCluster
import ChorusCore

/// What replication writes to a node's log beside (around) the engine's events. Pure codec.
///
/// Log record kinds 0x0100 and up belong to replication; the engine's are below. Every replicated
/// event is an envelope; the other records make replay reproduce what the node decided live.
public enum ReplicationRecord: Equatable, Sendable {
    /// Record `index` of a partition, written in `epoch`: the engine's event of `kind`.
    case replicated(partition: PartitionId, epoch: UInt64, index: UInt64, kind: UInt16, payload: [UInt8])
    /// The partition's commit index reached `index` (records up to it may be applied).
    case committed(partition: PartitionId, index: UInt64)
    /// Records of the partition after `index`, logged before this, are dropped (never committed).
    case truncated(partition: PartitionId, after: UInt64)
    /// The copy promised `epoch` for the partition (a fence, or a newer leader's first append).
    case promised(partition: PartitionId, epoch: UInt64)
    /// The partition's copy is replaced by a leader's snapshot taken at `history.lastIndex`: its
    /// state here is forgotten; `snapshotEvent`s after this rebuild it, all committed.
    case reset(partition: PartitionId, history: EpochHistory)
    /// State of a partition's snapshot, as the engine's event (a hand-over's records).
    case snapshotEvent(partition: PartitionId, kind: UInt16, payload: [UInt8])

    public static let replicatedKind: UInt16 = 0x0100
    public static let committedKind: UInt16 = 0x0101
    public static let truncatedKind: UInt16 = 0x0102
    public static let promisedKind: UInt16 = 0x0103
    public static let resetKind: UInt16 = 0x0104
    public static let snapshotEventKind: UInt16 = 0x0105
    /// The event kind of the record a new leader appends first in its epoch: committing it commits
    /// every record it inherited, after which it serves. Replay applies nothing for it.
    public static let epochStartKind: UInt16 = 0x01F0

    /// True for the kinds this type owns.
    public static func owns(kind: UInt16) -> Bool { kind >= replicatedKind && kind <= snapshotEventKind }

    public var kind: UInt16 {
        switch self {
        case .replicated: Self.replicatedKind
        case .committed: Self.committedKind
        case .truncated: Self.truncatedKind
        case .promised: Self.promisedKind
        case .reset: Self.resetKind
        case .snapshotEvent: Self.snapshotEventKind
        }
    }

    /// Layouts (all start with partition u16): `replicated` epoch varint | index varint | kind u16 |
    /// payload (the rest); `reset` floor, floorEpoch, lastIndex, run count, (epoch, start)* as
    /// varints; `snapshotEvent` kind u16 | payload (the rest); the others one varint.
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 32 + (self.payloadCount))
        switch self {
        case .replicated(let p, let epoch, let index, let kind, let payload):
            w.write(p.rawValue); w.writeVarint(epoch); w.writeVarint(index); w.write(kind); w.write(contentsOf: payload)
        case .committed(let p, let v), .truncated(let p, let v), .promised(let p, let v):
            w.write(p.rawValue); w.writeVarint(v)
        case .reset(let p, let h):
            w.write(p.rawValue); w.writeVarint(h.floor); w.writeVarint(h.floorEpoch); w.writeVarint(h.lastIndex)
            w.writeVarint(UInt64(h.runs.count))
            for run in h.runs { w.writeVarint(run.epoch); w.writeVarint(run.start) }
        case .snapshotEvent(let p, let kind, let payload):
            w.write(p.rawValue); w.write(kind); w.write(contentsOf: payload)
        }
        return w.bytes
    }

    private var payloadCount: Int {
        switch self {
        case .replicated(_, _, _, _, let payload), .snapshotEvent(_, _, let payload): payload.count
        case .reset(_, let h): h.runs.count * 20
        default: 0
        }
    }

    public enum DecodingError: Error, Equatable, Sendable {
        case notReplication(UInt16)
        case malformed(ByteReaderError)
        case invalid(String)
    }

    public static func decode(kind: UInt16, payload: [UInt8]) throws(DecodingError) -> ReplicationRecord {
        guard owns(kind: kind) else { throw .notReplication(kind) }
        var r = ByteReader(payload)
        let record: ReplicationRecord
        do {
            let raw = try r.readUInt16()
            guard let p = PartitionId(Int(raw)) else { throw DecodingError.invalid("partition \(raw)") }
            if kind == snapshotEventKind {
                let inner = try r.readUInt16()
                guard !owns(kind: inner) else { throw DecodingError.invalid("snapshot event of kind \(inner)") }
                return .snapshotEvent(partition: p, kind: inner, payload: Array(try r.readBytes(r.remaining)))
            }
            let value = try r.readVarint()
            if kind == resetKind {
                let floorEpoch = try r.readVarint(), lastIndex = try r.readVarint(), count = try r.readVarint()
                guard count <= UInt64(EpochHistory.maxRuns) else { throw DecodingError.invalid("\(count) epoch runs") }
                var runs: [EpochHistory.Run] = []
                for _ in 0..<count { runs.append(EpochHistory.Run(epoch: try r.readVarint(), start: try r.readVarint())) }
                guard r.isAtEnd, let h = EpochHistory(floor: value, floorEpoch: floorEpoch, runs: runs, lastIndex: lastIndex) else {
                    throw DecodingError.invalid("snapshot history")
                }
                return .reset(partition: p, history: h)
            }
            if kind == replicatedKind {
                let index = try r.readVarint()
                let inner = try r.readUInt16()
                guard value > 0, index > 0, !owns(kind: inner) else { throw DecodingError.invalid("envelope epoch \(value) index \(index) kind \(inner)") }
                record = .replicated(partition: p, epoch: value, index: index, kind: inner, payload: Array(try r.readBytes(r.remaining)))
            } else {
                guard r.isAtEnd else { throw DecodingError.invalid("\(r.remaining) trailing bytes") }
                switch kind {
                case committedKind: record = .committed(partition: p, index: value)
                case truncatedKind: record = .truncated(partition: p, after: value)
                default: record = .promised(partition: p, epoch: value)
                }
            }
        } catch let e as DecodingError {
            throw e
        } catch let e as ByteReaderError {
            throw .malformed(e)
        } catch {
            throw .invalid("\(error)")
        }
        return record
    }
}
