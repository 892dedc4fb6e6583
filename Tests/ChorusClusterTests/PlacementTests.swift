import ChorusCluster
import Testing

@Suite struct PlacementTests {
    let ring = HashRing(members: ["n1", "n2", "n3"])

    @Test func aUserIdCarriesItsUsernamesPointUnderEveryRing() {
        let rings = [ring, HashRing(members: ["n1", "n2", "n3", "n4"]), HashRing(members: ["n1", "n3"])]
        for i in 0..<200 {
            let name = "user\(i)"
            let id = Placement.mintUser(username: name)
            #expect(id.utf8.count == 15 && id.hasPrefix("u_"))
            #expect(KeyPoint.of(id: id) == KeyPoint.of(username: name))
            for r in rings {
                let p = Placement(ring: r, selfId: r.members[0])
                #expect(p.owner(ofUser: id) == p.owner(ofUsername: name))
            }
        }
    }

    @Test func aDirectConversationLivesWithItsPairUnderEveryRing() {
        let rings = [ring, HashRing(members: ["n1", "n2", "n3", "n4"])]
        for i in 0..<100 {
            let id = Placement.mintDirect("u_a\(i)", "u_b\(i)")
            for r in rings {
                let p = Placement(ring: r, selfId: "n1")
                #expect(p.owner(ofConversation: id) == p.owner(ofPair: "u_b\(i)", "u_a\(i)"))
                #expect(p.owner(ofPair: "u_a\(i)", "u_b\(i)") == p.owner(ofPair: "u_b\(i)", "u_a\(i)"))
            }
        }
    }

    @Test func groupsAreMintedOnTheMinter() {
        for node in ring.members {
            let p = Placement(ring: ring, selfId: node)
            for _ in 0..<50 {
                let id = p.mintGroup()
                #expect(id.utf8.count == 15 && id.hasPrefix("c_"))
                #expect(p.owner(ofConversation: id) == node && p.isLocal(conversation: id))
            }
        }
    }

    @Test func pointsArePinned() {
        // The point an id carries is its 8 base32 characters after the underscore, as the top 40 bits.
        #expect(KeyPoint.of(id: "u_aaaaaaabzzzzz") == 1 << 24)
        #expect(KeyPoint.of(id: "c_77777777aaaaa") == KeyPoint.mask)
        // Any other string sits at its truncated hash (pinned against ring.py's `point`).
        #expect(KeyPoint.of(id: "not-minted") == RingHash.hash("not-minted") & KeyPoint.mask)
        #expect(KeyPoint.of(id: "u_aaaaaaa1zzzzz") == RingHash.hash("u_aaaaaaa1zzzzz") & KeyPoint.mask)
        #expect(KeyPoint.of(username: "alice") == 0xA0B5_FB23_7700_0000)
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
        #expect(p.isLocal(conversation: p.mintGroup()))
    }
}
