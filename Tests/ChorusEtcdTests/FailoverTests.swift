import ChorusCluster
import ChorusCoordinator
import ChorusCore
import ChorusEtcd
import ChorusPeer
import ChorusReplica
import ChorusReplication
import ChorusTestKit
import NIOPosix
import Synchronization
import Testing

/// The pieces of a failover together, in one process: a real etcd, the partition table, a leader
/// and its followers over in-memory logs, fences sent through the peer codec.
@Suite(.serialized, .timeLimit(.minutes(1))) struct FailoverTests {
    /// Routes replication requests to each node's copies; a node can be cut off.
    final class Replicas: PeerTransport {
        let nodes = Mutex<[String: FollowerCopies]>([:])
        let cut = Mutex<Set<String>>([])

        func request(_ payload: [UInt8], to node: String, reply: @escaping @Sendable (Result<[UInt8], ChatError>) -> Void) {
            guard !cut.withLock({ $0.contains(node) }), let f = nodes.withLock({ $0[node] }) else { return reply(.failure(.unavailable("\(node) is down"))) }
            guard case .replication(let r) = try? PeerCodec.decodeRequest(payload) else { return reply(.failure(.badRequest("not replication"))) }
            f.handle(r, from: "peer") { reply(.success(PeerCodec.encode($0))) }
        }

        func send(_ payload: [UInt8], to node: String) {}
    }

    final class Acks: Sendable {
        let results = Mutex<[Result<UInt64, ChatError>]>([])
        var completion: LeaderCopy.Completion { { r in self.results.withLock { $0.append(r.map(\.index)) } } }
        var all: [Result<UInt64, ChatError>] { results.withLock { $0 } }
    }

    static func settle(_ journals: [InMemoryJournal]) {
        for _ in 0..<10 { for j in journals { j.hold(); j.release() } }
    }

    @Test func aDeadLeadersPartitionMovesWithEveryAcknowledgedRecord() async throws {
        let etcd = try EtcdServer()
        let store = PartitionTableStore(client: EtcdClient(endpoints: [EtcdEndpoint(url: etcd.url)!], group: MultiThreadedEventLoopGroup.singleton), cluster: "f")
        let ring = HashRing(members: ["n1", "n2", "n3"])
        let (table, _) = try await store.bootstrap(PartitionAssignment.initialTable(ring: ring, factor: 3))
        let p = try #require(table.first { $0.value.assignment.leader == "n1" }?.key)
        let replicas = table[p]!.assignment.replicas

        let transport = Replicas()
        var journals: [String: InMemoryJournal] = [:]
        var copies: [String: FollowerCopies] = [:]
        for (i, id) in replicas.enumerated() {
            let j = InMemoryJournal()
            journals[id] = j
            copies[id] = FollowerCopies(journal: j, incarnation: UInt64(100 + i), recovered: PartitionReplay(), inSync: true) { _ in }
        }
        transport.nodes.withLock { $0 = copies }
        let client = PeerClient(transport)
        let all = Array(journals.values)

        // n1 leads epoch 1 and gets three records acknowledged.
        let acks = Acks()
        let old = LeaderCopy(
            partition: p, epoch: 1, followers: replicas.filter { $0 != "n1" }, ackReplicas: 2, replay: PartitionReplay(),
            journal: journals["n1"]!, client: client, async: { $0() }) { _ in }
        for v in UInt8(1)...3 {
            old.append([ReplicatedRecord(kind: 8, payload: [v])], completion: acks.completion)
            Self.settle(all)
        }
        #expect(acks.all == [.success(1), .success(2), .success(3)])

        // n1 is cut off. A survivor fences the others through the codec, chooses, swaps in etcd.
        transport.cut.withLock { $0 = ["n1"] }
        let runner = FailoverRunner(store: store, ackReplicas: 2) { part, epoch, replicas in
            var votes: [String: FailoverRunner.Vote] = [:]
            for r in replicas {
                if case .fenced(.promised(let position, let incarnation))? = try? await client.call(.replication(.fence(partition: part, epoch: epoch)), to: r) {
                    votes[r] = .init(position: position, incarnation: incarnation)
                }
                Self.settle(all)
            }
            return votes
        }
        guard case .promoted(let next) = try await runner.takeOver(p, from: table[p]!) else { Issue.record("no takeover"); return }
        #expect(next.epoch == 2 && next.leader != "n1")
        #expect(try await store.read().table[p]?.assignment == next)

        // The new leader goes on from its follower copy, which holds every acknowledged record.
        let newCopy = try #require(copies[next.leader]?.copy(p))
        #expect(newCopy.history.lastIndex >= 3)
        #expect(next.mayLead(next.leader, incarnation: UInt64(100 + replicas.firstIndex(of: next.leader)!)))
        let leader = LeaderCopy(
            partition: p, epoch: next.epoch, followers: replicas.filter { $0 != next.leader }, ackReplicas: 2, replay: PartitionReplay(copies: [p: newCopy]),
            journal: journals[next.leader]!, client: client, async: { $0() }) { _ in }
        let later = Acks()
        leader.append([ReplicatedRecord(kind: 8, payload: [4])], completion: later.completion)
        Self.settle(all)
        leader.pump(heartbeat: true)
        Self.settle(all)
        #expect(later.all == [.success(4)])
        #expect(leader.copy?.committed == 4)

        // n1 comes back still believing it leads epoch 1: the fence makes it acknowledge nothing.
        transport.cut.withLock { $0 = [] }
        let stale = Acks()
        old.append([ReplicatedRecord(kind: 8, payload: [99])], completion: stale.completion)
        Self.settle(all)
        guard case .failure(.unavailable)? = stale.all.first else { Issue.record("the old leader acknowledged: \(stale.all)"); return }
        // Every surviving copy holds the acknowledged records, 1 to 4, and not n1's late one.
        for id in replicas where id != "n1" {
            var replay = PartitionReplay()
            var applied: [UInt8] = []
            for r in journals[id]!.records {
                for a in try replay.replay(try ReplicationRecord.decode(kind: r.kind, payload: r.payload), lsn: r.lsn) {
                    if case .apply(_, let payload, _) = a { applied.append(payload[0]) }
                }
            }
            let held = (replay.copies[p]?.pending.map { $0.payload[0] } ?? [])
            #expect(Array((applied + held).prefix(4)) == [1, 2, 3, 4], "\(id)")
            #expect(!(applied + held).contains(99))
        }
    }
}
