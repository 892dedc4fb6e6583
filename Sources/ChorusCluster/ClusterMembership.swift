import ChorusCore

/// One configuration of the cluster: its members (node id -> mesh address `host:port`) and an epoch
/// that rises by one with every change. The ring is built from the member ids only.
public struct ClusterMembership: Sendable, Equatable {
    public var epoch: UInt64
    public var members: [String: String]

    public init(epoch: UInt64, members: [String: String]) {
        self.epoch = epoch
        self.members = members
    }

    public var ring: HashRing { HashRing(members: members.keys) }
    public var ids: [String] { members.keys.sorted() }

    /// Why a requested change cannot be made from this membership (nil: it can).
    public enum ChangeRefusal: Error, Equatable, Sendable {
        case alreadyMember(String)
        case notMember(String)
        case lastMember
        case invalidId(String)
    }

    /// The next membership with `id` added at `address`.
    public func adding(_ id: String, at address: String) -> Result<ClusterMembership, ChangeRefusal> {
        guard !id.isEmpty, id.utf8.count <= 64, !id.contains("@"), !id.contains(",") else { return .failure(.invalidId(id)) }
        guard members[id] == nil else { return .failure(.alreadyMember(id)) }
        var next = self
        next.epoch += 1
        next.members[id] = address
        return .success(next)
    }

    /// The next membership without `id`.
    public func removing(_ id: String) -> Result<ClusterMembership, ChangeRefusal> {
        guard members[id] != nil else { return .failure(.notMember(id)) }
        guard members.count > 1 else { return .failure(.lastMember) }
        var next = self
        next.epoch += 1
        next.members[id] = nil
        return .success(next)
    }

    /// Compact binary form (mesh payloads, the membership file).
    public func write(to w: inout ByteWriter) {
        w.write(epoch)
        w.writeVarint(UInt64(members.count))
        for id in ids {
            w.writeString(id)
            w.writeString(members[id]!)
        }
    }

    public static func read(from r: inout ByteReader) throws(ByteReaderError) -> ClusterMembership {
        let epoch = try r.readUInt64()
        let count = try r.readVarint()
        guard count <= 1024 else { throw ByteReaderError.lengthOverBound(length: count, bound: 1024) }
        var members: [String: String] = [:]
        for _ in 0..<count {
            let id = try r.readString(bound: 64)
            members[id] = try r.readString(bound: 300)
        }
        return ClusterMembership(epoch: epoch, members: members)
    }

    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: 64)
        write(to: &w)
        return w.bytes
    }

    public init(bytes: [UInt8]) throws(ByteReaderError) {
        var r = ByteReader(bytes)
        self = try Self.read(from: &r)
        guard r.isAtEnd else { throw ByteReaderError.truncated(needed: 0, remaining: r.remaining) }
    }
}

/// Which keys a change moves, for one node. Pure.
public struct MembershipMove: Sendable {
    public let before: HashRing
    public let after: HashRing
    public let selfId: String

    public init(before: HashRing, after: HashRing, selfId: String) {
        self.before = before
        self.after = after
        self.selfId = selfId
    }

    /// The node a point this node owns now goes to; nil if it stays (or is not this node's).
    public func destination(ofPoint point: UInt64) -> String? {
        guard before.members.contains(selfId), before.owner(ofPoint: point) == selfId else { return nil }
        let next = after.owner(ofPoint: point)
        return next == selfId ? nil : next
    }

    /// Whether the change gives this node a point it did not own.
    public func arrives(point: UInt64) -> Bool {
        after.owner(ofPoint: point) == selfId && !(before.members.contains(selfId) && before.owner(ofPoint: point) == selfId)
    }
}
