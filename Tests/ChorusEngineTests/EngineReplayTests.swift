import ChorusCore
@testable import ChorusEngine
import ChorusTestKit
import Testing

/// Live changes and replay of the same log must build the same state: same seqs, same inboxSeqs.
@Suite struct EngineReplayTests {
    struct Setup {
        let journal = InMemoryJournal()
        let clock = ManualClock()
        let inboxes = InboxDirectory()
        let accounts: Accounts
        let conversations: Conversations

        init(limits: ChatLimits = ChatLimits()) {
            var config = Accounts.Configuration()
            config.hasher = PasswordHasher(iterations: PasswordHasher.insecureFastIterations)
            config.limits = limits
            accounts = Accounts(state: AccountsState(), journal: journal, clock: clock, configuration: config)
            conversations = Conversations(
                state: EngineState(), accounts: accounts, journal: journal, inboxes: inboxes, clock: clock, limits: limits)
        }

        func user(_ name: String) async throws -> String {
            try await accounts.register(username: name, password: "password1", email: "\(name)@example.com", displayName: nil).userId
        }
    }

    @Test func liveAndReplayedInboxesAreIdentical() async throws {
        let s = Setup()
        let a = try await s.user("ann"), b = try await s.user("bea"), c = try await s.user("cid")
        let (direct, _) = try await s.conversations.create(by: a, members: [b], title: nil)
        let (group, _) = try await s.conversations.create(by: a, members: [b, c], title: "g")
        // Interleave sends across conversations from concurrent tasks.
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for i in 0..<20 {
                tasks.addTask {
                    let id = i % 2 == 0 ? direct.id : group.id
                    let actor = try s.conversations.conversation(id)
                    _ = try await actor.send(from: i % 3 == 0 ? b : a, clientMsgId: "m\(i)", body: "hello \(i)")
                }
            }
            try await tasks.waitForAll()
        }
        try await s.conversations.conversation(group.id).read(by: c, upTo: 3)
        try await s.conversations.conversation(group.id).read(by: c, upTo: 2)  // moves nothing: no receipt
        // Everything b holds: a sent in both conversations, so a gets one delivered receipt for each.
        // (A claim up to a fixed inboxSeq depends on how the concurrent sends interleaved.)
        let held = s.inboxes.inbox(b).lastSeq
        try await s.conversations.received(by: b, upTo: held)
        try await s.conversations.received(by: b, upTo: held)  // already claimed: nothing more
        _ = try await s.conversations.changeMember(group.id, userId: c, add: false, by: a)
        _ = try await s.conversations.conversation(group.id).send(from: a, clientMsgId: "after", body: "c is gone")

        var replayed = EngineState()
        let replayInboxes = InboxDirectory()
        for r in s.journal.records {
            try replayed.apply(kind: r.kind, payload: r.payload, lsn: r.lsn, inboxes: replayInboxes)  // as Node replays
        }
        for u in [a, b, c] {
            let live = s.inboxes.inbox(u).entries(after: 0, limit: 1000)
            let again = replayInboxes.inbox(u).entries(after: 0, limit: 1000)
            #expect(live.map(\.seq) == again.map(\.seq) && live.map(\.entry) == again.map(\.entry), "inbox of \(u)")
            #expect(live.map(\.seq) == Array(1...UInt64(live.count)), "no gaps")
        }
        #expect(s.inboxes.inbox(c).entries(after: 0, limit: 1000).count == 10, "c got group messages until removed, nothing after")
        let receipts = s.inboxes.inbox(a).entries(after: 0, limit: 1000).filter { if case .receipt = $0.entry { true } else { false } }
        #expect(receipts.filter { if case .receipt(_, _, .read, _) = $0.entry { true } else { false } }.map(\.entry)
            == [.receipt(conversationId: group.id, userId: c, kind: .read, seq: 3)])
        let delivered = receipts.filter { if case .receipt(_, let who, .delivered, _) = $0.entry { who == b } else { false } }
        #expect(delivered.count == 2, "one per conversation b holds messages of a in")
        for id in [direct.id, group.id] {
            let live = try s.conversations.conversation(id).snapshot
            #expect(replayed.conversations[id]?.lastSeq == live.lastSeq)
            #expect(replayed.conversations[id]?.lsnIndex == live.lsnIndex)
            #expect(replayed.conversations[id]?.members == live.members)
            #expect(replayed.conversations[id]?.readSeq == live.readSeq)
            #expect(replayed.conversations[id]?.clientIdHashBySeq == live.clientIdHashBySeq)
            #expect(replayed.conversations[id]?.lastMessage == live.lastMessage)
            #expect(replayed.conversations[id]?.lastActivity == live.lastActivity)
        }
    }

    @Test func groupSizeIsBounded() async throws {
        var limits = ChatLimits()
        limits.groupMembers = 3
        let s = Setup(limits: limits)
        let a = try await s.user("ann"), b = try await s.user("bea"), c = try await s.user("cid"), d = try await s.user("dov")
        await #expect(throws: ChatError.groupTooLarge(limit: 3)) { try await s.conversations.create(by: a, members: [b, c, d], title: nil) }
        let (g, _) = try await s.conversations.create(by: a, members: [b, c], title: nil)
        await #expect(throws: ChatError.groupTooLarge(limit: 3)) { try await s.conversations.changeMember(g.id, userId: d, add: true, by: a) }
    }

    @Test func concurrentDirectCreatesYieldOneConversation() async throws {
        let s = Setup()
        let a = try await s.user("ann"), b = try await s.user("bea")
        let ids = try await withThrowingTaskGroup(of: String.self) { tasks in
            for i in 0..<10 { tasks.addTask { try await s.conversations.create(by: i % 2 == 0 ? a : b, members: [i % 2 == 0 ? b : a], title: nil).0.id } }
            return try await tasks.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(ids.count == 1)
    }

    @Test func aStoppedLogRefusesSendsWithUnavailable() async throws {
        let s = Setup()
        let a = try await s.user("ann"), b = try await s.user("bea")
        let (direct, _) = try await s.conversations.create(by: a, members: [b], title: nil)
        s.journal.fail()
        let actor = try s.conversations.conversation(direct.id)
        await #expect(throws: ChatError.self) { try await actor.send(from: a, clientMsgId: "x", body: "hi") }
        #expect(s.inboxes.inbox(b).lastSeq == 0, "nothing delivered that is not durable")
    }
}
