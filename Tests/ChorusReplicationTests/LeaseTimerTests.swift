import ChorusReplication
import ChorusTestKit
import Testing

@Suite struct LeaseTimerTests {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by d: Duration) -> Instant { Instant(offset: offset + d) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    static func at(_ ms: Int) -> Instant { Instant(offset: .milliseconds(ms)) }

    @Test func theLeaseRunsFromWhenTheKeepAliveWasSent() {
        var lease = LeaseTimer<Instant>(ttl: .seconds(3))
        #expect(lease.holds(at: Self.at(0)) == false)
        // Sent at 1.0 s, answered at 1.4 s: etcd's expiry is at least 4.0 s; less the 0.3 s margin.
        lease.renewed(sentAt: Self.at(1_000))
        #expect(lease.holds(at: Self.at(3_699)))
        #expect(lease.holds(at: Self.at(3_700)) == false)
        // An answer to an older keep-alive, arriving late, never shortens it.
        lease.renewed(sentAt: Self.at(500))
        #expect(lease.holds(at: Self.at(3_699)))
        #expect(lease.nextRenewal(after: Self.at(1_000)) == Self.at(2_000))
        lease.lost()
        #expect(lease.holds(at: Self.at(1_001)) == false)
    }
}
