import ChorusCluster
import ChorusCore
@testable import ChorusEngine
import ChorusTestKit
import Testing

/// A membership change's data path: what one node exports, another logs and adopts, and both the
/// live state and a replay of the receiver's log equal the sender's.
@Suite struct HandoverTests {
    final class Engine: Sendable {
        let journal = InMemoryJournal()
        let clock = ManualClock()
        let inboxes = InboxDirectory()
        let accounts: Accounts
        let conversations: Conversations
        let handover: Handover

        init() {
            var config = Accounts.Configuration()
            config.hasher = PasswordHasher(iterations: PasswordHasher.insecureFastIterations)
            accounts = Accounts(state: AccountsState(), journal: journal, clock: clock, configuration: config)
            conversations = Conversations(
                state: EngineState(), accounts: accounts, journal: journal, inboxes: inboxes, clock: clock, limits: ChatLimits())
            handover = Handover(accounts: accounts, conversations: conversations, inboxes: inboxes, journal: journal, clock: clock)
        }

        func user(_ name: String) async throws -> String {
            try await accounts.register(username: name, password: "password1", email: "\(name)@example.com", displayName: nil).userId
        }

        func hand(_ batches: [[ChorusEvent]]) async throws {
            for b in batches { try await handover.receive(b) }
            await handover.adopt()
        }
    }

    /// Three users, a direct and a group conversation, sends, a read, a delivered claim, a token.
    func populated() async throws -> (Engine, users: [String], conversations: [String], token: String) {
        let e = Engine()
        let a = try await e.user("ann"), b = try await e.user("bea"), c = try await e.user("cid")
        let (direct, _) = try await e.conversations.create(by: a, members: [b], title: nil)
        let (group, _) = try await e.conversations.create(by: a, members: [b, c], title: "g")
        for i in 0..<12 {
            let id = i % 3 == 0 ? direct.id : group.id
            _ = try await e.conversations.conversation(id).send(from: [a, b, c][i % (id == direct.id ? 2 : 3)], clientMsgId: "m\(i)", body: "hello \(i)")
        }
        try await e.conversations.conversation(group.id).read(by: c, upTo: 5)
        try await e.conversations.received(by: b, upTo: 4)
        let token = try await e.accounts.login(username: "ann", password: "password1", clientAddress: "t").token
        return (e, [a, b, c], [direct.id, group.id], token)
    }

    @Test func theNewOwnerHoldsExactlyWhatTheOldOneHeldAndReplaysIt() async throws {
        let (old, users, conversations, token) = try await populated()
        let batches = try await old.handover.export(destination: { _ in "n2" })
        #expect(Array(batches.keys) == ["n2"])
        let new = Engine()
        try await new.hand(batches["n2"]!)

        #expect(try await new.accounts.authenticate(token: token).userId == users[0], "tokens move with their user")
        for u in users {
            let was = old.inboxes.inbox(u).entries(after: 0, limit: 1000), now = new.inboxes.inbox(u).entries(after: 0, limit: 1000)
            #expect(!was.isEmpty && was.map(\.seq) == now.map(\.seq) && was.map(\.entry) == now.map(\.entry), "inbox of \(u)")
        }
        for id in conversations {
            let was = try old.conversations.conversation(id), now = try new.conversations.conversation(id)
            #expect(try await was.history(for: users[0], before: nil, after: nil, limit: 100).messages
                == now.history(for: users[0], before: nil, after: nil, limit: 100).messages)
            #expect(was.snapshot.readSeq == now.snapshot.readSeq && was.snapshot.members == now.snapshot.members)
            // A repeat of an old clientMsgId is still recognised (the dedup window moved too).
            let repeatOf = try await now.send(from: users[0], clientMsgId: id == conversations[0] ? "m0" : "m1", body: "again")
            #expect(!repeatOf.created)
        }
        #expect(await new.conversations.list(for: users[2]).map(\.id) == [conversations[1]])

