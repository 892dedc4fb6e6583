import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusPeer
import ChorusReplica
import ChorusReplication
import ChorusTestKit
import Synchronization
import Testing

/// A follower's warm state is the leader's: after a promotion, the new leader serves the old
/// one's users and conversations (logins, tokens, history, seqs, dedup, inboxes) without a replay.
@Suite struct PromotionTests {
    /// One node's engine over a replicated journal, following every partition it does not lead.
    final class EngineNode: Sendable {
        let id: String
        let log = InMemoryJournal()
        let inboxes = InboxDirectory()
        let placement: PlacementCell
        let journal: ReplicatedJournal
        let followed: FollowedPartitions
        let copies: FollowerCopies
        let accounts: Accounts
        let conversations: Conversations
        let delivery = ReplicatedJournalTests.Delivery()
        let clock: ManualClock

        init(_ id: String, clock: ManualClock) {
            self.id = id
            self.clock = clock
            placement = PlacementCell(Placement(
                ring: HashRing(members: ["n1", "n2", "n3"]), selfId: id, leaders: Array(repeating: "", count: Partitioning.count)))
            let placement = placement
            let followed = FollowedPartitions(inboxes: inboxes, sharesInbox: { placement.sharesInbox(user: $0, with: $1) })
            self.followed = followed
            copies = FollowerCopies(journal: log, incarnation: 1, recovered: PartitionReplay(), inSync: true) { Self.apply($0, to: followed) }
            journal = ReplicatedJournal(log: log)
            var config = Accounts.Configuration()
            config.hasher = PasswordHasher(iterations: PasswordHasher.insecureFastIterations)
            config.placement = placement
            accounts = Accounts(state: AccountsState(), journal: journal, clock: clock, configuration: config)
            let writer = RemoteInboxWriter(journal: journal, inboxes: inboxes, placement: placement)
            let delivery = delivery
            let fanout = InboxFanout(send: { items, _, reply in delivery.send(items, writer: writer, reply: reply) }, sleep: { _ in })
            delivery.fanout.withLock { $0 = fanout }
            conversations = Conversations(
                state: EngineState(), accounts: accounts, journal: journal, inboxes: inboxes, clock: clock, limits: ChatLimits(),
                placement: placement, fanout: fanout)
        }

        static func apply(_ actions: [PartitionReplay.Action], to followed: FollowedPartitions) {
            for case .apply(let kind, let payload, let lsn) in actions { followed.apply(kind: kind, payload: payload, lsn: lsn) }
        }

        /// Leads every partition in `epoch` from the copies it followed: fenced first, then the
        /// epoch's first record committed (which commits and applies what it inherited), then the
        /// staged keys promoted, then served.
        @discardableResult
        func leadAll(epoch: UInt64, followers: [String], transport: LoopbackReplicas) async throws -> [ChorusEvent] {
            let followed = followed
            for p in Partitioning.all {
                copies.handle(.fence(partition: p, epoch: epoch), from: id) { _ in }
                let inherited = copies.copy(p).map { PartitionReplay(copies: [p: $0]) } ?? PartitionReplay()
                let copy = LeaderCopy(
                    partition: p, epoch: epoch, followers: followers, ackReplicas: 2, replay: inherited, journal: log,
                    client: PeerClient(transport)) { Self.apply($0, to: followed) }
                let started = await withCheckedContinuation { c in copy.start { c.resume(returning: $0) } }
                _ = try started.get()
                journal.lead(copy)
            }
            let emails = await followed.promote(where: { _ in true }, accounts: accounts, conversations: conversations, now: clock.nowMs())
            placement.lead(Array(repeating: id, count: Partitioning.count))
            return emails
        }

        func settle() async { await delivery.idle() }
    }

