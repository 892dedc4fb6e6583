import ChorusCluster
import ChorusReplication
import Testing

/// The follower's, leader's and promotion rules with plain values.
@Suite struct ReplicaRulesTests {
    static func history(_ epochs: [UInt64]) -> EpochHistory {
        var h = EpochHistory()
        for e in epochs { h.append(epoch: e, count: 1) }
        return h
    }

    @Test func aFollowerTakesInOrderAppendsAndPromisesTheirEpoch() {
        var f = ReplicaFollower(promised: 1, history: Self.history([1, 1]))
        let d = f.receive(AppendRequest(epoch: 2, prevIndex: 2, prevEpoch: 1, entryEpochs: [2, 2], commitIndex: 2))
        #expect(d.promise == 2)
        #expect(d.truncateAfter == nil)
        #expect(d.write == 3...4)
        #expect(d.firstNew == 0)
        #expect(d.reply == .accepted(epoch: 2, lastIndex: 4))
        #expect(f.history.position == LogPosition(lastEpoch: 2, lastIndex: 4))
        // Not durable yet: the reply waits; once synced it may go.
        #expect(f.confirm(epoch: 2, lastIndex: 4) == .wait)
        _ = f.markDurable(through: 4)
        #expect(f.confirm(epoch: 2, lastIndex: 4) == .send)
    }

    @Test func aFollowerRefusesAnOlderEpoch() {
        var f = ReplicaFollower(promised: 3, history: Self.history([1]))
        let d = f.receive(AppendRequest(epoch: 2, prevIndex: 1, prevEpoch: 1, entryEpochs: [2], commitIndex: 0))
        #expect(d.reply == .stale(promised: 3))
        #expect(d.write == nil)
        #expect(f.history.lastIndex == 1)
    }

    @Test func aGapOrADifferentPreviousEntryIsAMismatch() {
        var f = ReplicaFollower(promised: 1, history: Self.history([1, 1]))
        let gap = f.receive(AppendRequest(epoch: 1, prevIndex: 5, prevEpoch: 1, entryEpochs: [1], commitIndex: 0))
        #expect(gap.reply == .mismatch(epoch: 1, history: Self.history([1, 1])))
        let other = f.receive(AppendRequest(epoch: 3, prevIndex: 2, prevEpoch: 3, entryEpochs: [3], commitIndex: 0))
        #expect(other.reply == .mismatch(epoch: 3, history: Self.history([1, 1])))
        #expect(other.promise == 3)
    }

    @Test func aConflictingSuffixIsTruncatedAndAMatchingOneKept() {
        // Entries 3-4 came from a deposed leader of epoch 2; the leader of epoch 3 has 3 in epoch 3.
        var f = ReplicaFollower(promised: 2, history: Self.history([1, 1, 2, 2]))
        let d = f.receive(AppendRequest(epoch: 3, prevIndex: 2, prevEpoch: 1, entryEpochs: [3], commitIndex: 2))
        #expect(d.truncateAfter == 2)
        #expect(d.write == 3...3)
        #expect(f.history == Self.history([1, 1, 3]))
        // A late duplicate of an older batch of the same epoch must not cut newer entries.
        var g = ReplicaFollower(promised: 3, history: Self.history([1, 1, 3, 3]))
        let dup = g.receive(AppendRequest(epoch: 3, prevIndex: 1, prevEpoch: 1, entryEpochs: [1, 3], commitIndex: 0))
        #expect(dup.truncateAfter == nil)
        #expect(dup.write == nil)
        #expect(g.history.lastIndex == 4)
        #expect(dup.reply == .accepted(epoch: 3, lastIndex: 3))
    }

