import ChorusCore
@testable import ChorusEngine
import ChorusTestKit
import Testing

/// A snapshot taken at any LSN, plus replay of the records after it, rebuilds exactly the state a
/// full replay builds.
@Suite struct EngineSnapshotTests {
    /// A log with users, tokens, a revoked token, direct and group conversations, messages, reads,
    /// delivered receipts and a member removal.
    func richLog() async throws -> [JournalRecord] {
        let s = EngineReplayTests.Setup()
        let a = try await s.user("ann"), b = try await s.user("bea"), c = try await s.user("cid")
        let session = try await s.accounts.login(username: "bea", password: "password1", clientAddress: "t")
        try await s.accounts.logout(token: session.token)
        _ = try await s.accounts.login(username: "cid", password: "password1", clientAddress: "t")
        let (direct, _) = try await s.conversations.create(by: a, members: [b], title: nil)
        let (group, _) = try await s.conversations.create(by: a, members: [b, c], title: "g")
        for i in 0..<30 {
            let id = i % 2 == 0 ? direct.id : group.id
            _ = try await s.conversations.conversation(id).send(from: i % 3 == 0 ? b : a, clientMsgId: "m\(i)", body: "hello \(i)")
        }
        try await s.conversations.conversation(group.id).read(by: c, upTo: 4)
        try await s.conversations.received(by: b, upTo: 9)
        _ = try await s.conversations.changeMember(group.id, userId: c, add: false, by: a)
        _ = try await s.conversations.conversation(group.id).send(from: a, clientMsgId: "late", body: "after c left")
        return s.journal.records
    }

    func replay(_ records: some Sequence<JournalRecord>, into state: inout EngineState, _ inboxes: InboxDirectory) throws {
        for r in records { try state.apply(kind: r.kind, payload: r.payload, lsn: r.lsn, inboxes: inboxes) }
    }

    func expectSame(_ x: (EngineState, InboxDirectory), _ y: (EngineState, InboxDirectory)) {
        #expect(x.0.accounts.users == y.0.accounts.users)
        #expect(x.0.accounts.lastLoginAt == y.0.accounts.lastLoginAt)
        #expect(x.0.accounts.tokenCount == y.0.accounts.tokenCount)
        #expect(x.0.directPairs == y.0.directPairs && x.0.userConversations == y.0.userConversations)
        #expect(Set(x.0.conversations.keys) == Set(y.0.conversations.keys))
        for (id, c) in x.0.conversations {
            let d = y.0.conversations[id]
            #expect(c.members == d?.members && c.lastSeq == d?.lastSeq && c.lastActivity == d?.lastActivity)
            #expect(c.lsnIndex == d?.lsnIndex && c.clientIdHashBySeq == d?.clientIdHashBySeq && c.readSeq == d?.readSeq)
            #expect(c.clientIdHashBase == d?.clientIdHashBase)
            #expect(c.lastMessage == d?.lastMessage && c.title == d?.title)
        }
        let xs = Dictionary(uniqueKeysWithValues: x.1.all.map { ($0.userId, $0.inbox) })
        let ys = Dictionary(uniqueKeysWithValues: y.1.all.map { ($0.userId, $0.inbox) })
        #expect(Set(xs.keys) == Set(ys.keys))
        for (user, inbox) in xs {
            let a = inbox.entries(after: 0, limit: 10_000), b = ys[user]?.entries(after: 0, limit: 10_000) ?? []
            #expect(a.map(\.seq) == b.map(\.seq) && a.map(\.entry) == b.map(\.entry), "inbox of \(user)")
            #expect(inbox.snapshotState.receivedUpTo == ys[user]?.snapshotState.receivedUpTo)
        }
    }

    @Test func snapshotAtEveryLSNPlusTheRestEqualsFullReplay() async throws {
        let records = try await richLog()
        var full = EngineState()
        let fullInboxes = InboxDirectory()
        try replay(records, into: &full, fullInboxes)
        for cut in 0...records.count {
            var head = EngineState()
            let headInboxes = InboxDirectory()
            try replay(records[..<cut], into: &head, headInboxes)
            var (restored, restoredInboxes, _) = try EngineSnapshot.decode(EngineSnapshot.encode(head, inboxes: headInboxes))
            try replay(records[cut...], into: &restored, restoredInboxes)
            expectSame((full, fullInboxes), (restored, restoredInboxes))
        }
    }

    /// A conversation record as snapshot version 4 wrote it: a clientMsgId hash for every message.
    func version4Conversation(messages n: Int, hashes h: Int? = nil) -> [UInt8] {
        var w = ByteWriter(capacity: 1 << 16)
        w.writeString("c_0000000000001"); w.write(ConversationKind.direct.rawValue); w.writeString("")
        w.writeVarint(2); w.writeString("u_a"); w.writeString("u_b")
        w.writeVarint(UInt64(n)); w.write(Int64(0))
        w.write(UInt8(0))  // no last message
        w.writeVarint(0)  // no read cursors
        w.writeArray((1...n).map { UInt64($0) * 10 })
        w.writeArray((0..<(h ?? n)).map { UInt64($0 + 1) &* 0x9E37_79B9_7F4A_7C15 })
        return w.bytes
    }

