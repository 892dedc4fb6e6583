import ChorusCluster
import ChorusReplication
import ChorusTestKit
import Testing

@Suite struct ReconfigurationTests {
    static func entry(_ epoch: UInt64, _ leader: String, _ replicas: [String]) -> PartitionAssignment {
        PartitionAssignment(epoch: epoch, leader: leader, replicas: replicas, leaderIncarnation: 9)
    }

    @Test func nothingIsDueWhenTheReplicasAreTheTarget() {
        #expect(Reconfiguration.next(Self.entry(4, "n1", ["n1", "n2", "n3"]), target: ["n1", "n2", "n3"], alive: ["n1", "n2", "n3"], caughtUp: []) == nil)
    }

    @Test func aJoinWidensFirstWithTheTargetInRingOrderAhead() {
        // n4 joined and takes n3's place: n3 stays (last) until n4 holds everything.
        let a = Self.entry(4, "n1", ["n1", "n2", "n3"])
        let step = Reconfiguration.next(a, target: ["n4", "n1", "n2"], alive: ["n1", "n2", "n3", "n4"], caughtUp: ["n2", "n3"])
        #expect(step == .widen(Self.entry(5, "n1", ["n4", "n1", "n2", "n3"])), "the next epoch, the same leader on the same disk")
        // A target node without a lease is not added yet.
        #expect(Reconfiguration.next(a, target: ["n4", "n1", "n2"], alive: ["n1", "n2", "n3"], caughtUp: ["n2", "n3"]) == nil)
    }

    @Test func narrowingWaitsUntilEveryTargetNodeHoldsAllTheLeaderHas() {
        let wide = Self.entry(5, "n1", ["n4", "n1", "n2", "n3"])
        let target = ["n4", "n1", "n2"]
        let alive: Set = ["n1", "n2", "n3", "n4"]
        #expect(Reconfiguration.next(wide, target: target, alive: alive, caughtUp: ["n2", "n3"]) == nil, "n4 is still catching up")
        #expect(Reconfiguration.next(wide, target: target, alive: alive, caughtUp: ["n4", "n3"]) == nil, "n2 fell behind")
        #expect(Reconfiguration.next(wide, target: target, alive: alive, caughtUp: ["n4", "n2"]) == .narrow(Self.entry(6, "n1", target)))
    }

    @Test func aLeaderTheTargetDropsHandsThePartitionToACaughtUpTargetNodeFirst() {
        // n1 retires: it leads, so it gives the partition away before anyone narrows it out.
        let wide = Self.entry(5, "n1", ["n2", "n3", "n4", "n1"])
        let target = ["n2", "n3", "n4"]
        #expect(Reconfiguration.next(wide, target: target, alive: ["n1", "n2", "n3", "n4"], caughtUp: ["n3"]) == .handOff(to: "n3"))
        #expect(Reconfiguration.next(wide, target: target, alive: ["n1", "n2", "n3", "n4"], caughtUp: []) == nil)
        // The new leader narrows once the rest hold everything.
        let handed = Self.entry(6, "n3", ["n2", "n3", "n4", "n1"])
        #expect(Reconfiguration.next(handed, target: target, alive: ["n1", "n2", "n3", "n4"], caughtUp: ["n2", "n4"]) == .narrow(Self.entry(7, "n3", target)))
    }

    @Test func theSameNodesInAnotherOrderAreReordered() {
        let a = Self.entry(2, "n2", ["n2", "n1", "n3"])
        #expect(Reconfiguration.next(a, target: ["n1", "n2", "n3"], alive: ["n1", "n2", "n3"], caughtUp: ["n1", "n3"]) == .narrow(Self.entry(3, "n2", ["n1", "n2", "n3"])))
    }

    /// Random clusters and changes: carrying out each step (a widened node catches up at some later
    /// call, a hand-off moves the lead) reaches the target in a few steps, never narrows away a copy
    /// that is the only one holding everything, and never leaves fewer replicas than the target has.
    @Test(arguments: 0..<200) func randomChangesReachTheTargetSafely(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed))
        let nodes = (1...7).map { "n\($0)" }
        let factor = Int(rng.next() % 3) + 1
        var replicas = Array(nodes.shuffled(using: &rng).prefix(factor))
        let target = Array(nodes.shuffled(using: &rng).prefix(factor))
        var a = PartitionAssignment(epoch: 1, leader: replicas[Int(rng.next() % UInt64(factor))], replicas: replicas, leaderIncarnation: 3)
        // Copies that hold all the leader has (the leader itself, always).
        var complete = Set(replicas)
        let alive = Set(nodes)
        var steps = 0
        while a.replicas != target {
            steps += 1
            #expect(steps <= 40, "seed \(seed): no progress from \(a) to \(target)")
            if steps > 40 { return }
            // A lagging copy catches up now and then.
            if rng.next() % 2 == 0, let lagging = a.replicas.first(where: { !complete.contains($0) }) { complete.insert(lagging) }
            let caughtUp = complete.subtracting([a.leader])
            switch Reconfiguration.next(a, target: target, alive: alive, caughtUp: caughtUp) {
            case .widen(let next)?:
                #expect(Set(next.replicas).isSuperset(of: a.replicas) && next.leader == a.leader && next.epoch == a.epoch + 1)
                a = next
            case .narrow(let next)?:
                #expect(next.replicas == target && next.leader == a.leader && next.epoch == a.epoch + 1)
                #expect(next.replicas.allSatisfy(complete.contains), "seed \(seed): narrowed to a copy that lacks records")
                a = next
            case .handOff(let to)?:
                #expect(target.contains(to) && complete.contains(to) && to != a.leader)
                a = PartitionAssignment(epoch: a.epoch + 1, leader: to, replicas: a.replicas, leaderIncarnation: 4)
            case nil:
                #expect(a.replicas.contains { !complete.contains($0) }, "seed \(seed): stuck at \(a) with every copy complete")
            }
            replicas = a.replicas
            #expect(replicas.contains(a.leader) && replicas.count >= target.count)
        }
    }
}
