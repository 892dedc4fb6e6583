import ChorusCluster
import Testing

@Suite struct HashRingTests {
    let nodes = (1...10).map { "node\($0)" }

    @Test func placementIsPinned() {
        // Any change to the hash, the vnode naming or the tie rule moves keys between nodes of a
        // running cluster: these exact owners must not change without a ring version bump.
        let ring = HashRing(members: ["node1", "node2", "node3"])
        let placed = ["u_aaaaaaaaaaaaa", "u_bbbbbbbbbbbbb", "c_ccccccccccccc", "c_ddddddddddddd", "u_eeeeeeeeeeeee"].map(ring.owner(of:))
        #expect(placed == PinnedPlacement.threeNodes, "\(placed)")
        #expect(RingHash.hash("") == PinnedPlacement.emptyHash)
        #expect(RingHash.hash("node1#0") == PinnedPlacement.node1Vnode0)
    }

    @Test func orderAndDuplicatesOfMembersDoNotMatter() {
        let a = HashRing(members: ["node1", "node2", "node3"])
        let b = HashRing(members: ["node3", "node1", "node2", "node1"])
        #expect(a == b && a.signature == b.signature)
        #expect(HashRing(members: ["node1", "node2"]).signature != a.signature)
        #expect(HashRing(members: ["node1", "node2", "node3"], vnodesPerMember: 128).signature != a.signature)
    }

    @Test func tenNodesAreBalancedWithinFifteenPercent() {
        let ring = HashRing(members: nodes)
        let shares = ring.shares
        #expect(abs(shares.values.reduce(0, +) - 1) < 1e-9)
        let most = shares.values.max()!
        #expect(most <= 1.15 / 10, "most loaded node holds \(most * 10) x the average")
        // And real keys follow the shares.
        var counts: [String: Int] = [:]
        for i in 0..<100_000 { counts[ring.owner(of: "u_\(i)"), default: 0] += 1 }
        #expect(Double(counts.values.max()!) <= 1.15 * 10_000)
    }

    @Test func aJoiningNodeTakesAboutOneNthAndOnlyFromOthers() {
        let before = HashRing(members: Array(nodes.prefix(3)))
        let after = HashRing(members: Array(nodes.prefix(4)))
        var moved = 0
        let keys = (0..<40_000).map { "c_\($0)" }
        for k in keys {
            let (a, b) = (before.owner(of: k), after.owner(of: k))
            if a != b {
                moved += 1
                #expect(b == "node4", "a key moved between two old nodes")
            }
        }
        let fraction = Double(moved) / Double(keys.count)
        #expect(fraction > 0.20 && fraction < 0.30, "moved \(fraction)")
        // Retiring it again moves exactly those keys back.
        let again = HashRing(members: Array(nodes.prefix(3)))
        #expect(keys.allSatisfy { again.owner(of: $0) == before.owner(of: $0) })
    }

    @Test func aSingleNodeOwnsEverything() {
        let ring = HashRing(members: ["solo"])
        #expect((0..<1000).allSatisfy { ring.owner(of: "k\($0)") == "solo" })
    }
}

@Suite struct FailureDetectorTests {
    @Test func silentPeersGoSuspectThenDeadAndComeBackWhenHeard() {
        var d = FailureDetector(peers: ["b", "c"], now: 0, suspectAfterMs: 100, deadAfterMs: 300)
        #expect(d.status(of: "b") == .suspect)
        #expect(d.heard(from: "b", now: 10) == .init(peer: "b", from: .suspect, to: .alive))
        #expect(d.heard(from: "b", now: 20) == nil)
        #expect(d.heard(from: "zed", now: 20) == nil, "unknown peers are ignored")
        #expect(d.tick(now: 119) == [])
        #expect(d.tick(now: 120) == [.init(peer: "b", from: .alive, to: .suspect)])
        #expect(d.tick(now: 300) == [.init(peer: "c", from: .suspect, to: .dead)])
        #expect(d.tick(now: 320) == [.init(peer: "b", from: .suspect, to: .dead)])
        #expect(d.tick(now: 10_000) == [])
        #expect(d.heard(from: "c", now: 10_001) == .init(peer: "c", from: .dead, to: .alive))
        #expect(d.all.map(\.status) == [.dead, .alive])
    }

    @Test func anOldHeartbeatDoesNotRewindTime() {
        var d = FailureDetector(peers: ["b"], now: 0, suspectAfterMs: 100, deadAfterMs: 300)
        _ = d.heard(from: "b", now: 200)
        _ = d.heard(from: "b", now: 50)  // delivered late
        #expect(d.tick(now: 299) == [])
    }
}
