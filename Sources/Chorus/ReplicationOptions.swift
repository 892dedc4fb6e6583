import ArgumentParser
import ChorusCLI
import ChorusEtcd

/// `chorus serve`'s replication options (PROTOCOL.md section 7).
struct ReplicationOptions: ParsableArguments {
    @Option(help: "etcd endpoints, http://HOST:PORT[,...]: every partition gets copies on several nodes, with automatic failover.")
    var etcd: String?
    @Option(name: .customLong("replication-factor"), help: "Copies of every partition, on distinct nodes (default 3, at most the members).")
    var replicationFactor: Int?
    @Option(name: .customLong("ack-replicas"), help: "Copies durable before an ack or 201 (default a majority of the factor).")
    var ackReplicas: Int?
    @Option(help: "A node whose etcd lease lapses for this long loses its partitions.")
    var lease = "3s"
    @Option(name: .customLong("rebalance-after"), help: "A partition led for this long by a node other than its preferred replica goes back to it once that one is live and caught up (off: never).")
    var rebalanceAfter = "10s"
    @Option(name: .customLong("cluster-name"), help: "The cluster's keys in etcd are under /chorus/NAME/.")
    var clusterName = "chorus"

    /// Nil without `--etcd`; `members` is the initial membership's size.
    func settings(members: Int, hasMesh: Bool) throws -> ReplicationSettings? {
        guard let etcd else {
            if replicationFactor != nil || ackReplicas != nil { throw ValidationError("--replication-factor, --ack-replicas: need --etcd") }
            return nil
        }
        guard hasMesh else { throw ValidationError("--etcd: needs --mesh (replicas reach each other over the mesh)") }
        var endpoints: [EtcdEndpoint] = []
        for url in etcd.split(separator: ",") {
            guard let e = EtcdEndpoint(url: String(url)) else { throw ValidationError("--etcd: '\(url)' is not http://HOST:PORT") }
            endpoints.append(e)
        }
        guard !endpoints.isEmpty else { throw ValidationError("--etcd: no endpoint") }
        let factor = replicationFactor ?? min(3, members)
        guard (1...members).contains(factor) else { throw ValidationError("--replication-factor: 1...\(members) (the members)") }
        let w = ackReplicas ?? factor / 2 + 1
        guard (1...factor).contains(w) else { throw ValidationError("--ack-replicas: 1...\(factor) (the replication factor)") }
        let leaseMs: Int64
        do { leaseMs = try ConfigParsing.durationMs(lease) } catch { throw ValidationError("--lease: \(error)") }
        guard (1_000...60_000).contains(leaseMs), leaseMs % 1_000 == 0 else { throw ValidationError("--lease: whole seconds, 1s...60s (etcd's TTL unit)") }
        guard ChatLimitsNames.isValid(clusterName) else { throw ValidationError("--cluster-name: letters, digits, '-' and '_', up to 64") }
        var rebalance: Duration?
        if rebalanceAfter != "off" {
            let ms: Int64
            do { ms = try ConfigParsing.durationMs(rebalanceAfter) } catch { throw ValidationError("--rebalance-after: \(error)") }
            guard ms >= 1_000 else { throw ValidationError("--rebalance-after: at least 1s, or off") }
            rebalance = .milliseconds(ms)
        }
        return ReplicationSettings(
            endpoints: endpoints, factor: factor, ackReplicas: w, lease: .milliseconds(leaseMs), cluster: clusterName, rebalanceAfter: rebalance)
    }
}

/// Validated replication settings.
struct ReplicationSettings {
    var endpoints: [EtcdEndpoint]
    var factor: Int
    var ackReplicas: Int
    var lease: Duration
    var cluster: String
    /// How long a partition stays led away from its preferred replica (nil: until a failover).
    var rebalanceAfter: Duration?
}

enum ChatLimitsNames {
    static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy { $0 == 0x2D || $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
    }
}
