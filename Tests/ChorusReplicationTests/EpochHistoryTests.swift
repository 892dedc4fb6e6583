import ChorusReplication
import Testing

@Suite struct EpochHistoryTests {
    static func history(_ runs: [(UInt64, UInt64)], last: UInt64) -> EpochHistory {
        EpochHistory(floor: 0, floorEpoch: 0, runs: runs.map { .init(epoch: $0.0, start: $0.1) }, lastIndex: last)!
    }

    @Test func epochsOfEntries() {
        let h = Self.history([(1, 1), (3, 4), (4, 9)], last: 10)
        #expect(h.epoch(at: 0) == nil)
        #expect(h.epoch(at: 1) == 1)
        #expect(h.epoch(at: 3) == 1)
        #expect(h.epoch(at: 4) == 3)
        #expect(h.epoch(at: 8) == 3)
        #expect(h.epoch(at: 10) == 4)
        #expect(h.epoch(at: 11) == nil)
        #expect(h.position == LogPosition(lastEpoch: 4, lastIndex: 10))
    }

    @Test func appendAndTruncate() {
        var h = EpochHistory()
        h.append(epoch: 1, count: 3)
        h.append(epoch: 1, count: 2)
        h.append(epoch: 2, count: 1)
        #expect(h.runs == [.init(epoch: 1, start: 1), .init(epoch: 2, start: 6)])
        h.truncate(after: 4)
        #expect(h.runs == [.init(epoch: 1, start: 1)])
        #expect(h.lastIndex == 4)
        h.truncate(after: 0)
        #expect(h == EpochHistory())
    }

    @Test func commonPrefixIsWhereCopiesPart() {
        // A deposed leader wrote 6-8 in epoch 2; the new leader wrote 6-9 in epoch 3.
        let old = Self.history([(1, 1), (2, 6)], last: 8)
        let new = Self.history([(1, 1), (3, 6)], last: 9)
        #expect(old.commonPrefix(with: new) == 5)
        #expect(new.commonPrefix(with: old) == 5)
        // A follower that is only behind agrees on all it has.
        #expect(Self.history([(1, 1), (3, 6)], last: 7).commonPrefix(with: new) == 7)
        // Nothing in common but the empty prefix.
        #expect(Self.history([(2, 1)], last: 3).commonPrefix(with: Self.history([(1, 1)], last: 3)) == 0)
        #expect(EpochHistory().commonPrefix(with: new) == 0)
        // Same epochs, different lengths in the middle run: the shorter run's end.
        let a = Self.history([(1, 1), (2, 4), (5, 7)], last: 9)
        let b = Self.history([(1, 1), (2, 4), (4, 9)], last: 12)
        #expect(a.commonPrefix(with: b) == 6)
    }

    @Test func runsAreBounded() {
        var h = EpochHistory()
        for e in 1...UInt64(EpochHistory.maxRuns + 10) { h.append(epoch: e, count: 2) }
        #expect(h.runs.count == EpochHistory.maxRuns)
        #expect(h.floor == 20)
        #expect(h.floorEpoch == 10)
        #expect(h.epoch(at: 20) == nil)
        #expect(h.epoch(at: 21) == 11)
        // Entries at or below the floor count as held by any copy that reaches them.
        #expect(h.holds(index: 5, epoch: 99))
        var other = EpochHistory()
        other.append(epoch: 1, count: 30)
        #expect(h.commonPrefix(with: other) == 20)
    }

    @Test func peerHistoriesAreValidated() {
        let run = { (e: UInt64, s: UInt64) in EpochHistory.Run(epoch: e, start: s) }
        #expect(EpochHistory(floor: 0, floorEpoch: 0, runs: [], lastIndex: 0) == EpochHistory())
        #expect(EpochHistory(floor: 0, floorEpoch: 0, runs: [], lastIndex: 3) == nil)
        #expect(EpochHistory(floor: 0, floorEpoch: 0, runs: [run(1, 2)], lastIndex: 3) == nil)
        #expect(EpochHistory(floor: 0, floorEpoch: 0, runs: [run(2, 1), run(1, 3)], lastIndex: 3) == nil)
        #expect(EpochHistory(floor: 0, floorEpoch: 0, runs: [run(1, 1), run(2, 1)], lastIndex: 3) == nil)
        #expect(EpochHistory(floor: 0, floorEpoch: 0, runs: [run(1, 1), run(2, 5)], lastIndex: 3) == nil)
        #expect(EpochHistory(floor: 4, floorEpoch: 0, runs: [], lastIndex: 4) == nil)
        #expect(EpochHistory(floor: 4, floorEpoch: 2, runs: [run(1, 5)], lastIndex: 6) == nil)
        #expect(EpochHistory(floor: 4, floorEpoch: 2, runs: [run(3, 5)], lastIndex: 6)?.epoch(at: 6) == 3)
        // A floor at the top of the index space (a peer's reply can claim one): refused, not an
        // overflow.
        #expect(EpochHistory(floor: .max, floorEpoch: 1, runs: [run(1, 0)], lastIndex: .max) == nil)
        let tooMany = (1...UInt64(EpochHistory.maxRuns + 1)).map { run($0, $0) }
        #expect(EpochHistory(floor: 0, floorEpoch: 0, runs: tooMany, lastIndex: UInt64(tooMany.count)) == nil)
    }
}