    @Test func entriesOfADeadEpochPastTheLeadersEndAreDropped() {
        // The deposed leader of epoch 2 wrote 3-4; the leader of epoch 3 ends at 2.
        var f = ReplicaFollower(promised: 2, history: Self.history([1, 1, 2, 2]))
        let d = f.receive(AppendRequest(epoch: 3, prevIndex: 2, prevEpoch: 1, entryEpochs: [], commitIndex: 2, leaderLastIndex: 2))
        #expect(d.truncateAfter == 2)
        #expect(f.history == Self.history([1, 1]))
        // Entries of the leader's own epoch past an older message's end are kept (it was sent earlier).
        var g = ReplicaFollower(promised: 3, history: Self.history([1, 3, 3]))
        let late = g.receive(AppendRequest(epoch: 3, prevIndex: 1, prevEpoch: 1, entryEpochs: [], commitIndex: 0, leaderLastIndex: 1))
        #expect(late.truncateAfter == nil)
        #expect(g.history.lastIndex == 3)
    }

    @Test func appendsNoLeaderSendsChangeNothing() {
        // Below the floor a copy cannot check epochs; entries older than the floor's are refused.
        let floored = EpochHistory(floor: 100, floorEpoch: 7, runs: [], lastIndex: 100)!
        var f = ReplicaFollower(promised: 7, history: floored)
        let old = f.receive(AppendRequest(epoch: 8, prevIndex: 50, prevEpoch: 3, entryEpochs: Array(repeating: 3, count: 60), commitIndex: 0))
        #expect(old.reply == .mismatch(epoch: 8, history: floored))
        #expect(f.history == floored)
        let falling = f.receive(AppendRequest(epoch: 8, prevIndex: 100, prevEpoch: 7, entryEpochs: [8, 7], commitIndex: 0))
        #expect(falling.write == nil && falling.promise == nil)
        #expect(f.history == floored)
    }

    @Test func aHeldReplyIsDroppedOnceANewerEpochIsPromised() {
        var f = ReplicaFollower(promised: 2, history: Self.history([1]))
        _ = f.receive(AppendRequest(epoch: 2, prevIndex: 1, prevEpoch: 1, entryEpochs: [2, 2], commitIndex: 0))
        #expect(f.confirm(epoch: 2, lastIndex: 3) == .wait)
        _ = f.receive(AppendRequest(epoch: 3, prevIndex: 1, prevEpoch: 1, entryEpochs: [3], commitIndex: 0))
        _ = f.markDurable(through: 3)
        #expect(f.confirm(epoch: 2, lastIndex: 3) == .drop)
    }

    @Test func aFenceAnswersTheDurablePositionAndBlocksTheOldEpoch() {
        var f = ReplicaFollower(promised: 1, history: Self.history([1, 1, 1]), durable: 2)
        let firstFence = f.fence(epoch: 2)
        #expect(firstFence == .promised(LogPosition(lastEpoch: 1, lastIndex: 2), incarnation: 0))
        let olderFence = f.fence(epoch: 1)
        #expect(olderFence == .stale(promised: 2))
        let late = f.receive(AppendRequest(epoch: 1, prevIndex: 3, prevEpoch: 1, entryEpochs: [1], commitIndex: 3))
        #expect(late.reply == .stale(promised: 2))
    }

    @Test func aRebuildingCopyIsNotCountedUntilItCatchesUp() {
        var f = ReplicaFollower(promised: 4, history: EpochHistory(), inSync: false)
        let whileRebuilding = f.fence(epoch: 5)
        #expect(whileRebuilding == .rebuilding)
        // The leader's commit index (1) lags what it holds (3): the copy must reach 3.
        _ = f.receive(AppendRequest(epoch: 5, prevIndex: 0, prevEpoch: 0, entryEpochs: [4, 5], commitIndex: 1, leaderLastIndex: 3))
        let short = f.markDurable(through: 2)
        #expect(short == false)
        _ = f.receive(AppendRequest(epoch: 5, prevIndex: 2, prevEpoch: 5, entryEpochs: [5], commitIndex: 1, leaderLastIndex: 3))
        let caughtUp = f.markDurable(through: 3)
        #expect(caughtUp)
        #expect(f.inSync)
        let afterSync = f.fence(epoch: 6)
        #expect(afterSync == .promised(LogPosition(lastEpoch: 5, lastIndex: 3), incarnation: 0))
    }

