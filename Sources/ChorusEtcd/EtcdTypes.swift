/// A key and its value as etcd stores them, with the revisions a compare-and-swap needs.
public struct EtcdKeyValue: Equatable, Sendable {
    public var key: [UInt8]
    public var value: [UInt8]
    public var createRevision: Int64
    public var modRevision: Int64
    public var version: Int64
    public var lease: Int64

    public init(key: [UInt8], value: [UInt8], createRevision: Int64 = 0, modRevision: Int64 = 0, version: Int64 = 0, lease: Int64 = 0) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }

    public var keyString: String { String(decoding: key, as: UTF8.self) }
    public var valueString: String { String(decoding: value, as: UTF8.self) }
}

/// One condition of a transaction (etcd's `Compare`).
public enum EtcdCompare: Equatable, Sendable {
    /// The key's value equals this.
    case valueEquals(key: String, [UInt8])
    /// The key's last modification was at this revision (0: the key does not exist).
    case modRevisionEquals(key: String, Int64)
    /// The key was written this many times since created (0: the key does not exist).
    case versionEquals(key: String, Int64)
}

/// One operation of a transaction branch.
public enum EtcdOperation: Equatable, Sendable {
    case put(key: String, value: [UInt8], lease: Int64)
    case get(key: String)
    case delete(key: String)
}

/// A transaction's outcome: which branch ran, and the keys its `get`s read.
public struct EtcdTxnResult: Equatable, Sendable {
    public var succeeded: Bool
    public var revision: Int64
    public var kvs: [EtcdKeyValue]
}

/// A range read: the keys and the store's revision when read (a watch from `revision + 1` misses nothing).
public struct EtcdRange: Equatable, Sendable {
    public var kvs: [EtcdKeyValue]
    public var revision: Int64
}

/// One change a watch reports.
public struct EtcdWatchEvent: Equatable, Sendable {
    public enum Kind: Equatable, Sendable { case put, delete }
    public var kind: Kind
    public var kv: EtcdKeyValue
}

/// Why a call to etcd failed.
public enum EtcdError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No endpoint answered (refused, timed out, closed).
    case unreachable(String)
    /// An endpoint answered with an error status or an error object.
    case server(status: Int, message: String)
    /// The answer is not the JSON etcd sends.
    case malformed(String)
    /// The lease is gone (expired or revoked): the node must stop acting on anything it held.
    case leaseExpired(Int64)
    /// The watch was cancelled or compacted past the revision asked for.
    case watchEnded(String)

    public var description: String {
        switch self {
        case .unreachable(let why): "etcd unreachable: \(why)"
        case .server(let status, let message): "etcd answered \(status): \(message)"
        case .malformed(let why): "etcd answer malformed: \(why)"
        case .leaseExpired(let id): "etcd lease \(id) expired"
        case .watchEnded(let why): "etcd watch ended: \(why)"
        }
    }
}