    @Test func aVersion4ConversationKeepsOnlyItsWindowOfHashes() throws {
        var r = ByteReader(version4Conversation(messages: 25_000))
        let c = try ConversationCore.decode(from: &r, version: 4)
        #expect(c.lastSeq == 25_000 && c.lsnIndex.count == 25_000)
        #expect(c.clientIdHashBase == 15_000 && c.clientIdHashBySeq.count == 10_000)
        #expect(c.clientIdHashBySeq.first == UInt64(15_001) &* 0x9E37_79B9_7F4A_7C15)
        // Written again as version 5 (base, then the hashes kept), it reads back the same.
        var w = ByteWriter(capacity: 1 << 16)
        c.encode(into: &w)
        var r5 = ByteReader(w.bytes)
        let d = try ConversationCore.decode(from: &r5, version: EngineSnapshot.version)
        #expect(d.clientIdHashBase == c.clientIdHashBase && d.clientIdHashBySeq == c.clientIdHashBySeq && d.lsnIndex == c.lsnIndex)
        // Hashes that do not add up to the messages are refused.
        var bad = ByteReader(version4Conversation(messages: 3, hashes: 2))
        #expect(throws: EngineSnapshotError.self) { try ConversationCore.decode(from: &bad, version: 4) }
    }

    /// Stands for the re-engagement outbox an older snapshot carries after the engine's part.
    static let legacyOutbox: [UInt8] = [3, 1, 4, 1, 5]

    /// A version-5 payload (inbox entries as 16-byte structs) of `inboxes`, no conversations.
    func version5Payload(_ state: EngineState, _ inboxes: InboxDirectory, entries: (UserInbox) -> [PackedInboxEntry]) -> [UInt8] {
        var w = ByteWriter(capacity: 1 << 16)
        w.write(UInt8(5))
        state.accounts.encode(into: &w)
        w.writeVarint(0)
        let symbols = inboxes.symbols.strings
        w.writeVarint(UInt64(symbols.count))
        for s in symbols { w.writeString(s) }
        w.writeVarint(UInt64(inboxes.all.count))
        for (userId, inbox) in inboxes.all {
            w.writeString(userId); w.writeVarint(inbox.snapshotState.receivedUpTo); w.writeArray(entries(inbox))
        }
        state.deliveredSent.encode(into: &w)
        w.write(contentsOf: Self.legacyOutbox)
        return w.bytes
    }

    @Test func aVersion5SnapshotsInboxesAreReadAndCoded() async throws {
        var state = EngineState()
        let inboxes = InboxDirectory()
        try replay(try await richLog(), into: &state, inboxes)
        let (_, decoded, tail) = try EngineSnapshot.decode(version5Payload(state, inboxes) { $0.snapshotState.entries.array })
        #expect(tail == Self.legacyOutbox, "what follows the engine's part of an older snapshot is handed over whole")
        #expect(inboxes.all.count >= 3)
        for (userId, inbox) in inboxes.all {
            let d = decoded.inbox(userId)
            #expect(d.lastSeq == inbox.lastSeq && d.lastSeq > 0)
            #expect(d.entries(after: 0, limit: .max).map(\.entry) == inbox.entries(after: 0, limit: .max).map(\.entry))
            #expect(d.snapshotState.receivedUpTo == inbox.snapshotState.receivedUpTo)
        }
        // An entry naming a symbol the table lacks is refused.
        let bad = version5Payload(state, inboxes) { $0.snapshotState.entries.array + [.message(conversation: 1 << 30, seq: 1)] }
        #expect(throws: EngineSnapshotError.self) { try EngineSnapshot.decode(bad) }
    }

    @Test func damagedSnapshotsAreRefusedNotTrusted() async throws {
        let records = try await richLog()
        var state = EngineState()
        let inboxes = InboxDirectory()
        try replay(records, into: &state, inboxes)
        let good = EngineSnapshot.encode(state, inboxes: inboxes)
        // Every truncation is an error, never a crash or a partial state.
        for cut in stride(from: 0, to: good.count, by: max(1, good.count / 200)) {
            #expect(throws: EngineSnapshotError.self) { try EngineSnapshot.decode(Array(good[..<cut])) }
        }
        #expect(throws: EngineSnapshotError.unsupportedVersion(9)) { try EngineSnapshot.decode([9] + good.dropFirst()) }
        #expect(throws: EngineSnapshotError.self) { try EngineSnapshot.decode(good + [0]) }
    }
}
