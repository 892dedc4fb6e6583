import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusPeer
import ChorusReplica
import ChorusReplication
import ChorusTestKit
import Synchronization
import Testing

/// The engine over a `ReplicatedJournal`: its keyed appends become replicated records of the
/// right partitions, complete once committed, and read back by LSN as the events they carry.
@Suite struct ReplicatedJournalTests {
    /// A node leading every partition in epoch 1, with two followers over the peer codec.
    struct Node {
        let transport = LoopbackReplicas()
        let log = InMemoryJournal()
        let followerLogs = ["n2": InMemoryJournal(), "n3": InMemoryJournal()]
        let journal: ReplicatedJournal
        let clock = ManualClock()
        let accounts: Accounts
        let conversations: Conversations

        init(leading partitions: [PartitionId] = Partitioning.all) {
            for (id, j) in followerLogs {
                let f = FollowerCopies(journal: j, incarnation: 1, recovered: PartitionReplay(), inSync: true) { _ in }
                transport.followers.withLock { $0[id] = f }
            }
            journal = ReplicatedJournal(log: log)
            for p in partitions {
                journal.lead(LeaderCopy(
                    partition: p, epoch: 1, followers: ["n2", "n3"], ackReplicas: 2, replay: PartitionReplay(), journal: log,
                    client: PeerClient(transport)) { _ in })
            }
            var config = Accounts.Configuration()
            config.hasher = PasswordHasher(iterations: PasswordHasher.insecureFastIterations)
            accounts = Accounts(state: AccountsState(), journal: journal, clock: clock, configuration: config)
            conversations = Conversations(
                state: EngineState(), accounts: accounts, journal: journal, inboxes: InboxDirectory(), clock: clock, limits: ChatLimits())
        }

        func user(_ name: String) async throws -> String {
            try await accounts.register(username: name, password: "password1", email: "\(name)@example.com", displayName: nil).userId
        }

        /// The events of the node's log, by partition, as replicated records carry them.
        func replicated() throws -> [(partition: PartitionId, event: ChorusEvent)] {
            try log.records.compactMap { r in
                guard case .replicated(let p, _, _, let kind, let payload) = try ReplicationRecord.decode(kind: r.kind, payload: r.payload)
                else { return nil }
                return (p, try ChorusEvent.decode(kind: kind, payload: payload))
            }
        }
    }

    @Test func theEnginesAppendsAreReplicatedToTheirKeysPartitions() async throws {
        let node = Node()
        let a = try await node.user("ann"), b = try await node.user("bea")
        let (direct, _) = try await node.conversations.create(by: a, members: [b], title: nil)
        let actor = try node.conversations.conversation(direct.id)
        for i in 1...30 { _ = try await actor.send(from: a, clientMsgId: "m\(i)", body: "hello \(i)") }
        try await actor.read(by: b, upTo: 30)

        let events = try node.replicated()
        let expected = 4 + 1 + 30 + 1  // two registrations of two events, the creation, sends, the read
        #expect(events.count == expected)
        for (p, e) in events {
            let key: String? = switch e {
            case .userRegistered(let u): u.userId
            case .loggedIn(let u, _), .tokenIssued(_, let u, _): u
            case .conversationCreated(let id, _, _, _, _), .readUpTo(_, let id, _): id
            case .messageAppended(let m): m.conversationId
            default: nil
            }
            guard let key else { Issue.record("unexpected event \(e)"); continue }
            #expect(p == Partitioning.partition(ofPoint: KeyPoint.of(id: key)), "\(e) in \(p)")
        }
        // Every copy holds what was acknowledged.
        for (id, j) in node.followerLogs {
            let held = j.records.filter { $0.kind == ReplicationRecord.replicatedKind }.count
            #expect(held == events.count, "\(id) holds \(held) of \(events.count)")
        }
    }

    @Test func historyReadsBackThroughTheReplicatedRecords() async throws {
        let node = Node()
        let a = try await node.user("ann"), b = try await node.user("bea")
        let (direct, _) = try await node.conversations.create(by: a, members: [b], title: nil)
        let actor = try node.conversations.conversation(direct.id)
        for i in 1...20 { _ = try await actor.send(from: a, clientMsgId: "m\(i)", body: "hello \(i)") }
        node.clock.advance(ms: 60_000)
        _ = await node.conversations.trimIdle(now: node.clock.nowMs(), idleMs: 60_000)
        #expect(await actor.cachedMessages == 0)
        let page = try await actor.history(for: b, before: nil, after: 15, limit: 10)
        #expect(page.messages.map(\.body) == (16...20).map { "hello \($0)" })
        let repeatSend = try await actor.send(from: a, clientMsgId: "m3", body: "other")
        #expect(!repeatSend.created && repeatSend.message.body == "hello 3")
    }

    @Test func aPartitionNotLedHereIsUnavailableAndAnUnkeyedAppendIsRefused() async throws {
        let led = Array(Partitioning.all.prefix(32))
        let node = Node(leading: led)
        var refused = 0, registered = 0
        for i in 0..<40 {
            node.clock.advance(ms: 60_000)  // past the registration rate limit
            do {
                let id = try await node.user("user\(i)")
                #expect(led.contains(Partitioning.partition(ofPoint: KeyPoint.of(id: id))))
                registered += 1
            } catch ChatError.unavailable(let why) {
                #expect(why.contains("not led by this node"), "\(why)")
                refused += 1
            }
        }
        #expect(refused > 0 && registered > 0)
        await #expect(throws: ReplicatedJournalError.unkeyed) { _ = try await node.journal.append(batch: [(8, [1])]) }
    }
}
