import ChorusEtcd
import NIOCore
import NIOPosix
import Testing

/// The client against a real etcd on loopback.
@Suite(.serialized, .timeLimit(.minutes(1))) struct EtcdClientTests {
    static let group = MultiThreadedEventLoopGroup.singleton

    static func client(_ server: EtcdServer, extra: [String] = []) -> EtcdClient {
        EtcdClient(endpoints: (extra + [server.url]).map { EtcdEndpoint(url: $0)! }, group: group)
    }

    @Test func endpointsParse() {
        #expect(EtcdEndpoint(url: "http://127.0.0.1:2379") == EtcdEndpoint(url: "http://127.0.0.1:2379/"))
        #expect(EtcdEndpoint(url: "http://127.0.0.1:2379")?.port == 2379)
        #expect(EtcdEndpoint(url: "https://127.0.0.1:2379") == nil)
        #expect(EtcdEndpoint(url: "http://127.0.0.1") == nil)
        #expect(EtcdEndpoint(url: "http://:2379") == nil)
        #expect(EtcdEndpoint(url: "http://h:70000") == nil)
    }

    @Test func putGetRangeDelete() async throws {
        let etcd = try EtcdServer()
        let c = Self.client(etcd)
        let bytes: [UInt8] = [0, 1, 2, 0xFF, 0x7B]
        let r1 = try await c.put("/t/a", bytes)
        let r2 = try await c.put("/t/b", Array("two".utf8))
        try await c.put("/u/c", Array("other prefix".utf8))
        #expect(r2 == r1 + 1)
        #expect(try await c.get("/t/a")?.value == bytes)
        #expect(try await c.get("/t/none") == nil)
        let range = try await c.range(prefix: "/t/")
        #expect(range.kvs.map(\.keyString) == ["/t/a", "/t/b"])
        #expect(range.revision == r2 + 1)
        try await c.delete("/t/a")
        #expect(try await c.range(prefix: "/t/").kvs.map(\.keyString) == ["/t/b"])
    }

    @Test func compareAndSwap() async throws {
        let etcd = try EtcdServer()
        let c = Self.client(etcd)
        // Create only if absent: the first wins, the second sees the winner's value.
        let first = try await c.txn([.versionEquals(key: "/p/0", 0)], success: [.put(key: "/p/0", value: Array("e1 n1".utf8), lease: 0)], failure: [.get(key: "/p/0")])
        let second = try await c.txn([.versionEquals(key: "/p/0", 0)], success: [.put(key: "/p/0", value: Array("e1 n2".utf8), lease: 0)], failure: [.get(key: "/p/0")])
        #expect(first.succeeded)
        #expect(!second.succeeded)
        #expect(second.kvs.map(\.valueString) == ["e1 n1"])
        // Swap on the revision read: a stale revision loses.
        let current = try #require(try await c.get("/p/0"))
        let bump = try await c.txn([.modRevisionEquals(key: "/p/0", current.modRevision)], success: [.put(key: "/p/0", value: Array("e2 n2".utf8), lease: 0)])
        let stale = try await c.txn([.modRevisionEquals(key: "/p/0", current.modRevision)], success: [.put(key: "/p/0", value: Array("e2 n3".utf8), lease: 0)])
        #expect(bump.succeeded && !stale.succeeded)
        let value = try await c.txn([.valueEquals(key: "/p/0", Array("e2 n2".utf8))], success: [.get(key: "/p/0")])
        #expect(value.succeeded && value.kvs.first?.version == 2)
    }

    @Test func leasesKeepKeysAliveUntilRevoked() async throws {
        let etcd = try EtcdServer()
        let c = Self.client(etcd)
        let lease = try await c.grantLease(ttlSeconds: 5)
        try await c.put("/nodes/n1", Array("alive".utf8), lease: lease)
        #expect(try await c.keepAlive(lease: lease) == 5)
        #expect(try await c.get("/nodes/n1")?.lease == lease)
        try await c.revoke(lease: lease)
        #expect(try await c.get("/nodes/n1") == nil)
        await #expect(throws: EtcdError.leaseExpired(lease)) { try await c.keepAlive(lease: lease) }
    }

    @Test func aWatchSeesChangesInOrderAndALapsedLease() async throws {
        let etcd = try EtcdServer()
        let c = Self.client(etcd)
        let start = try await c.range(prefix: "/w/").revision
        let (events, sink) = AsyncStream.makeStream(of: EtcdWatchEvent.self)
        let watch = EtcdWatch(client: c, prefix: "/w/", fromRevision: start + 1, onEvents: { for e in $0 { sink.yield(e) } })
        defer { watch.cancel() }
        let lease = try await c.grantLease(ttlSeconds: 3)
        try await c.put("/w/a", Array("1".utf8))
        try await c.put("/w/b", Array("2".utf8), lease: lease)
        try await c.put("/elsewhere", Array("x".utf8))
        try await c.delete("/w/a")
        var seen: [String] = []
        for await e in events {
            seen.append("\(e.kind == .put ? "put" : "delete") \(e.kv.keyString)")
            if seen.count == 4 { break }
        }
        // The lease was never kept alive: etcd deletes its key once the TTL runs out.
        #expect(seen == ["put /w/a", "put /w/b", "delete /w/a", "delete /w/b"])
    }

    @Test func aWatchResumesAfterEtcdRestartsWithoutRepeatsOrGaps() async throws {
        let etcd = try EtcdServer()
        let c = Self.client(etcd)
        let (events, sink) = AsyncStream.makeStream(of: EtcdWatchEvent.self)
        let watch = EtcdWatch(client: c, prefix: "/r/", fromRevision: 1, onEvents: { for e in $0 { sink.yield(e) } })
        defer { watch.cancel() }
        try await c.put("/r/1", [1])
        var iterator = events.makeAsyncIterator()
        #expect(await iterator.next()?.kv.keyString == "/r/1")
        etcd.kill()
        try etcd.start()
        try await c.put("/r/2", [2])
        try await c.put("/r/3", [3])
        #expect(await iterator.next()?.kv.keyString == "/r/2")
        #expect(await iterator.next()?.kv.keyString == "/r/3")
    }

    @Test func anUnreachableEndpointIsSkipped() async throws {
        let etcd = try EtcdServer()
        let dead = "http://127.0.0.1:\(try EtcdServer.freePort())"
        let c = Self.client(etcd, extra: [dead])
        try await c.put("/k", [7])
        #expect(try await c.get("/k")?.value == [7])
        let none = EtcdClient(endpoints: [EtcdEndpoint(url: dead)!], group: Self.group)
        await #expect {
            try await none.get("/k")
        } throws: { error in
            if case .unreachable = error as? EtcdError { return true }
            return false
        }
    }
}
