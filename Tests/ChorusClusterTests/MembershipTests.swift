import ChorusCluster
import ChorusCore
import Testing

@Suite struct MembershipTests {
    let three = ClusterMembership(epoch: 1, members: ["n1": "127.0.0.1:9001", "n2": "127.0.0.1:9002", "n3": "127.0.0.1:9003"])

    @Test func addingAndRemovingRaiseTheEpochAndRefuseWhatCannotBe() throws {
        let four = try three.adding("n4", at: "127.0.0.1:9004").get()
        #expect(four.epoch == 2 && four.ids == ["n1", "n2", "n3", "n4"])
        #expect(try four.removing("n4").get() == ClusterMembership(epoch: 3, members: three.members))
        #expect(three.adding("n2", at: "x:1") == .failure(.alreadyMember("n2")))
        #expect(three.removing("n9") == .failure(.notMember("n9")))
        #expect(ClusterMembership(epoch: 1, members: ["solo": ""]).removing("solo") == .failure(.lastMember))
        #expect(three.adding("a@b", at: "x:1") == .failure(.invalidId("a@b")))
    }

    @Test func theBinaryFormRoundTripsAndRefusesDamage() throws {
        let bytes = three.bytes
        #expect(try ClusterMembership(bytes: bytes) == three)
        for cut in 0..<bytes.count { #expect(throws: ByteReaderError.self) { try ClusterMembership(bytes: Array(bytes[..<cut])) } }
        #expect(throws: ByteReaderError.self) { try ClusterMembership(bytes: bytes + [0]) }
    }

    @Test func aJoinTakesAboutAQuarterAndOnlyForTheNewcomer() {
        let before = three.ring, after = HashRing(members: ["n1", "n2", "n3", "n4"])
        var moved = 0
        let samples = 20_000
        for i in 0..<samples {
            let point = RingHash.hash("key\(i)") & KeyPoint.mask
            var destinations: [String] = []
            for node in ["n1", "n2", "n3"] {
                if let d = MembershipMove(before: before, after: after, selfId: node).destination(ofPoint: point) { destinations.append(d) }
            }
            #expect(destinations.count <= 1, "one owner hands a point over")
            if let d = destinations.first {
                #expect(d == "n4")
                #expect(MembershipMove(before: before, after: after, selfId: "n4").arrives(point: point))
                moved += 1
            }
        }
        #expect(abs(Double(moved) / Double(samples) - 0.25) < 0.05)
    }

    @Test func aFrozenKeyIsRefusedUntilTheChangeCommitsOrAborts() throws {
        let before = three.ring, after = HashRing(members: ["n1", "n2", "n3", "n4"])
        let cell = PlacementCell(Placement(ring: before, selfId: "n1"))
        // A point n1 owns and keeps, one it hands to n4, one it never owned.
        let points = (0..<5000).map { RingHash.hash("p\($0)") & KeyPoint.mask }
        let kept = points.first { before.owner(ofPoint: $0) == "n1" && after.owner(ofPoint: $0) == "n1" }!
        let leaving = points.first { before.owner(ofPoint: $0) == "n1" && after.owner(ofPoint: $0) == "n4" }!
        let foreign = points.first { before.owner(ofPoint: $0) == "n2" && after.owner(ofPoint: $0) == "n2" }!
        try cell.admit(point: kept)
        cell.begin(.init(next: after, epoch: 2))
        try cell.admit(point: kept)
        #expect(throws: ChatError.self) { try cell.admit(point: leaving) }
        #expect(throws: ChatError.self) { try cell.admit(point: foreign) }
        #expect(cell.isFrozen(point: leaving) && !cell.isFrozen(point: kept) && !cell.isFrozen(point: foreign))
        cell.abort()
        try cell.admit(point: leaving)
        cell.begin(.init(next: after, epoch: 2))
        cell.commit(epoch: 3)  // not the pending one: nothing happens
        #expect(cell.pending?.epoch == 2)
        cell.commit(epoch: 2)
        #expect(cell.pending == nil && cell.ring == after)
        #expect(throws: ChatError.self) { try cell.admit(point: leaving) }
        try cell.admit(point: kept)
    }

    @Test func aJoiningNodeOwnsNothingUntilItCommits() throws {
        let cell = PlacementCell(Placement(ring: three.ring, selfId: "n4"))
        let point = (0..<5000).map { RingHash.hash("p\($0)") & KeyPoint.mask }.first { HashRing(members: ["n1", "n2", "n3", "n4"]).owner(ofPoint: $0) == "n4" }!
        #expect(throws: ChatError.self) { try cell.admit(point: point) }
        #expect(!cell.isSingleNode && cell.peers == ["n1", "n2", "n3"])
        cell.begin(.init(next: HashRing(members: ["n1", "n2", "n3", "n4"]), epoch: 2))
        #expect(cell.isFrozen(point: point))
        cell.commit(epoch: 2)
        try cell.admit(point: point)
    }
}
