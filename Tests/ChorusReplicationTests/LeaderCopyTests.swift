import ChorusCluster
import ChorusCore
import ChorusPeer
import ChorusReplica
import ChorusReplication
import ChorusTestKit
import Synchronization
import Testing

/// Nodes in one process whose replication requests go through the peer codec to each other's
/// `FollowerCopies`; a node can be cut off (its requests fail `unavailable`).
final class LoopbackReplicas: PeerTransport {
    let followers = Mutex<[String: FollowerCopies]>([:])
    let cut = Mutex<Set<String>>([])

    func request(_ payload: [UInt8], to node: String, reply: @escaping @Sendable (Result<[UInt8], ChatError>) -> Void) {
        guard !cut.withLock({ $0.contains(node) }), let f = followers.withLock({ $0[node] }) else {
            return reply(.failure(.unavailable("\(node) cut off")))
        }
        guard case .replication(let r) = try? PeerCodec.decodeRequest(payload) else { return reply(.failure(.badRequest("not replication"))) }
        f.handle(r, from: "leader") { answer in reply(.success(PeerCodec.encode(answer))) }
    }

    func send(_ payload: [UInt8], to node: String) {}
}

@Suite struct LeaderCopyTests {
    static let p = PartitionId(5)!

    final class Outcomes: Sendable {
        let results = Mutex<[Result<UInt64, ChatError>]>([])
        var completion: LeaderCopy.Completion { { r in self.results.withLock { $0.append(r.map(\.index)) } } }
        var all: [Result<UInt64, ChatError>] { results.withLock { $0 } }
    }

    /// A leader of partition `partition` in epoch 1 on n1, with n2 and n3 following, each over its
    /// own in-memory log.
    struct Cluster {
        let transport = LoopbackReplicas()
        var journals: [String: InMemoryJournal] = [:]
        var followers: [String: FollowerCopies] = [:]
        let leaderJournal = InMemoryJournal()
        let leader: LeaderCopy

        init(ackReplicas: Int, partition: PartitionId = LeaderCopyTests.p, kept: Int = LeaderCopy.defaultKept) {
            for id in ["n2", "n3"] {
                let j = InMemoryJournal()
                journals[id] = j
                let f = FollowerCopies(journal: j, incarnation: 1, recovered: PartitionReplay(), inSync: true) { _ in }
                followers[id] = f
                transport.followers.withLock { $0[id] = f }
            }
            leader = LeaderCopy(
                partition: partition, epoch: 1, followers: ["n2", "n3"], ackReplicas: ackReplicas, replay: PartitionReplay(),
                journal: leaderJournal, client: PeerClient(transport), kept: kept, async: { $0() }) { _ in }
        }

        /// Runs every completion queued so far on every journal, until nothing more is queued.
        func settle() {
            for _ in 0..<10 {
                leaderJournal.hold(); leaderJournal.release()
                for j in journals.values { j.hold(); j.release() }
            }
        }
    }

    static func events(_ values: [UInt8]) -> [ReplicatedRecord] { values.map { ReplicatedRecord(kind: 8, payload: [$0]) } }

    @Test func anAppendCompletesOnceTwoCopiesHoldIt() {
        let c = Cluster(ackReplicas: 2)
        let out = Outcomes()
        c.transport.cut.withLock { $0 = ["n2", "n3"] }
        c.leader.append(Self.events([1, 2]), completion: out.completion)
        c.settle()
        #expect(out.all.isEmpty)  // the leader's copy alone is one of two
        c.transport.cut.withLock { $0 = ["n3"] }
        c.leader.pump(heartbeat: true)
        c.settle()
        #expect(out.all == [.success(2)])
        #expect(c.followers["n2"]?.copy(Self.p)?.history.lastIndex == 2)
        #expect(c.followers["n3"]?.copy(Self.p) == nil)
        // n3 comes back: a heartbeat probes it and it catches up, committed records included.
        c.transport.cut.withLock { $0 = [] }
        c.leader.append(Self.events([3]), completion: out.completion)
        c.settle()
        c.leader.pump(heartbeat: true)
        c.settle()
        #expect(out.all == [.success(2), .success(3)])
        #expect(c.followers["n3"]?.copy(Self.p)?.history.lastIndex == 3)
        #expect(c.followers["n3"]?.copy(Self.p)?.committed == 3)
        #expect(c.leader.copy?.committed == 3)
    }

