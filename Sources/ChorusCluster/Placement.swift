/// Which node owns what, for one node: the ring plus who "self" is. Pure.
///
/// Every key sits at a `KeyPoint`; its owner is the ring's owner of that point, alive or not:
/// - a username and its user (account, tokens, inbox) share the username's point (the user id
///   carries it), so they have one owner under every ring;
/// - a conversation sits at the point its id carries: a direct pair's point, or for a group a
///   random point the creating node owns;
/// - a token names its user (`<userId>.<secret>`), so any node finds the owner without a lookup.
public struct Placement: Sendable, Equatable {
    public let ring: HashRing
    public let selfId: String

    public init(ring: HashRing, selfId: String) {
        // A node joining a cluster is not a member yet: it owns nothing until the change commits.
        isSingleNode = ring.members.count == 1 && ring.members[0] == selfId
        self.ring = ring
        self.selfId = selfId
    }

    /// A ring of one: everything is local.
    public static func single(_ selfId: String) -> Placement { Placement(ring: HashRing(members: [selfId]), selfId: selfId) }

    /// The ring is this node alone (computed once: asked on every send).
    public let isSingleNode: Bool
    public var peers: [String] { ring.members.filter { $0 != selfId } }

    public func owner(ofUser userId: String) -> String { ring.owner(ofPoint: KeyPoint.of(id: userId)) }
    public func owner(ofUsername username: String) -> String { ring.owner(ofPoint: KeyPoint.of(username: username)) }
    public func owner(ofConversation id: String) -> String { ring.owner(ofPoint: KeyPoint.of(id: id)) }
    public func owner(ofPair a: String, _ b: String) -> String { ring.owner(ofPoint: KeyPoint.of(pair: a, b)) }

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
        while true {
            let point = rng.next() & KeyPoint.mask
            if isSingleNode || ring.owner(ofPoint: point) == selfId { return KeyPoint.mint(prefix: UInt8(ascii: "c"), point: point, using: &rng) }
        }
    }
}
