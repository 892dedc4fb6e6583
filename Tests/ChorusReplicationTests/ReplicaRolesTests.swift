import ChorusCluster
import ChorusReplication
import Testing

@Suite struct ReplicaRolesTests {
    struct Instant: InstantProtocol {
        var ms: Int64
        func advanced(by d: Duration) -> Instant { Instant(ms: ms + Int64(d.components.seconds * 1000) + d.components.attoseconds / 1_000_000_000_000_000) }
        func duration(to other: Instant) -> Duration { .milliseconds(other.ms - ms) }
        static func < (a: Instant, b: Instant) -> Bool { a.ms < b.ms }
    }

    static let p = PartitionId(3)!, q = PartitionId(4)!

    static func entry(_ epoch: UInt64, _ leader: String, incarnation: UInt64 = 0) -> PartitionAssignment {
        PartitionAssignment(epoch: epoch, leader: leader, replicas: ["n1", "n2", "n3"], leaderIncarnation: incarnation)
    }

    @Test func entriesNamingTheNodeAtStartAreTakenOverNotLed() {
        var roles = ReplicaRoles<Instant>(selfId: "n1", incarnation: 7)
        let all: Set = ["n1", "n2", "n3"]
        let start = [Self.p: Self.entry(1, "n1"), Self.q: Self.entry(1, "n2")]
        #expect(roles.decide(table: start, alive: all, now: Instant(ms: 0)) == [.takeOver(Self.p, Self.entry(1, "n1"))])
        // The takeover made n1 leader of epoch 2 on its disk: led, once.
        let next = [Self.p: Self.entry(2, "n1", incarnation: 7), Self.q: Self.entry(1, "n2")]
        #expect(roles.decide(table: next, alive: all, now: Instant(ms: 10)) == [.lead(Self.p, Self.entry(2, "n1", incarnation: 7))])
        #expect(roles.decide(table: next, alive: all, now: Instant(ms: 20)) == [])
        #expect(roles.leading == [Self.p: 2])
    }

    @Test func anEntryForAnotherDiskIsTakenOverAgain() {
        var roles = ReplicaRoles<Instant>(selfId: "n1", incarnation: 8)
        _ = roles.decide(table: [:], alive: ["n1"], now: Instant(ms: 0))
        let entry = Self.entry(5, "n1", incarnation: 7)
        #expect(roles.decide(table: [Self.p: entry], alive: ["n1", "n2"], now: Instant(ms: 1)) == [.takeOver(Self.p, entry)])
    }

    @Test func aDeposedLeaderStepsDown() {
        var roles = ReplicaRoles<Instant>(selfId: "n1", incarnation: 7)
        _ = roles.decide(table: [:], alive: ["n1"], now: Instant(ms: 0))
        _ = roles.decide(table: [Self.p: Self.entry(2, "n1", incarnation: 7)], alive: ["n1", "n2", "n3"], now: Instant(ms: 1))
        #expect(roles.decide(table: [Self.p: Self.entry(3, "n2", incarnation: 9)], alive: ["n1", "n2", "n3"], now: Instant(ms: 2)) == [.stepDown(Self.p)])
        #expect(roles.leading.isEmpty)
        _ = roles.decide(table: [Self.p: Self.entry(4, "n1", incarnation: 7)], alive: ["n1", "n2", "n3"], now: Instant(ms: 3))
        #expect(roles.dropAll() == [.stepDown(Self.p)])
        #expect(roles.leading.isEmpty)
    }

    @Test func aDeadLeadersPartitionIsTakenOverByRank() {
        var n2 = ReplicaRoles<Instant>(selfId: "n2", incarnation: 1), n3 = ReplicaRoles<Instant>(selfId: "n3", incarnation: 1)
        let table = [Self.p: Self.entry(2, "n1", incarnation: 5)]
        _ = n2.decide(table: [:], alive: [], now: Instant(ms: 0))
        _ = n3.decide(table: [:], alive: [], now: Instant(ms: 0))
        #expect(n2.decide(table: table, alive: ["n1", "n2", "n3"], now: Instant(ms: 0)) == [])
        // n1's lease lapses: n2 ranks 0 and acts at once, n3 ranks 1 and waits one stagger.
        let alive: Set = ["n2", "n3"]
        #expect(n2.decide(table: table, alive: alive, now: Instant(ms: 100)) == [.takeOver(Self.p, table[Self.p]!)])
        #expect(n3.decide(table: table, alive: alive, now: Instant(ms: 100)) == [])
        #expect(n3.decide(table: table, alive: alive, now: Instant(ms: 599)) == [])
        #expect(n3.decide(table: table, alive: alive, now: Instant(ms: 600)) == [.takeOver(Self.p, table[Self.p]!)])
        // n1 comes back before anyone swapped: nothing to do, and the wait starts over next time.
        #expect(n3.decide(table: table, alive: ["n1", "n2", "n3"], now: Instant(ms: 700)) == [])
        #expect(n3.decide(table: table, alive: alive, now: Instant(ms: 800)) == [])
    }

