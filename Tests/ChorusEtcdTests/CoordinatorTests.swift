import ChorusCluster
import ChorusCoordinator
import ChorusEtcd
import ChorusReplication
import NIOPosix
import Testing

/// The control plane against a real etcd: the partition table, node leases, takeovers.
@Suite(.serialized, .timeLimit(.minutes(1))) struct CoordinatorTests {
    static let ring = HashRing(members: ["n1", "n2", "n3"])

    static func client(_ etcd: EtcdServer) -> EtcdClient {
        EtcdClient(endpoints: [EtcdEndpoint(url: etcd.url)!], group: MultiThreadedEventLoopGroup.singleton)
    }

    @Test func theFirstTableWinsAndEveryNodeReadsIt() async throws {
        let etcd = try EtcdServer()
        let store = PartitionTableStore(client: Self.client(etcd), cluster: "t")
        let mine = PartitionAssignment.initialTable(ring: Self.ring, factor: 3)
        let theirs = mine.mapValues { PartitionAssignment(epoch: 1, leader: $0.replicas[1], replicas: $0.replicas) }
        async let a = store.bootstrap(mine)
        async let b = store.bootstrap(theirs)
        let (ta, tb) = try await (a, b)
        #expect(ta.table == tb.table)
        #expect(ta.table.count == Partitioning.count)
        let written = ta.table.mapValues(\.assignment)
        #expect(written == mine || written == theirs)
        // A later start finds the table and changes nothing.
        let again = try await store.bootstrap(theirs == written ? mine : theirs)
        #expect(again.table == ta.table)
    }

    @Test func theFirstMembersWinAndAChangeIsASwapFromWhatWasRead() async throws {
        let etcd = try EtcdServer()
        let c = Self.client(etcd)
        let store = MembersStore(client: c, cluster: "t")
        #expect(try await store.read() == nil)
        let mine = ["n1": "127.0.0.1:7001", "n2": "127.0.0.1:7002"]
        let theirs = ["n1": "127.0.0.1:7001", "n3": "127.0.0.1:7003"]
        async let a = store.bootstrap(mine)
        async let b = store.bootstrap(theirs)
        let (ma, mb) = try await (a, b)
        #expect(ma == mb && (ma.members == mine || ma.members == theirs))
        // Watchers see a join; a swap from a stale read changes nothing.
        let (events, sink) = AsyncStream.makeStream(of: EtcdWatchEvent.self)
        let watch = EtcdWatch(client: c, prefix: store.key, fromRevision: ma.modRevision + 1, onEvents: { for e in $0 { sink.yield(e) } })
        defer { watch.cancel() }
        var joined = ma.members
        joined["n4"] = "127.0.0.1:7004"
        #expect(try await store.swap(from: ma, to: joined))
        #expect(try await store.swap(from: ma, to: [:].merging(ma.members) { a, _ in a }) == false, "someone changed them since")
        var seen: MembersStore.Snapshot?
        for await e in events {
            seen = try store.decode(e.kv)
            break
        }
        #expect(seen?.members == joined)
        #expect(try await store.read() == seen)
        #expect(MembersStore.decode(MembersStore.encode(joined)) == joined)
        #expect(MembersStore.decode("") == nil && MembersStore.decode("n1=a,n1=b") == nil && MembersStore.decode("=a") == nil)
    }

    @Test func aLeaseKeepsTheNodesKeyWhileRenewed() async throws {
        let etcd = try EtcdServer()
        let c = Self.client(etcd)
        // A TTL long enough that a loaded machine still checks within it.
        let lease = NodeLease(client: c, key: "/chorus/t/nodes/n1", value: Array("127.0.0.1:9081".utf8), ttl: .seconds(30))
        let id = try await lease.register()
        #expect(await lease.holds())
        #expect(try await c.get("/chorus/t/nodes/n1")?.valueString == "127.0.0.1:9081")
        #expect(try await c.get("/chorus/t/nodes/n1")?.lease == id)
        #expect(try await lease.renew())
        await lease.revoke()
        #expect(await lease.holds() == false)
        #expect(try await c.get("/chorus/t/nodes/n1") == nil)
    }

    @Test func aRestartedNodeEndsItsPreviousRunsLeaseAndPeersSeeItGo() async throws {
        let etcd = try EtcdServer()
        let c = Self.client(etcd)
        let key = "/chorus/t/nodes/n1"
        #expect(try await NodeLease.endPrevious(client: c, key: key) == nil)
        // The previous run: killed with its lease still running (a 30 s TTL the test never waits for).
        let previous = NodeLease(client: c, key: key, value: Array("127.0.0.1:9081".utf8), ttl: .seconds(30))
        let old = try await previous.register()
        let start = try await c.range(prefix: "/chorus/t/nodes/").revision
        let (events, sink) = AsyncStream.makeStream(of: EtcdWatchEvent.self)
        let watch = EtcdWatch(client: c, prefix: "/chorus/t/nodes/", fromRevision: start + 1, onEvents: { for e in $0 { sink.yield(e) } })
        defer { watch.cancel() }
        #expect(try await NodeLease.endPrevious(client: c, key: key) == old)
        let next = NodeLease(client: c, key: key, value: Array("127.0.0.1:9081".utf8), ttl: .seconds(30))
        let new = try await next.register()
        #expect(new != old)
        // Peers see the node leave, then come back under its new lease.
        var seen: [String] = []
        for await e in events {
            seen.append("\(e.kind == .put ? "put" : "delete") \(e.kv.lease)")
            if e.kind == .put { break }
        }
        #expect(seen == ["delete 0", "put \(new)"])
        // The previous run, were it still running, finds its lease gone.
        #expect(try await previous.renew() == false)
        #expect(try await c.get(key)?.lease == new)
    }

    @Test func aLeaseThatIsNotRenewedVanishesAndItsHolderKnowsFirst() async throws {
        let etcd = try EtcdServer()
        let c = Self.client(etcd)
        let lease = NodeLease(client: c, key: "/chorus/t/nodes/n1", value: Array("127.0.0.1:9081".utf8), ttl: .seconds(3))
        let start = try await c.range(prefix: "/chorus/t/nodes/").revision
        let (events, sink) = AsyncStream.makeStream(of: EtcdWatchEvent.self)
        let watch = EtcdWatch(client: c, prefix: "/chorus/t/nodes/", fromRevision: start + 1, onEvents: { for e in $0 { sink.yield(e) } })
        defer { watch.cancel() }
        try await lease.register()
        // No keep-alives (a paused node): etcd deletes the key when the TTL runs out.
        var seen: [String] = []
        for await e in events {
            seen.append("\(e.kind == .put ? "put" : "delete") \(e.kv.keyString)")
            if e.kind == .delete { break }
        }
        #expect(seen == ["put /chorus/t/nodes/n1", "delete /chorus/t/nodes/n1"])
        // By then the node itself has stopped claiming the lease (its view ends before etcd's).
        #expect(await lease.holds() == false)
        #expect(try await lease.renew() == false)
    }

    @Test func aTakeoverFencesChoosesAndSwapsOnce() async throws {
        let etcd = try EtcdServer()
        let store = PartitionTableStore(client: Self.client(etcd), cluster: "t")
        let (table, _) = try await store.bootstrap(PartitionAssignment.initialTable(ring: Self.ring, factor: 3))
        let p = try #require(table.first { $0.value.assignment.leader == "n1" }?.key)
        let entry = table[p]!
        let others = entry.assignment.replicas.filter { $0 != "n1" }
        // The two survivors promise epoch 2; the second holds more.
        let fenced = FailoverRunner(store: store, ackReplicas: 2) { part, epoch, replicas in
            #expect(part == p && epoch == 2 && replicas == entry.assignment.replicas)
            return [
                others[0]: .init(position: LogPosition(lastEpoch: 1, lastIndex: 5), incarnation: 10),
                others[1]: .init(position: LogPosition(lastEpoch: 1, lastIndex: 7), incarnation: 11),
            ]
        }
        let promoted = PartitionAssignment(epoch: 2, leader: others[1], replicas: entry.assignment.replicas, leaderIncarnation: 11)
        #expect(try await fenced.takeOver(p, from: entry) == .promoted(promoted))
        // Another node acting on the same (now stale) entry loses.
        #expect(try await fenced.takeOver(p, from: entry) == .lostRace)
        let now = try await store.read().table[p]!
        #expect(now.assignment.epoch == 2 && now.assignment.leader == others[1])
        // One answer of three is too few for W = 2: nothing changes.
        let lonely = FailoverRunner(store: store, ackReplicas: 2) { _, _, _ in
            [others[0]: .init(position: LogPosition(lastEpoch: 2, lastIndex: 9), incarnation: 10)]
        }
        #expect(try await lonely.takeOver(p, from: now) == .tooFewAnswers(1))
        #expect(try await store.read().table[p] == now)
    }
}