        // The receiver's log alone rebuilds the same state.
        var replayed = EngineState()
        let inboxes = InboxDirectory()
        for r in new.journal.records { try replayed.apply(kind: r.kind, payload: r.payload, lsn: r.lsn, inboxes: inboxes) }
        for u in users {
            #expect(inboxes.inbox(u).entries(after: 0, limit: 1000).map(\.entry) == new.inboxes.inbox(u).entries(after: 0, limit: 1000).map(\.entry))
        }
        for id in conversations {
            let live = try new.conversations.conversation(id).snapshot
            #expect(replayed.conversations[id]?.lastSeq == live.lastSeq && replayed.conversations[id]?.lsnIndex == live.lsnIndex)
            #expect(replayed.conversations[id]?.readSeq == live.readSeq)
        }
        #expect(replayed.accounts.authenticate(Accounts.hash(token: token), now: new.clock.nowMs()) == users[0])
    }

    @Test func aSecondHandOverReplacesTheFirstCopyInsteadOfAddingToIt() async throws {
        let (old, users, conversations, _) = try await populated()
        let batches = try await old.handover.export(destination: { _ in "n2" })
        let new = Engine()
        try await new.hand(batches["n2"]!)
        try await new.hand(batches["n2"]!)  // a repeated prepare, or keys coming back later
        for u in users {
            #expect(new.inboxes.inbox(u).entries(after: 0, limit: 1000).map(\.entry) == old.inboxes.inbox(u).entries(after: 0, limit: 1000).map(\.entry))
        }
        var replayed = EngineState()
        let inboxes = InboxDirectory()
        for r in new.journal.records { try replayed.apply(kind: r.kind, payload: r.payload, lsn: r.lsn, inboxes: inboxes) }
        for u in users { #expect(inboxes.inbox(u).lastSeq == old.inboxes.inbox(u).lastSeq) }
        for id in conversations { #expect(replayed.conversations[id]?.lastSeq == (try old.conversations.conversation(id).snapshot.lastSeq)) }
    }

    @Test func onlyTheKeysTheDestinationNamesLeave() async throws {
        let (old, users, conversations, _) = try await populated()
        let movingUser = KeyPoint.of(id: users[1]), movingConversation = KeyPoint.of(id: conversations[1])
        let batches = try await old.handover.export(destination: { $0 == movingUser || $0 == movingConversation ? "n3" : nil })
        let events = batches["n3"]!.flatMap { $0 }
        let handedUsers = events.compactMap { if case .userHandedIn(let u, _, _, _) = $0 { u.userId } else { nil } }
        let handedConversations = events.compactMap { if case .conversationHandedIn(let id, _, _, _, _, _) = $0 { id } else { nil } }
        #expect(handedUsers == [users[1]] && handedConversations == [conversations[1]])
        #expect(events.filter { if case .messageHandedIn = $0 { true } else { false } }.count == 8)
    }

    @Test func batchesStayUnderTheirBound() async throws {
        let e = Engine()
        let a = try await e.user("ann"), b = try await e.user("bea")
        let (direct, _) = try await e.conversations.create(by: a, members: [b], title: nil)
        let body = String(repeating: "x", count: 3000)
        for i in 0..<800 { _ = try await e.conversations.conversation(direct.id).send(from: a, clientMsgId: "m\(i)", body: body) }
        let batches = try await e.handover.export(destination: { _ in "n2" })["n2"]!
        #expect(batches.count > 1)
        for batch in batches { #expect(batch.reduce(0) { $0 + $1.encode().count + 8 } <= Handover.batchBytes) }
        let new = Engine()
        try await new.hand(batches)
        #expect(try new.conversations.conversation(direct.id).snapshot.lastSeq == 800)
    }
}

@Suite struct DeliveredLedgerTests {
    @Test func aClaimGivenBackIsClaimedAgainUnlessALaterOneMovedOn() {
        let inbox = UserInbox(symbols: SymbolTable())
        for seq: UInt64 in 1...5 { inbox.append(.message(conversationId: "c1", seq: seq)) }
        let first = inbox.claimReceived(upTo: 3)!
        inbox.unclaim(first.range)
        #expect(inbox.claimReceived(upTo: 3)?.range == first.range)
        let later = inbox.claimReceived(upTo: 5)!
        inbox.unclaim(first.range)  // stale: the later claim stands
        #expect(later.range == 4...5 && inbox.claimReceived(upTo: 5) == nil)
    }

    @Test func keepsTheNewestReceiptPerRemoteRecipientAndSurvivesSnapshotsAndHandOvers() throws {
        var ledger = DeliveredLedger()
        let remote: (String) -> Bool = { $0.hasPrefix("r") }
        ledger.note("u1", [DeliveredItem(conversationId: "c1", seq: 3, recipients: ["r1", "l1"])], remote: remote)
        ledger.note("u1", [DeliveredItem(conversationId: "c1", seq: 7, recipients: ["r2"])], remote: remote)
        ledger.note("u1", [DeliveredItem(conversationId: "c1", seq: 2, recipients: ["r1"])], remote: remote)  // older: ignored
        #expect(ledger.byUser == ["u1": ["c1": ["r1": 3, "r2": 7]]], "local recipients are not kept")
        #expect(ledger.items(of: "u1") == [
            DeliveredItem(conversationId: "c1", seq: 3, recipients: ["r1"]), DeliveredItem(conversationId: "c1", seq: 7, recipients: ["r2"]),
        ])
        let sent = ledger.receipts(to: { $0 == "r2" })
        #expect(sent.count == 1 && sent[0].recipient == "r2" && sent[0].from == "u1" && sent[0].seq == 7)

        var moved = DeliveredLedger()
        moved.replace("u1", with: ledger.items(of: "u1"))
        #expect(moved == ledger)

        var state = EngineState()
        state.deliveredSent = ledger
        let (restored, _, _) = try EngineSnapshot.decode(EngineSnapshot.encode(state, inboxes: InboxDirectory()))
        #expect(restored.deliveredSent == ledger)
        ledger.forget(where: { $0 == "u1" })
        #expect(ledger.byUser.isEmpty)
    }
}