    @Test func aPromotedFollowerServesWhatTheLeaderServed() async throws {
        let clock = ManualClock()
        let transport = LoopbackReplicas()
        let n1 = EngineNode("n1", clock: clock), n2 = EngineNode("n2", clock: clock), n3 = EngineNode("n3", clock: clock)
        for n in [n2, n3] { transport.followers.withLock { $0[n.id] = n.copies } }
        try await n1.leadAll(epoch: 1, followers: ["n2", "n3"], transport: transport)

        // Traffic on n1: users in several partitions, a group and a direct conversation.
        var users: [String] = []
        for i in 0..<6 {
            clock.advance(ms: 60_000)
            users.append(try await n1.accounts.register(username: "user\(i)", password: "password\(i)!", email: "u\(i)@example.com", displayName: nil).userId)
        }
        let token = try await n1.accounts.login(username: "user1", password: "password1!", clientAddress: "test").token
        let (group, _) = try await n1.conversations.create(by: users[0], members: Array(users[1...]), title: "g")
        let (direct, _) = try await n1.conversations.create(by: users[1], members: [users[2]], title: nil)
        for i in 0..<15 {
            let id = i % 3 == 0 ? direct.id : group.id
            let from = id == direct.id ? users[1 + i % 2] : users[i % users.count]
            _ = try await n1.conversations.conversation(id).send(from: from, clientMsgId: "m\(i)", body: "hello \(i)")
        }
        try await n1.conversations.conversation(group.id).read(by: users[3], upTo: 7)
        await n1.settle()
        try await n1.conversations.received(by: users[2], upTo: n1.inboxes.inbox(users[2]).entries(after: 0, limit: 1000).last!.seq)
        await n1.settle()
        // Re-engagement records, logged at each user's point as the email service logs them: one
        // email sent, one queued and not sent yet.
        let sent: [ChorusEvent] = [
            .emailQueued(userId: users[3], periodStart: 5, messageId: "m-sent", to: "u3@example.com", at: 6), .emailSent(messageId: "m-sent", at: 7),
        ]
        let queued = ChorusEvent.emailQueued(userId: users[4], periodStart: 5, messageId: "m-queued", to: "u4@example.com", at: 6)
        for (user, events) in [(users[3], sent), (users[4], [queued])] {
            _ = try await n1.journal.append(batch: events.map { ($0.kind, $0.encode()) }, at: KeyPoint.of(id: user))
        }
        let history = try await n1.conversations.conversation(group.id).history(for: users[0], before: nil, after: nil, limit: 100).messages
        let inboxes = users.map { n1.inboxes.inbox($0).entries(after: 0, limit: 1000) }

        // n1 dies; n2 takes every partition with n3 (n1's last appends reached both: loopback).
        transport.cut.withLock { $0 = ["n1"] }
        transport.followers.withLock { $0 = ["n3": n3.copies] }
        let emails = try await n2.leadAll(epoch: 2, followers: ["n1", "n3"], transport: transport)
        // The outbox gets what n1 had sent (no second email) and what it had queued (sent from here).
        #expect(emails.filter { if case .emailQueued(let u, _, _, _, _) = $0 { u == users[3] } else { false } }.count == 1)
        #expect(emails.contains(.emailSent(messageId: "m-sent", at: 7)))
        #expect(emails.contains(queued))

        let holder = try await n2.accounts.authenticate(token: token)
        #expect(holder.userId == users[1], "a token n1 issued")
        _ = try await n2.accounts.login(username: "user4", password: "password4!", clientAddress: "test")
        let moved = try await n2.conversations.conversation(group.id).history(for: users[0], before: nil, after: nil, limit: 100).messages
        #expect(moved == history)
        let again = try await n2.conversations.conversation(group.id).send(from: users[1], clientMsgId: "m1", body: "hello 1")
        #expect(!again.created && again.message == history.first { $0.clientMsgId == "m1" })
        let next = try await n2.conversations.conversation(group.id).send(from: users[1], clientMsgId: "new", body: "after")
        #expect(next.created && next.message.seq == history.last!.seq + 1)
        await n2.settle()
        for (u, before) in zip(users, inboxes) {
            let now = n2.inboxes.inbox(u).entries(after: 0, limit: 1000)
            #expect(Array(now.prefix(before.count)).map(\.seq) == before.map(\.seq))
            #expect(Array(now.prefix(before.count)).map(\.entry) == before.map(\.entry), "\(u)")
        }
        #expect(n2.followed.undecodableEvents == 0)
    }
    /// A node that follows a key's partition but does not serve it yet (not promoted) answers
    /// `unavailable`, to retry, for its conversations, logins and tokens: never `404` or `401` from
    /// state it has not taken over. The node that serves them still says unknown for unknown keys.
    @Test func aNodeNotServingAKeyYetSaysUnavailable() async throws {
        let clock = ManualClock()
        let transport = LoopbackReplicas()
        let n1 = EngineNode("n1", clock: clock), n2 = EngineNode("n2", clock: clock), n3 = EngineNode("n3", clock: clock)
        for n in [n2, n3] { transport.followers.withLock { $0[n.id] = n.copies } }
        try await n1.leadAll(epoch: 1, followers: ["n2", "n3"], transport: transport)
        let a = try await n1.accounts.register(username: "alice", password: "password-a!", email: "a@example.com", displayName: nil).userId
        let b = try await n1.accounts.register(username: "bob", password: "password-b!", email: "b@example.com", displayName: nil).userId
        let token = try await n1.accounts.login(username: "alice", password: "password-a!", clientAddress: "test").token
        let (direct, _) = try await n1.conversations.create(by: a, members: [b], title: nil)
        await n1.settle()

        func code(_ work: () async throws -> Void) async -> String? {
            do { try await work(); return nil } catch let e as ChatError { return e.code } catch { return "\(error)" }
        }
        // n3 holds every record (it follows every partition) but serves none of them.
        #expect(await code { _ = try n3.conversations.conversation(direct.id) } == "unavailable")
        #expect(await code { _ = try await n3.accounts.login(username: "alice", password: "password-a!", clientAddress: "test") } == "unavailable")
        #expect(await code { _ = try await n3.accounts.authenticate(token: token) } == "unavailable")
        // The leader: unknown keys are unknown, a bad password is a bad password.
        #expect(await code { _ = try n1.conversations.conversation("c_doesnotexist") } == "unknown_conversation")
        #expect(await code { _ = try await n1.accounts.login(username: "alice", password: "wrong-password", clientAddress: "test") } == "invalid_credentials")
        #expect(await code { _ = try await n1.accounts.authenticate(token: token) } == nil)
    }
}