    @Test func aRebuildingCopyOfAnEmptyPartitionIsWholeAtTheFirstHeartbeat() {
        var f = ReplicaFollower(promised: 4, history: EpochHistory(), inSync: false)
        let d = f.receive(AppendRequest(epoch: 4, prevIndex: 0, prevEpoch: 0, entryEpochs: [], commitIndex: 0, leaderLastIndex: 0))
        #expect(d.reply == .accepted(epoch: 4, lastIndex: 0) && d.write == nil)
        #expect(f.inSync)
        #expect(f.fence(epoch: 5) == .promised(LogPosition(lastEpoch: 0, lastIndex: 0), incarnation: 0))
    }

    @Test func aSnapshotReplacesTheCopy() {
        var f = ReplicaFollower(promised: 1, history: Self.history([1, 1]), inSync: false)
        let leader = Self.history([1, 2, 2, 2])
        let (promise, reply) = f.install(snapshot: leader, epoch: 2, commitIndex: 3)
        #expect(promise == 2)
        #expect(reply == .accepted(epoch: 2, lastIndex: 4))
        #expect(f.history == leader)
        #expect(f.inSync)
        var old = ReplicaFollower(promised: 5, history: EpochHistory())
        let refused = old.install(snapshot: leader, epoch: 2, commitIndex: 3)
        #expect(refused.reply == .stale(promised: 5))
        #expect(old.history == EpochHistory())
    }

    @Test func theLeaderCommitsOnWCopiesOfItsOwnEpoch() {
        var l = ReplicaLeader(epoch: 2, history: Self.history([1, 1]), followers: ["b", "c"], ackReplicas: 2)
        let indexes = l.append(count: 2)
        #expect(indexes == 3...4)
        #expect(l.markDurable(through: 4) == nil)  // one copy
        // b holds only the old-epoch entries: counting them would commit an entry of epoch 1.
        let oldOnly = l.receive(.accepted(epoch: 2, lastIndex: 2), from: "b")
        #expect(oldOnly.committed == nil)
        let throughThree = l.receive(.accepted(epoch: 2, lastIndex: 3), from: "b")
        #expect(throughThree.committed == 1...3)
        let throughFour = l.receive(.accepted(epoch: 2, lastIndex: 4), from: "c")
        #expect(throughFour.committed == 4...4)
        #expect(l.commitIndex == 4)
        // A reply of another epoch does not count.
        var m = ReplicaLeader(epoch: 3, history: Self.history([1]), followers: ["b"], ackReplicas: 2)
        _ = m.append(count: 1)
        let otherEpoch = m.receive(.accepted(epoch: 2, lastIndex: 2), from: "b")
        #expect(otherEpoch.committed == nil)
        let newer = m.receive(.stale(promised: 4), from: "b")
        #expect(newer.deposed)
    }

