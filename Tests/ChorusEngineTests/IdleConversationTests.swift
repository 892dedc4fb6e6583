import ChorusCore
@testable import ChorusEngine
import ChorusTestKit
import Synchronization
import Testing

/// Memory follows activity: an idle conversation's caches go, then its actor, and everything still
/// works from its state, the log and the hashes.
@Suite struct IdleConversationTests {
    @Test func idleConversationsDropTheirCachesAndStillAnswer() async throws {
        let s = EngineReplayTests.Setup()
        let a = try await s.user("ann"), b = try await s.user("bea")
        let (direct, _) = try await s.conversations.create(by: a, members: [b], title: nil)
        let actor = try s.conversations.conversation(direct.id)
        for i in 1...100 { _ = try await actor.send(from: a, clientMsgId: "m\(i)", body: "hello \(i)") }
        _ = try await actor.send(from: a, clientMsgId: "m5", body: "again")  // builds the dedup index
        #expect(await actor.cachedMessages == 100)
        #expect(actor.snapshot.hasDedupIndex)

        #expect(await s.conversations.trimIdle(now: s.clock.nowMs(), idleMs: 60_000) == IdleSweep(), "active: kept")
        s.clock.advance(ms: 60_000)
        #expect(await s.conversations.trimIdle(now: s.clock.nowMs(), idleMs: 60_000) == IdleSweep(trimmed: 1, released: 0),
                "held by this test: trimmed, not released")
        #expect(await actor.cachedMessages == 0)
        #expect(!actor.snapshot.hasDedupIndex)
        #expect(await s.conversations.trimIdle(now: s.clock.nowMs(), idleMs: 60_000) == IdleSweep(), "nothing more to drop")

        let page = try await actor.history(for: b, before: nil, after: 95, limit: 10)
        #expect(page.messages.map(\.body) == (96...100).map { "hello \($0)" }, "read back from the log")
        let repeatSend = try await actor.send(from: a, clientMsgId: "m7", body: "x")
        #expect(!repeatSend.created && repeatSend.message.seq == 7 && repeatSend.message.body == "hello 7")
    }

    @Test func anUnheldIdleActorIsReleasedAndRebuiltWithItsState() async throws {
        var limits = ChatLimits()
        limits.groupMembers = 4
        let s = EngineReplayTests.Setup(limits: limits)
        let a = try await s.user("ann"), b = try await s.user("bea"), c = try await s.user("cid"), d = try await s.user("dan")
        let (group, _) = try await s.conversations.create(by: a, members: [b, d], title: "g")
        for i in 1...70 { _ = try await s.conversations.conversation(group.id).send(from: a, clientMsgId: "m\(i)", body: "hello \(i)") }
        _ = try await s.conversations.changeMember(group.id, userId: c, add: true, by: a)
        try await s.conversations.conversation(group.id).read(by: b, upTo: 40)
        #expect(s.conversations.liveCount == 1)
        let before = try s.conversations.core(group.id)

        s.clock.advance(ms: 60_000)
        #expect(await s.conversations.trimIdle(now: s.clock.nowMs(), idleMs: 60_000) == IdleSweep(trimmed: 1, released: 1))
        #expect(s.conversations.liveCount == 0)
        #expect(await s.conversations.trimIdle(now: s.clock.nowMs(), idleMs: 60_000) == IdleSweep(), "cold ones are not visited")
        let cold = try s.conversations.core(group.id)
        #expect(cold.members == before.members && cold.lastSeq == 70 && cold.readSeq == before.readSeq)
        #expect(s.conversations.liveCount == 0, "reading the state does not rebuild the actor")
        #expect(await s.conversations.list(for: c).map(\.id) == [group.id])

        // The next use rebuilds it: history, dedup of an old id, a new seq, membership, cursors.
        let actor = try s.conversations.conversation(group.id)
        #expect(s.conversations.liveCount == 1)
        let page = try await actor.history(for: c, before: 3, after: nil, limit: 5)
        #expect(page.messages.map(\.body) == ["hello 1", "hello 2"])
        let repeatSend = try await actor.send(from: a, clientMsgId: "m9", body: "x")
        #expect(!repeatSend.created && repeatSend.message.seq == 9 && repeatSend.message.body == "hello 9")
        let next = try await actor.send(from: c, clientMsgId: "new", body: "after")
        #expect(next.created && next.message.seq == 71)
        #expect(actor.snapshot.readSeq[b] == 40)
        await #expect(throws: ChatError.notMember) { try await actor.send(from: "u_nobody000000000", clientMsgId: "z", body: "z") }
    }

    @Test func workInFlightKeepsTheActor() async throws {
        let s = EngineReplayTests.Setup()
        let a = try await s.user("ann"), b = try await s.user("bea")
        let (direct, _) = try await s.conversations.create(by: a, members: [b], title: nil)
        s.journal.hold()  // appends wait: a send stays in flight
        let reply = Mutex<Result<SentMessage, ChatError>?>(nil)
        try s.conversations.conversation(direct.id).submit(SendRequest(from: a, clientMsgId: "m1", body: "hi") { r in
            reply.withLock { $0 = r }
        })
        s.clock.advance(ms: 60_000)
        #expect(await s.conversations.trimIdle(now: s.clock.nowMs(), idleMs: 1) == IdleSweep(), "a send in flight: kept")
        #expect(s.conversations.liveCount == 1)
        s.journal.release()
        #expect(try reply.withLock { $0 }?.get().message.seq == 1)
        s.clock.advance(ms: 60_000)
        #expect(await s.conversations.trimIdle(now: s.clock.nowMs(), idleMs: 1).released == 1)
        let again = try await s.conversations.conversation(direct.id).send(from: b, clientMsgId: "m2", body: "yo")
        #expect(again.message.seq == 2)
    }
}