    @Test func aPartitionLedAwayFromItsPreferredReplicaGoesBackOnceItIsLiveAndTheLeadHasSettled() {
        // n2 leads p (preferred: n1, first in ring order) after a failover.
        var n2 = ReplicaRoles<Instant>(selfId: "n2", incarnation: 9, rebalanceAfter: .seconds(10))
        _ = n2.decide(table: [:], alive: [], now: Instant(ms: 0))
        let led = [Self.p: Self.entry(3, "n2", incarnation: 9)]
        #expect(n2.decide(table: led, alive: ["n2", "n3"], now: Instant(ms: 1_000)) == [.lead(Self.p, led[Self.p]!)])
        // Not before the lead has lasted `rebalanceAfter`, and not while n1 holds no lease.
        #expect(n2.decide(table: led, alive: ["n1", "n2", "n3"], now: Instant(ms: 10_999)) == [])
        #expect(n2.decide(table: led, alive: ["n2", "n3"], now: Instant(ms: 11_000)) == [])
        #expect(n2.decide(table: led, alive: ["n1", "n2", "n3"], now: Instant(ms: 11_000)) == [.handOff(Self.p, to: "n1")])
        // Handed off: the entry still naming n2 in epoch 3 is taken over (a new epoch), not led again.
        n2.handedOff(Self.p, epoch: 3)
        #expect(n2.leading[Self.p] == nil)
        #expect(n2.decide(table: led, alive: ["n1", "n2", "n3"], now: Instant(ms: 11_100)) == [.takeOver(Self.p, led[Self.p]!)])
        // n1 won: n2 follows, with no step-down (it holds no lead).
        #expect(n2.decide(table: [Self.p: Self.entry(4, "n1", incarnation: 5)], alive: ["n1", "n2", "n3"], now: Instant(ms: 11_200)) == [])
        // n2 won instead (n1 was behind): it leads epoch 4, and the wait starts over.
        var again = n2
        let mine = [Self.p: Self.entry(4, "n2", incarnation: 9)]
        #expect(again.decide(table: mine, alive: ["n1", "n2", "n3"], now: Instant(ms: 11_200)) == [.lead(Self.p, mine[Self.p]!)])
        #expect(again.decide(table: mine, alive: ["n1", "n2", "n3"], now: Instant(ms: 21_199)) == [])
        #expect(again.decide(table: mine, alive: ["n1", "n2", "n3"], now: Instant(ms: 21_200)) == [.handOff(Self.p, to: "n1")])
    }

    @Test func thePreferredReplicaAndANodeWithoutRebalancingKeepTheirLead() {
        var n1 = ReplicaRoles<Instant>(selfId: "n1", incarnation: 5, rebalanceAfter: .seconds(1))
        _ = n1.decide(table: [:], alive: [], now: Instant(ms: 0))
        let led = [Self.p: Self.entry(2, "n1", incarnation: 5)]
        _ = n1.decide(table: led, alive: ["n1", "n2", "n3"], now: Instant(ms: 0))
        #expect(n1.decide(table: led, alive: ["n1", "n2", "n3"], now: Instant(ms: 60_000)) == [])
        var n2 = ReplicaRoles<Instant>(selfId: "n2", incarnation: 9)
        _ = n2.decide(table: [:], alive: [], now: Instant(ms: 0))
        let away = [Self.p: Self.entry(3, "n2", incarnation: 9)]
        _ = n2.decide(table: away, alive: ["n1", "n2", "n3"], now: Instant(ms: 0))
        #expect(n2.decide(table: away, alive: ["n1", "n2", "n3"], now: Instant(ms: 600_000)) == [])
    }
}
