import ChorusCore
import ChorusPeer
import ChorusReplica
import ChorusReplication
import ChorusTestKit
import Synchronization
import Testing

/// A log whose completions run only when the test says, first to last: a log whose first batch is
/// fsynced while the next still waits.
final class GatedJournal: Journal {
    private let state = Mutex<(records: [JournalRecord], waiting: [(UInt64, @Sendable (Result<UInt64, any Error>) -> Void)])>(([], []))

    var records: [JournalRecord] { state.withLock { $0.records } }
    var isHealthy: Bool { true }

    func append(batch records: [(kind: UInt16, payload: [UInt8])], completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
        state.withLock { s in
            for r in records { s.records.append(JournalRecord(lsn: UInt64(s.records.count + 1), kind: r.kind, payload: r.payload)) }
            s.waiting.append((UInt64(s.records.count), completion))
        }
    }

    func append(kind: UInt16, payload: [UInt8]) async throws -> UInt64 { fatalError("not used") }
    func append(batch records: [(kind: UInt16, payload: [UInt8])]) async throws -> ClosedRange<UInt64> { fatalError("not used") }
    func read(from lsn: UInt64, limit: Int) throws -> [JournalRecord] {
        state.withLock { Array($0.records.dropFirst(Int(lsn) - 1).prefix(limit)) }
    }

    /// Runs the oldest `count` waiting completions.
    func complete(_ count: Int) {
        let ready = state.withLock { s in defer { s.waiting.removeFirst(min(count, s.waiting.count)) }; return Array(s.waiting.prefix(count)) }
        for (lsn, c) in ready { c(.success(lsn)) }
    }
}

extension LeaderCopyTests {
    /// The leader's copy counts toward W only through the batches its log has made durable, not
    /// through records merely enqueued after them.
    @Test func theLeadersOwnCopyCountsOnlyWhatItsLogMadeDurable() {
        let transport = LoopbackReplicas()
        var followerJournals: [InMemoryJournal] = []
        for id in ["n2", "n3"] {
            let j = InMemoryJournal()
            followerJournals.append(j)
            let f = FollowerCopies(journal: j, incarnation: 1, recovered: PartitionReplay(), inSync: true) { _ in }
            transport.followers.withLock { $0[id] = f }
        }
        transport.cut.withLock { $0 = ["n3"] }  // W = 2 of the leader and n2
        let log = GatedJournal()
        let leader = LeaderCopy(
            partition: Self.p, epoch: 1, followers: ["n2", "n3"], ackReplicas: 2, replay: PartitionReplay(), journal: log,
            client: PeerClient(transport), async: { $0() }) { _ in }
        let out = Outcomes()
        leader.append(Self.events([1]), completion: out.completion)
        leader.append(Self.events([2]), completion: out.completion)
        log.complete(1)  // record 1 is durable on the leader; record 2 still waits for its fsync
        for _ in 0..<5 {
            for j in followerJournals { j.hold(); j.release() }
            leader.pump(heartbeat: true)
        }
        #expect(leader.commitIndex == 1)  // n2 holds 2, but the leader's copy of it is not durable
        #expect(out.all == [.success(1)])
        log.complete(10)
        for _ in 0..<3 {
            for j in followerJournals { j.hold(); j.release() }
            log.complete(10)
        }
        #expect(leader.commitIndex == 2)
        #expect(out.all == [.success(1), .success(2)])
    }
}

extension LeaderCopyTests {
    /// A new leader serves once `start` completes: by then every record it inherited is applied.
    @Test func startCompletesOnlyOnceTheInheritedRecordsAreApplied() async throws {
        let journal = InMemoryJournal()
        var inherited = PartitionReplay()
        for v in UInt8(1)...2 {
            let record = ReplicationRecord.replicated(partition: Self.p, epoch: 1, index: UInt64(v), kind: 8, payload: [v])
            _ = try inherited.replay(record, lsn: try await journal.append(kind: record.kind, payload: record.encode()))
        }
        let c = Cluster(ackReplicas: 2)
        let applied = Mutex<[UInt8]>([])
        let leader = LeaderCopy(
            partition: Self.p, epoch: 2, followers: ["n2", "n3"], ackReplicas: 2, replay: inherited, journal: journal,
            client: PeerClient(c.transport), async: { $0() }) { actions in
            applied.withLock { a in for case .apply(_, let payload, _) in actions { a.append(payload[0]) } }
        }
        let seenAtStart = Mutex<[UInt8]?>(nil)
        leader.start { result in
            #expect(result.map(\.index) == .success(3))
            seenAtStart.withLock { $0 = applied.withLock { $0 } }
        }
        for _ in 0..<10 {
            journal.hold(); journal.release()
            c.settle()
            leader.pump(heartbeat: true)
        }
        #expect(seenAtStart.withLock { $0 } == [1, 2])
    }
}
