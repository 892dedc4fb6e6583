import ChorusCluster
import ChorusReplication
import Testing

@Suite struct ReplicationRecordTests {
    static let p = PartitionId(9)!
    static let history = EpochHistory(floor: 0, floorEpoch: 0, runs: [.init(epoch: 1, start: 1), .init(epoch: 3, start: 4)], lastIndex: 6)!
    static let samples: [ReplicationRecord] = [
        .replicated(partition: p, epoch: 3, index: 300, kind: 8, payload: [1, 2, 3]),
        .replicated(partition: PartitionId(63)!, epoch: 1, index: 1, kind: 2, payload: []),
        .committed(partition: p, index: 299),
        .truncated(partition: p, after: 0),
        .promised(partition: p, epoch: 4),
        .reset(partition: p, history: history),
        .reset(partition: p, history: EpochHistory()),
        .snapshotEvent(partition: p, kind: 12, payload: [9, 9]),
    ]

    @Test func everyRecordRoundTrips() throws {
        for r in Self.samples { #expect(try ReplicationRecord.decode(kind: r.kind, payload: r.encode()) == r) }
        // partition u16 9 | epoch 3 | index 300 (varint AC 02) | kind u16 8 | payload
        #expect(Self.samples[0].encode() == [9, 0, 3, 0xAC, 0x02, 8, 0, 1, 2, 3])
        #expect(Self.samples[2].encode() == [9, 0, 0xAB, 0x02])
    }

    @Test func badRecordsAreRefusedNeverTrusted() {
        for r in Self.samples {
            let bytes = r.encode()
            // Every cut that leaves a field short is refused (an envelope's payload may end anywhere).
            for cut in 0..<bytes.count {
                let cutRecord = try? ReplicationRecord.decode(kind: r.kind, payload: Array(bytes[..<cut]))
                if case .replicated = r, cut >= 7 { continue }
                if case .snapshotEvent = r, cut >= 4 { continue }
                #expect(cutRecord == nil, "\(r) cut at \(cut)")
            }
        }
        #expect(throws: ReplicationRecord.DecodingError.notReplication(8)) { try ReplicationRecord.decode(kind: 8, payload: []) }
        #expect(throws: ReplicationRecord.DecodingError.self) { try ReplicationRecord.decode(kind: 0x0101, payload: [64, 0, 1]) }  // partition 64
        #expect(throws: ReplicationRecord.DecodingError.self) { try ReplicationRecord.decode(kind: 0x0101, payload: [1, 0, 1, 0]) }  // trailing
        #expect(throws: ReplicationRecord.DecodingError.self) { try ReplicationRecord.decode(kind: 0x0100, payload: [1, 0, 0, 1, 8, 0]) }  // epoch 0
        #expect(throws: ReplicationRecord.DecodingError.self) { try ReplicationRecord.decode(kind: 0x0100, payload: [1, 0, 1, 1, 0, 1]) }  // nested envelope
        #expect(throws: ReplicationRecord.DecodingError.self) { try ReplicationRecord.decode(kind: 0x0104, payload: [1, 0, 0, 0, 3, 1, 1, 2]) }  // run starts at 2
    }
}

@Suite struct PartitionReplayTests {
    static let p = PartitionId(3)!
    static let q = PartitionId(4)!

    static func event(_ index: UInt64, epoch: UInt64 = 1, partition: PartitionId = p) -> ReplicationRecord {
        .replicated(partition: partition, epoch: epoch, index: index, kind: 8, payload: [UInt8(index)])
    }

    static func applied(_ actions: [PartitionReplay.Action]) -> [UInt8] {
        actions.compactMap { if case .apply(_, let payload, _) = $0 { return payload[0] } else { return nil } }
    }

    @Test func eventsApplyOnceCommittedInIndexOrderPerPartition() throws {
        var r = PartitionReplay()
        var out: [PartitionReplay.Action] = []
        out += try r.replay(Self.event(1), lsn: 10)
        out += try r.replay(Self.event(1, partition: Self.q), lsn: 11)
        out += try r.replay(Self.event(2), lsn: 12)
        #expect(out.isEmpty)
        out += try r.replay(.committed(partition: Self.p, index: 1), lsn: 13)
        #expect(Self.applied(out) == [1])
        #expect(out == [.apply(kind: 8, payload: [1], lsn: 10)])
        out += try r.replay(.committed(partition: Self.p, index: 9), lsn: 14)  // past the end: only what is held
        #expect(Self.applied(out) == [1, 2])
        #expect(r.copies[Self.p]?.committed == 2)
        #expect(r.copies[Self.q]?.pending.map(\.index) == [1])
    }

