import ChorusCluster
import ChorusCore
import ChorusPeer
import ChorusReplica
import ChorusReplication
import ChorusTestKit
import Synchronization
import Testing

/// The shells (one `LeaderCopy`, two `FollowerCopies`, each over its own in-memory log) under random
/// appends, cut links, held and released log completions and heartbeats. At the end, with every
/// fault healed: each acknowledged append is on every copy at the index it was acknowledged with,
/// and each log replays to the copy its shell holds.
@Suite struct ReplicaShellsRandomTests {
    @Test(arguments: Array(UInt64(1)...100))
    func randomRun(seed: UInt64) async throws {
        var rng = SplitMix64(seed: seed)
        let p = PartitionId(1)!
        let c = LeaderCopyTests.Cluster(ackReplicas: 2, partition: p)
        let (transport, leader, followers, leaderJournal) = (c.transport, c.leader, c.followers, c.leaderJournal)
        let journals = c.journals
        let acked = Mutex<[UInt64: UInt8]>([:])
        let order = Mutex<[LeaderCopy.Committed]>([])
        var held: Set<String> = []
        let all = ["n1": leaderJournal, "n2": journals["n2"]!, "n3": journals["n3"]!]
        var value: UInt8 = 0
        for _ in 0..<200 {
            switch rng.next() % 6 {
            case 0, 1:
                value &+= 1
                let v = value
                leader.append([ReplicatedRecord(kind: 8, payload: [v])]) { r in
                    if case .success(let at) = r {
                        acked.withLock { $0[at.index] = v }
                        order.withLock { $0.append(at) }
                    }
                }
            case 2:
                let id = ["n2", "n3"][Int(rng.next() % 2)]
                transport.cut.withLock { if $0.contains(id) { $0.remove(id) } else { $0.insert(id) } }
            case 3:
                let id = ["n1", "n2", "n3"][Int(rng.next() % 3)]
                if held.contains(id) { all[id]!.release(); held.remove(id) } else { all[id]!.hold(); held.insert(id) }
            case 4: leader.pump(heartbeat: true)
            default: leader.pump()
            }
        }
        for id in held { all[id]!.release() }
        transport.cut.withLock { $0 = [] }
        for _ in 0..<20 {
            for j in all.values { j.hold(); j.release() }
            leader.pump(heartbeat: true)
        }
        let acks = acked.withLock { $0 }
        #expect(!acks.isEmpty)
        // Completions come in index order, each naming where the leader's log holds the record.
        let completed = order.withLock { $0 }
        #expect(completed.map(\.index) == completed.map(\.index).sorted())
        let leaderRecords = Dictionary(uniqueKeysWithValues: leaderJournal.records.map { ($0.lsn, $0) })
        for at in completed {
            guard let r = leaderRecords[at.lsn], case .replicated(_, _, let i, _, let payload) = try ReplicationRecord.decode(kind: r.kind, payload: r.payload)
            else { Issue.record("no replicated record at LSN \(at.lsn)"); continue }
            #expect(i == at.index && payload[0] == acks[i])
        }
        for (id, journal) in all {
            var replay = PartitionReplay()
            for r in journal.records { _ = try replay.replay(try ReplicationRecord.decode(kind: r.kind, payload: r.payload), lsn: r.lsn) }
            let copy = id == "n1" ? leader.copy : followers[id]!.copy(p)
            #expect(replay.copies[p] == copy, "\(id) replays to another copy")
            // The copy's records by index, committed or not.
            var byIndex: [UInt64: UInt8] = [:]
            for r in journal.records {
                if case .replicated(_, _, let i, _, let payload) = try ReplicationRecord.decode(kind: r.kind, payload: r.payload) { byIndex[i] = payload[0] }
            }
            for (i, v) in acks { #expect(byIndex[i] == v, "\(id) lacks acknowledged \(v) at \(i)") }
        }
    }
}
