import ChorusCluster
import Testing

/// Placement with replication: owners are the partitions' leaders, and inbox entries are shared
/// only within a partition.
@Suite struct ReplicatedPlacementTests {
    static let ring = HashRing(members: ["n1", "n2", "n3"])
    /// n1 leads the even partitions, n2 the odd ones; n3 leads none.
    static let leaders = (0..<Partitioning.count).map { $0 % 2 == 0 ? "n1" : "n2" }

    @Test func ownersAreThePartitionsLeadersNotTheRingsOwners() {
        let placement = Placement(ring: Self.ring, selfId: "n1", leaders: Self.leaders)
        var differ = 0
        for i in 0..<200 {
            let user = Placement.mintUser(username: "user\(i)")
            let p = Partitioning.partition(ofPoint: KeyPoint.of(id: user))
            #expect(placement.owner(ofUser: user) == Self.leaders[Int(p.rawValue)])
            #expect(placement.isLocal(user: user) == (p.rawValue % 2 == 0))
            if Self.ring.owner(ofPoint: KeyPoint.of(id: user)) != placement.owner(ofUser: user) { differ += 1 }
        }
        #expect(differ > 0)
        #expect(!placement.isSingleNode)
        #expect(!Placement(ring: HashRing(members: ["n1"]), selfId: "n1", leaders: Array(repeating: "n1", count: Partitioning.count)).isSingleNode)
    }

    @Test func inboxesAreSharedOnlyWithinAPartition() {
        let replicated = Placement(ring: Self.ring, selfId: "n1", leaders: Array(repeating: "n1", count: Partitioning.count))
        let plain = Placement(ring: HashRing(members: ["n1"]), selfId: "n1")
        let users = (0..<50).map { Placement.mintUser(username: "user\($0)") }
        let group = plain.mintGroup()
        var shared = 0
        for u in users {
            let same = Partitioning.partition(ofPoint: KeyPoint.of(id: u)) == Partitioning.partition(ofPoint: KeyPoint.of(id: group))
            #expect(replicated.sharesInbox(user: u, with: group) == same)
            #expect(plain.sharesInbox(user: u, with: group))  // one node, no replication: every inbox is here
            if same { shared += 1 }
        }
        #expect(shared < users.count)
    }

    @Test func groupsAreMintedInAPartitionTheMinterLeads() {
        let n2 = Placement(ring: Self.ring, selfId: "n2", leaders: Self.leaders)
        for _ in 0..<100 {
            let id = n2.mintGroup()
            #expect(n2.isLocal(conversation: id))
        }
        // A member that leads nothing still gets an id (whose creation its log then refuses).
        let n3 = Placement(ring: Self.ring, selfId: "n3", leaders: Self.leaders)
        #expect(!n3.isLocal(conversation: n3.mintGroup()))
    }
}
