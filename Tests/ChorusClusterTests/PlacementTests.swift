import ChorusCluster
import Testing

@Suite struct PlacementTests {
    let ring = HashRing(members: ["n1", "n2", "n3"])

    @Test func mintedIdsAreOwnedByTheMinter() {
        for node in ring.members {
            let p = Placement(ring: ring, selfId: node)
            var counter = 0
            for _ in 0..<50 {
                let id = p.mintLocal {
                    counter += 1
                    return "u_\(node)\(counter)"
                }
                #expect(p.owner(ofUser: id) == node)
                #expect(p.isLocal(user: id))
            }
        }
    }

    @Test func aPairHasOneOwnerWhicheverSideAsks() {
        let p = Placement(ring: ring, selfId: "n1")
        for i in 0..<100 {
            #expect(p.owner(ofPair: "u_a\(i)", "u_b\(i)") == p.owner(ofPair: "u_b\(i)", "u_a\(i)"))
        }
    }

    @Test func usernamesAndUsersSpreadOverEveryNode() {
        let p = Placement(ring: ring, selfId: "n2")
        let owners = Set((0..<300).map { p.owner(ofUsername: "user\($0)") })
        #expect(owners == Set(ring.members))
        #expect(p.peers == ["n1", "n3"])
    }

    @Test func tokensNameTheirUser() {
        #expect(Placement.userId(fromToken: "u_abc.secret") == "u_abc")
        #expect(Placement.userId(fromToken: "noDotHere") == nil)
        #expect(Placement.userId(fromToken: ".secret") == nil)
    }

    @Test func aSingleNodeOwnsEverything() {
        let p = Placement.single("solo")
        #expect(p.isSingleNode && p.isLocal(user: "u_x") && p.isLocal(conversation: "c_y"))
        #expect(p.mintLocal { "u_first" } == "u_first")
    }
}
