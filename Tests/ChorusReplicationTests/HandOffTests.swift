import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusReplica
import ChorusReplication
import ChorusTestKit
import Testing

/// A leader that hands its partitions off follows them from its own copy with its keys staged
/// again (`LeaderCopy.retire`, `FollowerCopies.resume`, `FollowedPartitions.demote`): the next
/// leader's records apply to that state once, and leading again later serves exactly what the
/// other leader served.
@Suite struct HandOffTests {
    typealias EngineNode = PromotionTests.EngineNode

    /// Hands every partition `node` leads off: appends refused, the copy retired once settled,
    /// followed again, keys staged.
    static func handOffAll(_ node: EngineNode) async throws {
        for p in Partitioning.all {
            let copy = try #require(node.journal.stopLeading(p))
            var retired: PartitionReplay.Copy?
            for _ in 0..<2_000 where retired == nil {
                copy.pump(heartbeat: true)
                retired = copy.retire()
                if retired == nil { try await Task.sleep(for: .milliseconds(1)) }
            }
            node.copies.resume(p, from: try #require(retired, "partition \(p) did not settle"))
        }
        node.placement.lead(Array(repeating: "", count: Partitioning.count))
        try await node.followed.demote(where: { _ in true }, accounts: node.accounts, conversations: node.conversations, now: node.clock.nowMs())
        #expect(node.conversations.localCores { _ in true }.isEmpty)
    }

    static func inboxes(_ node: EngineNode, _ users: [String]) -> [[InboxEntry]] {
        users.map { node.inboxes.inbox($0).entries(after: 0, limit: 10_000).map(\.entry) }
    }

    @Test func aLeaderHandsOffFollowsAndLeadsAgainWithTheOtherLeadersState() async throws {
        let clock = ManualClock()
        let transport = LoopbackReplicas()
        let n1 = EngineNode("n1", clock: clock), n2 = EngineNode("n2", clock: clock), n3 = EngineNode("n3", clock: clock)
        transport.followers.withLock { $0 = ["n2": n2.copies, "n3": n3.copies] }
        try await n1.leadAll(epoch: 1, followers: ["n2", "n3"], transport: transport)
        var users: [String] = []
        for i in 0..<5 {
            clock.advance(ms: 60_000)
            users.append(try await n1.accounts.register(username: "user\(i)", password: "password\(i)!", email: "u\(i)@example.com", displayName: nil).userId)
        }
        let (group, _) = try await n1.conversations.create(by: users[0], members: Array(users[1...]), title: "g")
        let (direct, _) = try await n1.conversations.create(by: users[1], members: [users[2]], title: nil)
        for i in 0..<10 {
            _ = try await n1.conversations.conversation(i % 2 == 0 ? group.id : direct.id).send(
                from: users[1 + i % 2], clientMsgId: "a\(i)", body: "before \(i)")
        }
        await n1.settle()

        // n1 hands everything to n2, which leads epoch 2 with n1 and n3 following.
        try await Self.handOffAll(n1)
        await #expect(throws: ChatError.self) { _ = try await n1.conversations.conversation(group.id).send(from: users[0], clientMsgId: "x", body: "x") }
        transport.followers.withLock { $0 = ["n1": n1.copies, "n3": n3.copies] }
        try await n2.leadAll(epoch: 2, followers: ["n1", "n3"], transport: transport)
        let token = try await n2.accounts.login(username: "user3", password: "password3!", clientAddress: "test").token
        for i in 0..<10 {
            _ = try await n2.conversations.conversation(i % 2 == 0 ? group.id : direct.id).send(
                from: users[1 + i % 2], clientMsgId: "b\(i)", body: "after \(i)")
        }
        try await n2.conversations.conversation(group.id).read(by: users[4], upTo: 8)
        await n2.settle()
        let expected = try await n2.conversations.conversation(group.id).history(for: users[0], before: nil, after: nil, limit: 100).messages
        let expectedInboxes = Self.inboxes(n2, users)

        // And back: n2 hands off, n1 leads epoch 3 from its followed copy.
        try await Self.handOffAll(n2)
        transport.followers.withLock { $0 = ["n2": n2.copies, "n3": n3.copies] }
        try await n1.leadAll(epoch: 3, followers: ["n2", "n3"], transport: transport)
        await n1.settle()

        // n1 serves what n2 served: every message once (records applied to the staged state once),
        // the same inboxes, n2's token and read position, the dedup window, the next seq.
        let served = try await n1.conversations.conversation(group.id).history(for: users[0], before: nil, after: nil, limit: 100).messages
        #expect(served.map(\.seq) == Array(1...UInt64(served.count)))
        #expect(served.count == 10)
        #expect(served == expected)
        #expect(Self.inboxes(n1, users) == expectedInboxes)
        #expect(try await n1.accounts.authenticate(token: token).userId == users[3])
        let repeated = try await n1.conversations.conversation(group.id).send(from: users[1], clientMsgId: "b0", body: "after 0")
        #expect(!repeated.created && repeated.message.seq == served.first { $0.clientMsgId == "b0" }?.seq)
        let next = try await n1.conversations.conversation(direct.id).send(from: users[1], clientMsgId: "c0", body: "later")
        #expect(next.created && next.message.seq == 11)
        #expect(n1.followed.undecodableEvents == 0)
    }
}
