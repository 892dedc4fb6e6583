import ChorusCluster
import ChorusCore
import ChorusReplication

// Layouts (integers little-endian, counts varint):
//   fence   35 | partition u16 | epoch u64
//   append  36 | partition u16 | epoch u64 | prevIndex u64 | prevEpoch u64 | commitIndex u64 |
//              leaderLastIndex u64 | count | (entry epoch u64 | record kind u16 | payload)*
//   fenced  tag 12 | 0 promised (lastEpoch u64, lastIndex u64, incarnation u64) / 1 rebuilding / 2 stale (promised u64) / 3 leading
//   replica tag 13 | 0 accepted (epoch u64, lastIndex u64) / 1 mismatch (epoch u64, history) / 2 stale (promised u64)
//   history floor u64 | floorEpoch u64 | lastIndex u64 | count | (epoch u64 | start u64)*
extension PeerCodec {
    static func write(_ request: ReplicationRequest, to w: inout ByteWriter) {
        switch request {
        case .fence(let p, let epoch):
            w.write(PeerKind.replicaFence.rawValue); w.write(p.rawValue); w.write(epoch)
        case .append(let p, let a, let records):
            w.write(PeerKind.replicaAppend.rawValue); w.write(p.rawValue)
            w.write(a.epoch); w.write(a.prevIndex); w.write(a.prevEpoch); w.write(a.commitIndex); w.write(a.leaderLastIndex)
            w.writeVarint(UInt64(records.count))
            for (epoch, record) in zip(a.entryEpochs, records) {
                w.write(epoch); w.write(record.kind); w.writeLengthPrefixed(record.payload)
            }
        }
    }

    static func readPartition(_ r: inout PeerReader) throws(PeerDecodingError) -> PartitionId {
        let raw = try r.u16()
        guard let p = PartitionId(Int(raw)) else { throw .invalid("partition \(raw)") }
        return p
    }

    /// An append a real leader could have sent (`AppendRequest.isWellFormed`); anything else is
    /// refused here, and again by the follower's rules.
    static func readAppend(_ r: inout PeerReader) throws(PeerDecodingError) -> ReplicationRequest {
        let p = try readPartition(&r)
        let epoch = try r.u64(), prevIndex = try r.u64(), prevEpoch = try r.u64(), commit = try r.u64(), last = try r.u64()
        var epochs: [UInt64] = []
        let records = try r.list(PeerBounds.replicatedRecords) { (r: inout PeerReader) throws(PeerDecodingError) in
            epochs.append(try r.u64())
            return ReplicatedRecord(kind: try r.u16(), payload: try r.bytes(PeerBounds.record))
        }
        let append = AppendRequest(
            epoch: epoch, prevIndex: prevIndex, prevEpoch: prevEpoch, entryEpochs: epochs, commitIndex: commit, leaderLastIndex: last)
        guard append.isWellFormed else { throw .invalid("append no leader sends (epoch \(epoch), after \(prevIndex) of epoch \(prevEpoch))") }
        return .append(partition: p, append, records: records)
    }

    static func write(_ answer: ReplicaFollower.FenceAnswer, to w: inout ByteWriter) {
        w.write(PeerReplyTag.fenced.rawValue)
        switch answer {
        case .promised(let position, let incarnation):
            w.write(UInt8(0)); w.write(position.lastEpoch); w.write(position.lastIndex); w.write(incarnation)
        case .rebuilding: w.write(UInt8(1))
        case .stale(let promised): w.write(UInt8(2)); w.write(promised)
        case .leading: w.write(UInt8(3))
        }
    }

    static func readFenceAnswer(_ r: inout PeerReader) throws(PeerDecodingError) -> ReplicaFollower.FenceAnswer {
        switch try r.u8() {
        case 0: return .promised(LogPosition(lastEpoch: try r.u64(), lastIndex: try r.u64()), incarnation: try r.u64())
        case 1: return .rebuilding
        case 2: return .stale(promised: try r.u64())
        case 3: return .leading
        case let other: throw .invalid("fence answer \(other)")
        }
    }

    static func write(_ reply: ReplicaReply, to w: inout ByteWriter) {
        w.write(PeerReplyTag.replica.rawValue)
        switch reply {
        case .accepted(let epoch, let lastIndex): w.write(UInt8(0)); w.write(epoch); w.write(lastIndex)
        case .mismatch(let epoch, let h):
            w.write(UInt8(1)); w.write(epoch)
            w.write(h.floor); w.write(h.floorEpoch); w.write(h.lastIndex)
            w.writeVarint(UInt64(h.runs.count))
            for run in h.runs { w.write(run.epoch); w.write(run.start) }
        case .stale(let promised): w.write(UInt8(2)); w.write(promised)
        }
    }

    static func readReplicaReply(_ r: inout PeerReader) throws(PeerDecodingError) -> ReplicaReply {
        switch try r.u8() {
        case 0: return .accepted(epoch: try r.u64(), lastIndex: try r.u64())
        case 1:
            let epoch = try r.u64()
            let floor = try r.u64(), floorEpoch = try r.u64(), lastIndex = try r.u64()
            let runs = try r.list(PeerBounds.epochRuns) { (r: inout PeerReader) throws(PeerDecodingError) in
                EpochHistory.Run(epoch: try r.u64(), start: try r.u64())
            }
            guard let h = EpochHistory(floor: floor, floorEpoch: floorEpoch, runs: runs, lastIndex: lastIndex) else {
                throw .invalid("epoch history")
            }
            return .mismatch(epoch: epoch, history: h)
        case 2: return .stale(promised: try r.u64())
        case let other: throw .invalid("replica reply \(other)")
        }
    }
}
