import ChorusCluster
import ChorusEtcd
import ChorusReplication

/// The partition table in etcd: who leads each partition in which epoch (docs/REPLICATION.md).
/// Written once at a cluster's first start, then only by compare-and-swap on a partition's revision.
public struct PartitionTableStore: Sendable {
    public struct Entry: Equatable, Sendable {
        public var assignment: PartitionAssignment
        /// etcd's revision of the key: the compare of the next swap.
        public var modRevision: Int64
    }

    public let client: EtcdClient
    /// `/chorus/<cluster>/`.
    public let prefix: String

    public init(client: EtcdClient, cluster: String) {
        self.client = client
        prefix = "/chorus/\(cluster)/"
    }

    public var partitionsPrefix: String { prefix + "partitions/" }

    public func key(_ p: PartitionId) -> String {
        partitionsPrefix + (p.rawValue < 10 ? "0" : "") + String(p.rawValue)
    }

    /// Writes `table` if the cluster has none (one transaction: all or nothing), then returns the
    /// table etcd holds, whoever wrote it.
    public func bootstrap(_ table: [PartitionId: PartitionAssignment]) async throws(EtcdError) -> (table: [PartitionId: Entry], revision: Int64) {
        let ordered = table.sorted { $0.key < $1.key }
        _ = try await client.txn(
            ordered.map { .versionEquals(key: key($0.key), 0) },
            success: ordered.map { .put(key: key($0.key), value: Array($0.value.encoded.utf8), lease: 0) })
        return try await read()
    }

    /// The whole table and the revision it was read at (watch from `revision + 1`).
    public func read() async throws(EtcdError) -> (table: [PartitionId: Entry], revision: Int64) {
        let range = try await client.range(prefix: partitionsPrefix)
        var table: [PartitionId: Entry] = [:]
        for kv in range.kvs {
            guard let (p, entry) = decode(kv) else { throw .malformed("partition entry \(kv.keyString): \(kv.valueString)") }
            table[p] = entry
        }
        return (table, range.revision)
    }

    /// A partition key and value as etcd holds them; nil for anything else.
    public func decode(_ kv: EtcdKeyValue) -> (PartitionId, Entry)? {
        let name = kv.keyString
        guard name.hasPrefix(partitionsPrefix), let n = Int(name.dropFirst(partitionsPrefix.count)), let p = PartitionId(n),
            let a = PartitionAssignment(encoded: kv.valueString)
        else { return nil }
        return (p, Entry(assignment: a, modRevision: kv.modRevision))
    }

    /// Replaces a partition's assignment if nobody changed it since `entry` was read. False: someone did.
    public func swap(_ p: PartitionId, from entry: Entry, to next: PartitionAssignment) async throws(EtcdError) -> Bool {
        try await client.txn(
            [.modRevisionEquals(key: key(p), entry.modRevision)],
            success: [.put(key: key(p), value: Array(next.encoded.utf8), lease: 0)]
        ).succeeded
    }
}