    @Test func theLeaderProbesThenStreamsAndFindsWhereAFollowerParts() {
        var l = ReplicaLeader(epoch: 3, history: Self.history([1, 1, 3]), followers: ["b"], ackReplicas: 2)
        // First a probe from the end, one at a time.
        guard case .append(let probe)? = l.next(for: "b", oldestKept: 1, maxEntries: 10) else { Issue.record("no probe"); return }
        #expect(probe.prevIndex == 3 && probe.prevEpoch == 3 && probe.entryEpochs.isEmpty)
        let whileProbing = l.next(for: "b", oldestKept: 1, maxEntries: 10)
        #expect(whileProbing == nil)
        // b wrote 3-4 in epoch 2 under a deposed leader.
        _ = l.receive(.mismatch(epoch: 3, history: Self.history([1, 1, 2, 2])), from: "b")
        guard case .append(let fix)? = l.next(for: "b", oldestKept: 1, maxEntries: 10) else { Issue.record("no resend"); return }
        #expect(fix.prevIndex == 2 && fix.prevEpoch == 1 && fix.entryEpochs == [3])
        _ = l.receive(.accepted(epoch: 3, lastIndex: 3), from: "b")
        #expect(l.followers["b"]?.mode == .stream)
        // Streaming pipelines new entries without waiting.
        _ = l.append(count: 2)
        guard case .append(let a)? = l.next(for: "b", oldestKept: 1, maxEntries: 1) else { Issue.record("no append"); return }
        guard case .append(let b)? = l.next(for: "b", oldestKept: 1, maxEntries: 1) else { Issue.record("no pipelined append"); return }
        #expect(a.indexes == 4...4 && b.indexes == 5...5)
        let nothingLeft = l.next(for: "b", oldestKept: 1, maxEntries: 1)
        #expect(nothingLeft == nil)
        // A lost link goes back to probing from the match.
        l.linkLost("b")
        guard case .append(let again)? = l.next(for: "b", oldestKept: 1, maxEntries: 5) else { Issue.record("no probe"); return }
        #expect(again.prevIndex == 3 && again.entryEpochs == [3, 3])
    }

    @Test func aFollowerBehindWhatIsKeptGetsASnapshot() {
        var l = ReplicaLeader(epoch: 1, history: Self.history([1, 1, 1, 1, 1]), followers: ["b"], ackReplicas: 2)
        _ = l.receive(.mismatch(epoch: 1, history: EpochHistory()), from: "b")
        let behind = l.next(for: "b", oldestKept: 3, maxEntries: 5)
        #expect(behind == .snapshot)
        let sentOnce = l.next(for: "b", oldestKept: 3, maxEntries: 5)
        #expect(sentOnce == nil)
        _ = l.receive(.accepted(epoch: 1, lastIndex: 5), from: "b")
        #expect(l.followers["b"]?.match == 5)
        #expect(l.commitIndex == 5)
    }

    @Test func promotionNeedsNMinusWPlusOneAnswersAndPicksTheMostCurrent() {
        let replicas = ["a", "b", "c"]
        let p = { (e: UInt64, i: UInt64) in LogPosition(lastEpoch: e, lastIndex: i) }
        #expect(Promotion.fenceQuorum(replicas: 3, ackReplicas: 2) == 2)
        // A fence round stops waiting once the quorum promised and only replicas etcd calls dead
        // are silent; a live replica (it may hold the longest log) is always waited for.
        let abc = ["a", "b", "c"]
        #expect(Promotion.fenceSettled(replicas: abc, answered: ["b", "c"], promised: 2, alive: ["b", "c"], ackReplicas: 2))
        #expect(!Promotion.fenceSettled(replicas: abc, answered: ["b", "c"], promised: 2, alive: ["a", "b", "c"], ackReplicas: 2))
        #expect(!Promotion.fenceSettled(replicas: abc, answered: ["b", "c"], promised: 1, alive: ["b", "c"], ackReplicas: 2))
        #expect(!Promotion.fenceSettled(replicas: abc, answered: ["c"], promised: 1, alive: ["c"], ackReplicas: 2))
        #expect(Promotion.fenceSettled(replicas: abc, answered: ["a", "b", "c"], promised: 0, alive: ["a", "b", "c"], ackReplicas: 2))
        #expect(!Promotion.fenceSettled(replicas: abc, answered: ["b", "c"], promised: 2, alive: ["b", "c"], ackReplicas: 1))
        #expect(Promotion.fenceQuorum(replicas: 3, ackReplicas: 1) == 3)
        #expect(Promotion.fenceQuorum(replicas: 5, ackReplicas: 3) == 3)
        #expect(Promotion.choose(answers: ["b": p(2, 9)], replicas: replicas, ackReplicas: 2) == nil)
        #expect(Promotion.choose(answers: ["b": p(2, 9), "c": p(3, 4)], replicas: replicas, ackReplicas: 2) == "c")
        #expect(Promotion.choose(answers: ["b": p(3, 9), "c": p(3, 4)], replicas: replicas, ackReplicas: 2) == "b")
        #expect(Promotion.choose(answers: ["c": p(3, 4), "b": p(3, 4)], replicas: replicas, ackReplicas: 2) == "b")
        // Answers from outside the replica set do not count.
        #expect(Promotion.choose(answers: ["b": p(1, 1), "x": p(9, 9)], replicas: replicas, ackReplicas: 2) == nil)
    }