    @Test func anEpochStartIsCountedButNeverApplied() throws {
        var r = PartitionReplay()
        var out = try r.replay(Self.event(1), lsn: 1)
        out += try r.replay(.replicated(partition: Self.p, epoch: 2, index: 2, kind: ReplicationRecord.epochStartKind, payload: []), lsn: 2)
        out += try r.replay(.committed(partition: Self.p, index: 2), lsn: 3)
        #expect(out == [.apply(kind: 8, payload: [1], lsn: 1)])
        #expect(r.copies[Self.p]?.committed == 2 && r.copies[Self.p]?.history.lastIndex == 2)
    }

    @Test func aTruncationDropsTheUncommittedTailOnly() throws {
        var r = PartitionReplay()
        for i in UInt64(1)...4 { _ = try r.replay(Self.event(i), lsn: i) }
        _ = try r.replay(.committed(partition: Self.p, index: 2), lsn: 5)
        _ = try r.replay(.truncated(partition: Self.p, after: 2), lsn: 6)
        // The new leader's records 3 and 4, in epoch 2.
        _ = try r.replay(Self.event(3, epoch: 2), lsn: 7)
        let out = try r.replay(.committed(partition: Self.p, index: 3), lsn: 8)
        #expect(out == [.apply(kind: 8, payload: [3], lsn: 7)])
        #expect(r.copies[Self.p]?.history.position == LogPosition(lastEpoch: 2, lastIndex: 3))
        // Where each record is: the truncated ones are gone, the new third is at its own LSN.
        #expect((1...4).map { r.copies[Self.p]?.lsn(of: UInt64($0)) } == [1, 2, 7, nil])
        #expect(throws: PartitionReplay.ReplayError.truncatesCommitted(Self.p, after: 1, committed: 3)) {
            try r.replay(.truncated(partition: Self.p, after: 1), lsn: 9)
        }
    }

    @Test func contradictionsStopRecovery() throws {
        var r = PartitionReplay()
        _ = try r.replay(Self.event(1, epoch: 2), lsn: 1)
        #expect(throws: PartitionReplay.ReplayError.gap(Self.p, expected: 2, found: 3)) { try r.replay(Self.event(3, epoch: 2), lsn: 2) }
        #expect(throws: PartitionReplay.ReplayError.epochFalls(Self.p, index: 2, epoch: 1, last: 2)) { try r.replay(Self.event(2, epoch: 1), lsn: 3) }
    }

    @Test func aResetReplacesTheCopyWithTheSnapshot() throws {
        var r = PartitionReplay()
        _ = try r.replay(.promised(partition: Self.p, epoch: 5), lsn: 1)
        _ = try r.replay(.promised(partition: Self.p, epoch: 4), lsn: 2)
        _ = try r.replay(Self.event(1, epoch: 2), lsn: 3)
        let snapshot = EpochHistory(floor: 0, floorEpoch: 0, runs: [.init(epoch: 1, start: 1), .init(epoch: 5, start: 3)], lastIndex: 7)!
        #expect(try r.replay(.reset(partition: Self.p, history: snapshot), lsn: 4) == [.reset(Self.p)])
        #expect(try r.replay(.snapshotEvent(partition: Self.p, kind: 12, payload: [42]), lsn: 5) == [.apply(kind: 12, payload: [42], lsn: 5)])
        #expect(r.copies[Self.p] == PartitionReplay.Copy(history: snapshot, promised: 5, committed: 7, pending: []))
        // The stream goes on after the snapshot's last index.
        #expect(try r.replay(Self.event(8, epoch: 5), lsn: 6) == [])
        #expect(try r.replay(.committed(partition: Self.p, index: 8), lsn: 7) == [.apply(kind: 8, payload: [8], lsn: 6)])
    }
}
