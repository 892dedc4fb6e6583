import ChorusEtcd

/// A replicated cluster's members in etcd (`<prefix>members`): each node's id and mesh address.
/// The ring, and with it every partition's target replicas, is made of them. Written once at the
/// cluster's first start (from that node's flags), then only by compare-and-swap (a join or a
/// retirement, docs/REPLICATION.md "Membership changes").
public struct MembersStore: Sendable {
    /// The members as etcd holds them, and the revision a swap compares with.
    public struct Snapshot: Equatable, Sendable {
        /// Node id -> mesh address (`host:port`).
        public var members: [String: String]
        public var modRevision: Int64
    }

    public let client: EtcdClient
    public let key: String

    public init(client: EtcdClient, cluster: String) {
        self.client = client
        key = "/chorus/\(cluster)/members"
    }

    /// Writes `initial` if the cluster has no members yet, then returns what etcd holds (whoever wrote it).
    public func bootstrap(_ initial: [String: String]) async throws(EtcdError) -> Snapshot {
        _ = try await client.txn(
            [.versionEquals(key: key, 0)], success: [.put(key: key, value: Array(Self.encode(initial).utf8), lease: 0)])
        guard let found = try await read() else { throw .malformed("\(key) vanished after it was written") }
        return found
    }

    /// The members, nil if the cluster has none yet.
    public func read() async throws(EtcdError) -> Snapshot? {
        guard let kv = try await client.get(key) else { return nil }
        return try decode(kv)
    }

    /// The members a key-value of the members key holds.
    public func decode(_ kv: EtcdKeyValue) throws(EtcdError) -> Snapshot {
        guard let members = Self.decode(kv.valueString) else { throw .malformed("\(key): \(kv.valueString)") }
        return Snapshot(members: members, modRevision: kv.modRevision)
    }

    /// Replaces the members if nobody changed them since `from` was read. False: someone did.
    public func swap(from: Snapshot, to next: [String: String]) async throws(EtcdError) -> Bool {
        try await client.txn(
            [.modRevisionEquals(key: key, from.modRevision)], success: [.put(key: key, value: Array(Self.encode(next).utf8), lease: 0)]
        ).succeeded
    }

    /// `id=host:port` by id, comma-separated.
    public static func encode(_ members: [String: String]) -> String {
        members.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// The inverse of `encode`; nil for anything else (an empty id or address, a repeated id).
    public static func decode(_ text: String) -> [String: String]? {
        var out: [String: String] = [:]
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, !pair[0].isEmpty, !pair[1].isEmpty, out[String(pair[0])] == nil else { return nil }
            out[String(pair[0])] = String(pair[1])
        }
        return out.isEmpty ? nil : out
    }
}