    @Test func failoverDutyGoesToLiveReplicasInRingOrder() {
        let table = [
            PartitionId(0)!: PartitionAssignment(epoch: 3, leader: "a", replicas: ["a", "b", "c"]),
            PartitionId(1)!: PartitionAssignment(epoch: 1, leader: "b", replicas: ["b", "c", "a"]),
            PartitionId(2)!: PartitionAssignment(epoch: 2, leader: "a", replicas: ["a", "c", "d"]),
        ]
        #expect(FailoverDuty.ranks(table: table, alive: ["b", "c"], selfId: "b") == [PartitionId(0)!: 0])
        #expect(FailoverDuty.ranks(table: table, alive: ["b", "c"], selfId: "c") == [PartitionId(0)!: 1, PartitionId(2)!: 0])
        #expect(FailoverDuty.ranks(table: table, alive: ["a", "b", "c"], selfId: "c") == [:])
    }

    @Test func assignmentsRoundTripAsEtcdText() {
        let a = PartitionAssignment(epoch: 12, leader: "n2", replicas: ["n1", "n2", "n3"], leaderIncarnation: 77)
        #expect(a.encoded == "12 n2 n1,n2,n3 77")
        #expect(PartitionAssignment(encoded: a.encoded) == a)
        #expect(a.mayLead("n2", incarnation: 77))
        #expect(!a.mayLead("n2", incarnation: 78))  // n2 lost its disk after answering the fence
        #expect(!a.mayLead("n1", incarnation: 77))
        #expect(PartitionAssignment(epoch: 1, leader: "n1", replicas: ["n1"]).mayLead("n1", incarnation: 5))
        #expect(!PartitionAssignment(epoch: 2, leader: "n1", replicas: ["n1"]).mayLead("n1", incarnation: 0))
        for bad in ["", "12 n2", "12 n2 n1,n2", "x n2 n1,n2 0", "12 n4 n1,n2,n3 0", "12 n2 n1,,n2 0", "12 n2 n2,n2 0", "12  n1,n2 0", "12 n2 n1,n2 0 extra", "12 n2 n1,n2 -1"] {
            #expect(PartitionAssignment(encoded: bad) == nil, "\(bad)")
        }
        let table = PartitionAssignment.initialTable(ring: HashRing(members: ["n1", "n2", "n3"]), factor: 2)
        #expect(table.count == Partitioning.count)
        #expect(table.values.allSatisfy { $0.epoch == 1 && $0.leader == $0.replicas[0] && $0.replicas.count == 2 })
    }

    @Test func replicasAreDistinctRingSuccessors() {
        let ring = HashRing(members: ["n1", "n2", "n3", "n4"])
        var leads: [String: Int] = [:]
        for p in Partitioning.all {
            let r = Partitioning.replicas(of: p, ring: ring, factor: 3)
            #expect(Set(r).count == 3)
            #expect(r[0] == ring.owner(ofPoint: Partitioning.startPoint(of: p)))
            leads[r[0], default: 0] += 1
        }
        #expect(leads.count == 4)
        #expect(Partitioning.replicas(of: PartitionId(0)!, ring: ring, factor: 9).count == 4)
        #expect(Partitioning.partition(ofPoint: 0xFFFF_FFFF_FF00_0000) == PartitionId(63))
        #expect(PartitionId(64) == nil)
    }
}
