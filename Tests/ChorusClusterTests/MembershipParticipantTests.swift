import ChorusCluster
import Testing

@Suite struct MembershipParticipantTests {
    let three = ClusterMembership(epoch: 1, members: ["n1": "127.0.0.1:9001", "n2": "127.0.0.1:9002", "n3": "127.0.0.1:9003"])
    var four: ClusterMembership { try! three.adding("n4", at: "127.0.0.1:9004").get() }

    func member(_ id: String = "n1") -> MembershipParticipant { MembershipParticipant(selfId: id, current: three, pending: nil, joining: false) }

    @Test func aPrepareIsPersistedBeforeItIsPublished() {
        var p = member()
        #expect(p.prepare(four) == .success(.persist(four)))
        #expect(p.pending == nil && p.reserved == four, "not published before the pending file is durable")
        #expect(p.phase(of: 2) == .failed("no change with epoch 2 is prepared here"))
        // The same prepare again while persisting does nothing; another change is refused.
        #expect(p.prepare(four) == .success(.none))
        let other = try! three.removing("n3").get()
        #expect(p.prepare(other) == .failure(.anotherChangeInProgress(epoch: 2)))
        let move = p.pendingPersisted(four)
        #expect(p.pending == four && p.reserved == nil && p.phase(of: 2) == .transferring)
        #expect(move.before == three.ring && move.after == four.ring && move.selfId == "n1")
        #expect(p.prepare(four) == .success(.none), "a repeated prepare is idempotent")
    }

    @Test func aPrepareWhosePendingFileFailsLeavesNothingPrepared() {
        var p = member()
        _ = p.prepare(four)
        p.pendingNotPersisted(four)
        #expect(p.reserved == nil && p.pending == nil)
        #expect(p.prepare(four) == .success(.persist(four)), "it may be tried again")
    }

    @Test func theEpochMustFollowExceptOnAJoiningNode() {
        var p = member()
        let skip = ClusterMembership(epoch: 3, members: four.members)
        #expect(p.prepare(skip) == .failure(.epochDoesNotFollow(given: 3, current: 1)))
        var joiner = MembershipParticipant(selfId: "n4", current: ClusterMembership(epoch: 1, members: ["n4": "x:1"]), pending: nil, joining: true)
        #expect(joiner.prepare(skip) == .success(.persist(skip)), "a joining node does not know the epoch yet")
        var stranger = MembershipParticipant(selfId: "n9", current: ClusterMembership(epoch: 1, members: ["n9": "x:1"]), pending: nil, joining: true)
        #expect(stranger.prepare(four) == .failure(.joiningNodeNotInMembership))
        #expect(joiner.phase(of: 1) != .ready, "a joining node is never ready for an epoch it has not prepared")
    }

    @Test func theHandOverDecidesThePhaseOfItsOwnChangeOnly() {
        var p = member()
        _ = p.prepare(four)
        _ = p.pendingPersisted(four)
        #expect(p.handoverRefusal(epoch: 2) == nil)
        #expect(p.handoverRefusal(epoch: 3) == .notPrepared(epoch: 3))
        p.handoverEnded(epoch: 7, failure: "stale")
        #expect(p.phase(of: 2) == .transferring, "an older hand-over's end changes nothing")
        p.handoverEnded(epoch: 2, failure: nil)
        #expect(p.phase(of: 2) == .ready)
        var failing = member()
        _ = failing.prepare(four)
        _ = failing.pendingPersisted(four)
        failing.handoverEnded(epoch: 2, failure: "node n4 cannot be reached")
        #expect(failing.phase(of: 2) == .failed("node n4 cannot be reached"))
    }

    @Test func commitSwitchesOnceAndAbortUndoesOnlyThePreparedChange() {
        var p = member()
        _ = p.prepare(four)
        _ = p.pendingPersisted(four)
        #expect(p.commit(four) == .switchRings(previous: three))
        p.committed(four)
        #expect(p.current == four && p.pending == nil && p.phase == .idle)
        #expect(p.commit(four) == .none, "a repeated commit does nothing")
        #expect(p.phase(of: 2) == .ready, "a committed epoch reads as ready")
        #expect(p.abort(four) == false, "nothing to abort once committed")

        var q = member()
        _ = q.prepare(four)
        _ = q.pendingPersisted(four)
        #expect(q.abort(try! three.removing("n2").get()) == false)
        #expect(q.abort(four) && q.pending == nil && q.current == three)
        #expect(q.prepare(four) == .success(.persist(four)), "after an abort the change may be prepared again")
    }

