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
        let inboxes = InboxDirectory()
        let delivery = Delivery()
        let placement: PlacementCell
        let accounts: Accounts
        let conversations: Conversations

        /// `replicatedPlacement`: the node's placement names it leader of every partition, so each
        /// partition's records must rebuild its own users' inboxes (entries for users of other
        /// partitions go through the fan-out, here to this node's own inbox writer).
        init(leading partitions: [PartitionId] = Partitioning.all, replicatedPlacement: Bool = false) {
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
            placement = PlacementCell(Placement(
                ring: HashRing(members: ["n1"]), selfId: "n1", leaders: replicatedPlacement ? Array(repeating: "n1", count: Partitioning.count) : nil))
            var config = Accounts.Configuration()
            config.hasher = PasswordHasher(iterations: PasswordHasher.insecureFastIterations)
            config.placement = placement
            accounts = Accounts(state: AccountsState(), journal: journal, clock: clock, configuration: config)
            var fanout: InboxFanout?
            if replicatedPlacement {
                let writer = RemoteInboxWriter(journal: journal, inboxes: inboxes, placement: placement)
                let delivery = delivery
                let f = InboxFanout(send: { items, _, reply in delivery.send(items, writer: writer, reply: reply) }, sleep: { _ in })
                delivery.fanout.withLock { $0 = f }
                fanout = f
            }
            conversations = Conversations(
                state: EngineState(), accounts: accounts, journal: journal, inboxes: inboxes, clock: clock, limits: ChatLimits(),
                placement: placement, fanout: fanout)
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

    /// The fan-out's deliveries to this node's own inbox writer, counted so a test can wait until
    /// every queued entry is delivered.
    final class Delivery: Sendable {
        let fanout = Mutex<InboxFanout?>(nil)
        let state = Mutex<(inFlight: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))

        func send(_ items: [RemoteInboxItem], writer: RemoteInboxWriter, reply: @escaping @Sendable (Result<[UInt64], ChatError>) -> Void) {
            state.withLock { $0.inFlight += 1 }
            writer.append(items) { [self] result in
                reply(result)  // the fan-out drops the batch and sends what queued meanwhile
                let queued = fanout.withLock { $0?.queuedTotal ?? 0 }
                let ready = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                    s.inFlight -= 1
                    guard s.inFlight == 0, queued == 0 else { return [] }
                    defer { s.waiters = [] }
                    return s.waiters
                }
                for w in ready { w.resume() }
            }
        }

        /// Returns once nothing is queued or being delivered.
        func idle() async {
            await withCheckedContinuation { c in
                let now = state.withLock { s -> Bool in
                    if s.inFlight == 0, fanout.withLock({ $0?.queuedTotal ?? 0 }) == 0 { return true }
                    s.waiters.append(c)
                    return false
                }
                if now { c.resume() }
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

    /// Each partition's committed records alone rebuild its users' inboxes, entry for entry, as a
    /// new leader of that partition alone would: messages, read and delivered receipts included.
    @Test func eachPartitionsRecordsRebuildItsUsersInboxes() async throws {
        let node = Node(replicatedPlacement: true)
        var users: [String] = []
        for i in 0..<6 {
            node.clock.advance(ms: 60_000)
            users.append(try await node.user("user\(i)"))
        }
        let partitionOf = { (id: String) in Partitioning.partition(ofPoint: KeyPoint.of(id: id)) }
        #expect(Set(users.map(partitionOf)).count > 1)
        let (group, _) = try await node.conversations.create(by: users[0], members: Array(users[1...]), title: "g")
        let (direct, _) = try await node.conversations.create(by: users[1], members: [users[2]], title: nil)
        for i in 0..<12 {
            let id = i % 3 == 0 ? direct.id : group.id
            let from = id == direct.id ? users[1 + i % 2] : users[i % users.count]
            _ = try await node.conversations.conversation(id).send(from: from, clientMsgId: "m\(i)", body: "hello \(i)")
        }
        try await node.conversations.conversation(group.id).read(by: users[3], upTo: 5)
        await node.delivery.idle()
        try await node.conversations.received(by: users[2], upTo: node.inboxes.inbox(users[2]).entries(after: 0, limit: 1000).last!.seq)
        #expect(partitionOf(group.id) != partitionOf(users[3]) || partitionOf(group.id) != partitionOf(users[4]))

        await node.delivery.idle()
        // Replay each partition's events alone, as a new leader of only that partition would.
        var byPartition: [PartitionId: [(UInt64, UInt16, [UInt8])]] = [:]
        for r in node.log.records {
            guard case .replicated(let p, _, _, let kind, let payload) = try ReplicationRecord.decode(kind: r.kind, payload: r.payload) else { continue }
            byPartition[p, default: []].append((r.lsn, kind, payload))
        }
        let placement = node.placement
        for u in users {
            var state = EngineState()
            state.sharesInbox = { placement.sharesInbox(user: $0, with: $1) }
            let rebuilt = InboxDirectory()
            for (lsn, kind, payload) in byPartition[partitionOf(u)] ?? [] { try state.apply(kind: kind, payload: payload, lsn: lsn, inboxes: rebuilt) }
            let live = node.inboxes.inbox(u).entries(after: 0, limit: 10_000)
            let replayed = rebuilt.inbox(u).entries(after: 0, limit: 10_000)
            #expect(!live.isEmpty)
            #expect(replayed.map(\.seq) == live.map(\.seq) && replayed.map(\.entry) == live.map(\.entry), "\(u) in \(partitionOf(u)): live \(live) replayed \(replayed)")
        }
    }
}
