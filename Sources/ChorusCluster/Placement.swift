/// Which node owns what, for one node: the ring plus who "self" is. Pure.
///
/// Every key sits at a `KeyPoint`; its owner is the ring's owner of that point, alive or not:
/// - a username and its user (account, tokens, inbox) share the username's point (the user id
///   carries it), so they have one owner under every ring;
/// - a conversation sits at the point its id carries: a direct pair's point, or for a group a
///   random point the creating node owns;
/// - a token names its user (`<userId>.<secret>`), so any node finds the owner without a lookup.
///
/// With replication (`leaders`), a key's owner is the leader etcd names for its partition (the
/// ring then places replicas, docs/REPLICATION.md), and each partition's log rebuilds its own users'
/// inboxes (`sharesInbox`).
public struct Placement: Sendable, Equatable {
    public let ring: HashRing
    public let selfId: String
    /// With replication: each partition's leader, by partition number ("" while none serves).
    public let leaders: [String]?

    public init(ring: HashRing, selfId: String, leaders: [String]? = nil) {
        precondition(leaders.map { $0.count == Partitioning.count } ?? true, "one leader per partition")
        // A node joining a cluster is not a member yet: it owns nothing until the change commits.
        isSingleNode = leaders == nil && ring.members.count == 1 && ring.members[0] == selfId
        self.ring = ring
        self.selfId = selfId
        self.leaders = leaders
    }

    /// Who serves the keys at `point`: its partition's leader when replicated, else its ring owner.
    public func owner(ofPoint point: UInt64) -> String {
        guard let leaders else { return ring.owner(ofPoint: point) }
        return leaders[Int(Partitioning.partition(ofPoint: point).rawValue)]
    }

    /// Whether a change logged at `key` (a conversation, or a user's own record) appends to
    /// `user`'s inbox directly, its replay doing the same: on this node without replication; in
    /// the same partition with it (so each partition's log alone rebuilds its users' inboxes).
    /// Otherwise the entry goes through the fan-out and is logged at the user's point.
    public func sharesInbox(user: String, with key: String) -> Bool {
        guard leaders != nil else { return isLocal(user: user) }
        return Partitioning.partition(ofPoint: KeyPoint.of(id: user)) == Partitioning.partition(ofPoint: KeyPoint.of(id: key))
    }

    /// A ring of one: everything is local.
    public static func single(_ selfId: String) -> Placement { Placement(ring: HashRing(members: [selfId]), selfId: selfId) }

    /// The ring is this node alone (computed once: asked on every send).
    public let isSingleNode: Bool
    public var peers: [String] { ring.members.filter { $0 != selfId } }
    /// The other nodes that serve keys now: the peers, or with replication the partitions'
    /// leaders (a dead member leads nothing once its partitions failed over).
    public var serving: [String] {
        guard let leaders else { return peers }
        return Set(leaders).filter { !$0.isEmpty && $0 != selfId }.sorted()
    }

    public func owner(ofUser userId: String) -> String { owner(ofPoint: KeyPoint.of(id: userId)) }
    public func owner(ofUsername username: String) -> String { owner(ofPoint: KeyPoint.of(username: username)) }
    public func owner(ofConversation id: String) -> String { owner(ofPoint: KeyPoint.of(id: id)) }
    public func owner(ofPair a: String, _ b: String) -> String { owner(ofPoint: KeyPoint.of(pair: a, b)) }

    public func isLocal(user userId: String) -> Bool { isSingleNode || owner(ofUser: userId) == selfId }
    public func isLocal(conversation id: String) -> Bool { isSingleNode || owner(ofConversation: id) == selfId }

    /// The user a token was issued to (`<userId>.<secret>`); nil for any other shape.
    public static func userId(fromToken token: String) -> String? {
        guard let dot = token.firstIndex(of: "."), dot != token.startIndex else { return nil }
        return String(token[..<dot])
    }

    /// A fresh user id for `username`: it carries the username's point, so its owner is the
    /// username's owner under every ring.
    public static func mintUser(username: String) -> String {
        var rng = SystemRandomNumberGenerator()
        return KeyPoint.mint(prefix: UInt8(ascii: "u"), point: KeyPoint.of(username: username), using: &rng)
    }

    /// A fresh id for the direct conversation of a pair: it carries the pair's point.
    public static func mintDirect(_ a: String, _ b: String) -> String {
        var rng = SystemRandomNumberGenerator()
        return KeyPoint.mint(prefix: UInt8(ascii: "c"), point: KeyPoint.of(pair: a, b), using: &rng)
    }

    /// A fresh group id at a random point this node owns (about `members` draws on average; bounded,
    /// since a ring of N members gives every node about 1/N of the points).
    public func mintGroup() -> String {
        precondition(ring.members.contains(selfId), "only a member mints")
        var rng = SystemRandomNumberGenerator()
        if let leaders {
            // A partition this node leads (with none, any: the log then refuses the creation).
            let mine = leaders.indices.filter { leaders[$0] == selfId }
            let p = mine.randomElement(using: &rng) ?? Int(rng.next() % UInt64(leaders.count))
            let point = (Partitioning.startPoint(of: PartitionId(p)!) | (rng.next() >> 6)) & KeyPoint.mask
            return KeyPoint.mint(prefix: UInt8(ascii: "c"), point: point, using: &rng)
        }
        while true {
            let point = rng.next() & KeyPoint.mask
            if isSingleNode || owner(ofPoint: point) == selfId { return KeyPoint.mint(prefix: UInt8(ascii: "c"), point: point, using: &rng) }
        }
    }
}