    @Test func aChangePreparedBeforeARestartIsPreparedAgain() {
        var p = MembershipParticipant(selfId: "n2", current: three, pending: four, joining: false)
        let resumed = p.resume()
        #expect(resumed?.0 == four && resumed?.1.selfId == "n2")
        #expect(p.phase(of: 2) == .transferring)
        var idle = member()
        #expect(idle.resume() == nil)
    }

    @Test func theCoordinatorPlansPrepareAndCommitOrders() {
        var p = member("n2")
        guard case .success(.change(let plan)) = p.coordinate(.add(id: "n4", address: "127.0.0.1:9004")) else { Issue.record("no plan"); return }
        #expect(plan.next == four)
        #expect(plan.prepareOrder == ["n2", "n4", "n1", "n3"], "this node, the newcomers, the rest")
        #expect(plan.commitOrder == ["n4", "n1", "n3", "n2"], "this node last")
        #expect(p.coordinate(.remove(id: "n3")) == .failure(.alreadyCoordinating))
        p.finishCoordinating()

        let removal = MembershipChangePlan(selfId: "n1", current: four, next: try! four.removing("n3").get())
        #expect(removal.prepareOrder == ["n1", "n2", "n3", "n4"])
        #expect(removal.commitOrder == ["n3", "n2", "n4", "n1"], "the leaving node hears the commit first")
    }

    @Test func theCoordinatorRecommitsWhatIsDoneAndRefusesWhatCannotBe() {
        var p = member("n1")
        #expect(p.coordinate(.add(id: "n2", address: "127.0.0.1:9002")) == .success(.recommit(three, targets: ["n2", "n3"])))
        p.finishCoordinating()
        #expect(p.coordinate(.remove(id: "n9")) == .success(.recommit(three, targets: ["n2", "n3", "n9"])))
        p.finishCoordinating()
        #expect(p.coordinate(.add(id: "n2", address: "10.0.0.1:1")) == .failure(.alreadyMemberElsewhere(id: "n2", address: "127.0.0.1:9002")))
        #expect(p.coordinate(.add(id: "a@b", address: "x:1")) == .failure(.invalid(.invalidId("a@b"))))
        var joiner = MembershipParticipant(selfId: "n4", current: ClusterMembership(epoch: 1, members: ["n4": "x:1"]), pending: nil, joining: true)
        #expect(joiner.coordinate(.remove(id: "n1")) == .failure(.joiningCannotCoordinate))
    }

    @Test func aCoordinatorFinishesTheChangeItsPredecessorPrepared() {
        var p = MembershipParticipant(selfId: "n1", current: three, pending: four, joining: false)
        guard case .success(.change(let plan)) = p.coordinate(.add(id: "n4", address: "127.0.0.1:9004")) else { Issue.record("no plan"); return }
        #expect(plan.next == four)
        p.finishCoordinating()
        #expect(p.coordinate(.remove(id: "n3")) == .failure(.anotherChangeInProgress(epoch: 2)))
    }

    @Test func readinessWaitsOnAnInjectedClock() {
        var wait = ReadinessWait(nodes: ["n1", "n2", "n3"], nowMs: 1_000, timeoutMs: 300_000)
        #expect(wait.next(nowMs: 1_000) == .poll(["n1", "n2", "n3"]))
        wait.observe("n1", .ready)
        wait.observe("n2", .transferring)
        wait.observe("n3", .idle)
        #expect(wait.next(nowMs: 2_000) == .poll(["n2", "n3"]))
        wait.observe("n2", .ready)
        #expect(wait.next(nowMs: 300_999) == .poll(["n3"]))
        #expect(wait.next(nowMs: 301_000) == .abort("hand-over not complete on [\"n3\"] in time"))
        wait.observe("n3", .ready)
        #expect(wait.next(nowMs: 400_000) == .commit, "every node ready: commit, whatever the time")

        var failing = ReadinessWait(nodes: ["n1", "n2"], nowMs: 0, timeoutMs: 10)
        failing.observe("n2", .failed("disk full"))
        failing.observe("n1", .failed("later"))
        #expect(failing.next(nowMs: 1) == .abort("node n2: disk full"), "the first failure is the reason")
    }
}
