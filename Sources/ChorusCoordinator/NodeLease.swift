import ChorusEtcd
import ChorusReplication

/// This node's liveness in etcd: a lease with TTL `--lease` and the key `nodes/<id>` under it.
///
/// `holds()` is true only while the lease certainly still runs at etcd (`LeaseTimer`); the node
/// acknowledges nothing as a leader otherwise. A lease etcd dropped (the node was paused or cut off
/// past its TTL) is replaced by a new one: the node is alive again, but its partitions may have
/// moved, which the partition table says.
///
/// Runs on its own executor (`DedicatedExecutor`): keep-alives must not wait for the cooperative
/// pool, whose threads a burst of work (a promotion, a rebuild) can hold for longer than the TTL.
public actor NodeLease {
    private static let executor = DedicatedExecutor(label: "chorus.lease")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { Self.executor.asUnownedSerialExecutor() }

    public let client: EtcdClient
    public let key: String
    public let value: [UInt8]
    private var timer: LeaseTimer<ContinuousClock.Instant>
    public private(set) var lease: Int64?
    private var ttlSeconds: Int64

    public init(client: EtcdClient, key: String, value: [UInt8], ttl: Duration) {
        self.client = client
        self.key = key
        self.value = value
        timer = LeaseTimer(ttl: ttl)
        ttlSeconds = max(1, ttl.components.seconds)
    }

    /// Ends the lease a previous run of this node left on `key`, if etcd still holds it: a restarted
    /// node (killed, or started on an empty disk) is dead as far as its partitions go, and its peers
    /// take them over now rather than when that lease would have lapsed. Returns the lease ended.
    ///
    /// Call before `register()`. A second process started with the same node id deposes the first
    /// this way (it sees its lease gone and stops).
    public static func endPrevious(client: EtcdClient, key: String) async throws(EtcdError) -> Int64? {
        guard let kv = try await client.get(key), kv.lease != 0 else { return nil }
        do { try await client.revoke(lease: kv.lease) } catch .server(_, let message) where message.contains("lease not found") {
            return nil  // It lapsed between the read and the revoke.
        }
        return kv.lease
    }

    /// Grants a lease and puts the node's key under it.
    @discardableResult
    public func register() async throws(EtcdError) -> Int64 {
        let sent = ContinuousClock.now
        let id = try await client.grantLease(ttlSeconds: ttlSeconds)
        try await client.put(key, value, lease: id)
        lease = id
        timer.renewed(sentAt: sent)
        return id
    }

    /// One keep-alive. False if etcd no longer has the lease (then `holds()` is false too).
    public func renew() async throws(EtcdError) -> Bool {
        guard let id = lease else { return false }
        let sent = ContinuousClock.now
        do {
            _ = try await client.keepAlive(lease: id)
            timer.renewed(sentAt: sent)
            return true
        } catch .leaseExpired {
            timer.lost()
            lease = nil
            return false
        }
    }

    public func holds() -> Bool { timer.holds(at: .now) }

    /// Keeps the lease alive until cancelled: a keep-alive every TTL/3, a new lease if etcd lost it,
    /// retries while etcd cannot be reached (the lease view lapses meanwhile).
    public func run() async {
        while !Task.isCancelled {
            let sent = ContinuousClock.now
            do {
                if lease == nil { try await register() } else { _ = try await renew() }
            } catch {
                // Unreachable etcd: `holds()` turns false on its own when the TTL is up.
            }
            try? await Task.sleep(until: timer.nextRenewal(after: sent), clock: .continuous)
        }
    }

    /// Ends the lease at once (a clean stop: partitions fail over without waiting for the TTL).
    public func revoke() async {
        guard let id = lease else { return }
        lease = nil
        timer.lost()
        try? await client.revoke(lease: id)
    }
}