    /// A hand-off retires the copy only once every record is committed with its commit record
    /// replayed here: a node following from a copy whose commit lags would apply its own records
    /// again when the next leader commits them.
    @Test func aLeaderRetiresOnlyOnceItsCommitRecordIsReplayedThenRefusesAppends() {
        let c = Cluster(ackReplicas: 2)
        let inCompletion = Mutex<[Bool]>([])
        let leader = c.leader
        leader.append(Self.events([1, 2])) { result in
            // Committed, acknowledged; the commit record is not logged yet.
            inCompletion.withLock { $0.append(leader.retire() != nil) }
        }
        c.settle()
        #expect(inCompletion.withLock { $0 } == [false])
        #expect(c.leader.caughtUp("n2") && c.leader.caughtUp("n3"))
        let copy = c.leader.retire()
        #expect(copy?.committed == 2 && copy?.history.lastIndex == 2 && copy?.pending.isEmpty == true && copy?.promised == 1)
        #expect(c.leader.retire() == nil, "retired once")
        let out = Outcomes()
        c.leader.append(Self.events([3]), completion: out.completion)
        c.settle()
        #expect(out.all.count == 1 && (try? out.all[0].get()) == nil)
    }

    @Test func aFencedLeaderAcknowledgesNothing() {
        let c = Cluster(ackReplicas: 2)
        let out = Outcomes()
        // Another node fences both followers for epoch 2: the epoch-1 leader is deposed.
        for f in c.followers.values { f.handle(.fence(partition: Self.p, epoch: 2), from: "n4") { _ in } }
        c.settle()
        c.leader.append(Self.events([1]), completion: out.completion)
        c.settle()
        #expect(out.all == [.failure(.unavailable("partition p5 has a newer leader"))])
        c.leader.append(Self.events([2]), completion: out.completion)
        #expect(out.all.count == 2)
        guard case .failure(.unavailable)? = out.all.last else { Issue.record("acknowledged after a fence"); return }
        #expect(c.leader.commitIndex == 0)
        #expect(c.followers.values.allSatisfy { $0.copy(Self.p)?.history.lastIndex ?? 0 == 0 })
    }

    @Test func inheritedRecordsAreAppliedOnceCommittedAndOwnOnesNever() async throws {
        // The copy this node followed holds records 1-2 of epoch 1, never committed.
        let journal = InMemoryJournal()
        var inherited = PartitionReplay()
        for v in UInt8(1)...2 {
            let record = ReplicationRecord.replicated(partition: Self.p, epoch: 1, index: UInt64(v), kind: 8, payload: [v])
            let lsn = try await journal.append(kind: record.kind, payload: record.encode())
            _ = try inherited.replay(record, lsn: lsn)
        }
        let c = Cluster(ackReplicas: 2)
        let applied = Mutex<[UInt8]>([])
        let leader = LeaderCopy(
            partition: Self.p, epoch: 2, followers: ["n2", "n3"], ackReplicas: 2, replay: inherited, journal: journal,
            client: PeerClient(c.transport), async: { $0() }) { actions in
            applied.withLock { a in for case .apply(_, let payload, _) in actions { a.append(payload[0]) } }
        }
        let out = Outcomes()
        leader.append(Self.events([3]), completion: out.completion)
        for _ in 0..<10 {
            journal.hold(); journal.release()
            c.settle()
            leader.pump(heartbeat: true)
        }
        #expect(out.all == [.success(3)])
        #expect(applied.withLock { $0 } == [1, 2])  // 3 is the engine's own: it applied it on completion
        #expect(leader.copy?.committed == 3)
    }

    @Test func aFollowerBehindTheKeptRecordsIsSentThemFromTheLog() throws {
        let c = Cluster(ackReplicas: 2, kept: 2)
        let out = Outcomes()
        c.transport.cut.withLock { $0 = ["n3"] }
        for v in UInt8(1)...4 {
            c.leader.append(Self.events([v]), completion: out.completion)
            c.settle()
        }
        #expect(out.all == (1...4).map { .success(UInt64($0)) })  // n2 and the leader are two copies
        // n3 returns needing records 1 and 2, which the leader no longer keeps in memory (only 3
        // and 4): it reads them back from its log.
        c.transport.cut.withLock { $0 = [] }
        for _ in 0..<3 {
            c.leader.pump(heartbeat: true)
            c.settle()
        }
        #expect(c.followers["n3"]?.copy(Self.p)?.history.lastIndex == 4)
        let held = try c.journals["n3"]!.records.compactMap { r -> UInt8? in
            guard case .replicated(_, _, _, _, let payload) = try ReplicationRecord.decode(kind: r.kind, payload: r.payload) else { return nil }
            return payload[0]
        }
        #expect(held == [1, 2, 3, 4])
    }

    @Test func theLeadersLogReplaysToItsCopy() throws {
        let c = Cluster(ackReplicas: 2)
        let out = Outcomes()
        for v in UInt8(1)...5 {
            c.leader.append(Self.events([v]), completion: out.completion)
            c.settle()
        }
        #expect(out.all == (1...5).map { .success(UInt64($0)) })
        var replay = PartitionReplay()
        for r in c.leaderJournal.records { _ = try replay.replay(try ReplicationRecord.decode(kind: r.kind, payload: r.payload), lsn: r.lsn) }
        #expect(replay.copies[Self.p] == c.leader.copy)
        #expect(replay.copies[Self.p]?.committed == 5)
    }
}
