import ChorusLoad
import Testing

@Suite struct SendScheduleTests {
    /// Every slot of `indices` in the plan, in time order (the reference the cursor must match).
    func allSlots(_ plan: LoadPlan, _ indices: [Int]) -> [(Int, UInt64, UInt64)] {
        var slots: [(Int, UInt64, UInt64)] = []
        for c in indices {
            var n: UInt64 = 1
            while plan.intendedOffset(connection: c, n: n) < plan.durationNanos {
                slots.append((c, n, plan.intendedOffset(connection: c, n: n)))
                n += 1
            }
        }
        return slots.sorted { ($0.2, $0.0) < ($1.2, $1.0) }
    }

    @Test(arguments: [[0, 1, 2, 3, 4, 5, 6, 7], [1, 3, 6], [7], [6, 2, 5]])
    func cursorYieldsTheLoopsSlotsInTimeOrderAndStopsAtTheEnd(indices: [Int]) {
        // 8 connections at 1,000/s over 20 ms: each connection sends every 8 ms.
        let plan = LoadPlan(connections: 8, rate: 1000, durationNanos: 20_000_000)
        var schedule = SendSchedule(plan: plan, indices: indices)
        var seen: [(Int, UInt64, UInt64)] = []
        while let slot = schedule.next {
            #expect(schedule.indices[slot.position] == slot.connection)
            seen.append((slot.connection, slot.n, slot.offset))
            schedule.advance()
        }
        let expected = allSlots(plan, indices)
        #expect(seen.count == expected.count)
        #expect(zip(seen, expected).allSatisfy { $0 == $1 })
        #expect(seen.map(\.2) == seen.map(\.2).sorted())
    }

    @Test func noConnectionsNoSlots() {
        let schedule = SendSchedule(plan: LoadPlan(connections: 2, rate: 10, durationNanos: 1_000_000_000), indices: [])
        #expect(schedule.next == nil)
    }
}

@Suite struct LoadPlanTests {
    @Test func openLoopSlotsFormOneEvenStream() {
        // 4 connections at 1000/s: one message every 1 ms overall, every 4 ms per connection.
        let plan = LoadPlan(connections: 4, rate: 1000, durationNanos: 10_000_000)
        var offsets: [UInt64] = []
        for c in 0..<4 {
            var n: UInt64 = 1
            while plan.intendedOffset(connection: c, n: n) < plan.durationNanos {
                offsets.append(plan.intendedOffset(connection: c, n: n))
                n += 1
            }
        }
        #expect(offsets.sorted() == (0..<10).map { UInt64($0) * 1_000_000 })
    }

    @Test func peersArePairs() {
        let plan = LoadPlan(connections: 6, rate: 1, durationNanos: 1)
        #expect((0..<6).map(plan.peer(of:)) == [1, 0, 3, 2, 5, 4])
    }

    @Test func warmupSamplesAreLeftOut() {
        let plan = LoadPlan(connections: 2, rate: 10, durationNanos: 5_000_000_000, warmupNanos: 1_000_000_000)
        #expect(!plan.counts(intendedOffset: 999_999_999))
        #expect(plan.counts(intendedOffset: 1_000_000_000))
    }
}

@Suite struct ConnectionLedgerTests {
    @Test func acksDeliveriesLossAndDuplicates() {
        var a = ConnectionLedger()
        var b = ConnectionLedger()
        for i in 0..<5 { _ = a.noteSent(intendedOffset: UInt64(i) * 10) }
        #expect(a.noteAck(1) == 0)
        #expect(a.noteAck(2) == 10)
        #expect(a.noteAck(2) == nil)  // a second ack is unexpected, not counted twice
        #expect(a.unexpectedAcks == 1)
        #expect(a.noteAck(4) == 30)
        a.noteRefused(5, code: "rate_limited")
        #expect(a.outstanding.keys.sorted() == [3])
        #expect(a.refused == ["rate_limited": 1])
        #expect(b.noteDelivery(1) == .first)
        #expect(b.noteDelivery(4) == .first)
        #expect(b.noteDelivery(4) == .duplicate)
        #expect(b.noteDelivery(3) == .first)  // arrived after 4: out of order
        #expect(b.duplicates == 1 && b.outOfOrder == 1)
        // Acked 1, 2, 4; received 1, 3, 4: message 2 was lost.
        #expect(ConnectionLedger.lost(sender: a, receiver: b) == 1)
        var report = LoadReport()
        report.add(ledger: a, peer: b)
        #expect(report.sent == 5 && report.acked == 3 && report.unacked == 1 && report.lost == 1)
        #expect(report.delivered == 3 && report.duplicates == 1 && report.outOfOrder == 1)
    }

    @Test func bitSetCountsAcrossWords() {
        var s = BitSet()
        let fresh = [0, 63, 64, 1000].map { s.insert($0) }
        #expect(fresh == [true, true, true, true])
        let again = s.insert(64)
        #expect(!again)
        #expect(s.count == 4 && s.contains(1000) && !s.contains(999))
        var t = BitSet()
        t.insert(63)
        #expect(s.countMissing(from: t) == 3)
        #expect(t.countMissing(from: s) == 0)
    }

    @Test func handshakeAcceptValueMatchesRFC6455Example() {
        #expect(WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }
}
