/// Which node owns what, for one node: the ring plus who "self" is. Pure.
///
/// - a user belongs to the owner of its `userId`; user ids are minted by the owner of the
///   *username*, which draws until the id hashes to itself, so both lookups name the same node;
/// - a conversation belongs to the owner of its `conversationId`; a direct conversation is
///   created by the owner of its pair key and minted the same way;
/// - a token names its user (`<userId>.<secret>`), so any node finds the owner without a lookup.
public struct Placement: Sendable, Equatable {
    public let ring: HashRing
    public let selfId: String

    public init(ring: HashRing, selfId: String) {
        precondition(ring.members.contains(selfId), "self must be a ring member")
        self.ring = ring
        self.selfId = selfId
    }

    /// A ring of one: everything is local.
    public static func single(_ selfId: String) -> Placement { Placement(ring: HashRing(members: [selfId]), selfId: selfId) }

    public var isSingleNode: Bool { ring.members.count == 1 }
    public var peers: [String] { ring.members.filter { $0 != selfId } }

    public func owner(ofUser userId: String) -> String { ring.owner(of: userId) }
    public func owner(ofUsername username: String) -> String { ring.owner(of: "name:" + username) }
    public func owner(ofConversation id: String) -> String { ring.owner(of: id) }
    public func owner(ofPair a: String, _ b: String) -> String { ring.owner(of: "pair:" + (a < b ? "\(a)|\(b)" : "\(b)|\(a)")) }

    public func isLocal(user userId: String) -> Bool { isSingleNode || owner(ofUser: userId) == selfId }
    public func isLocal(conversation id: String) -> Bool { isSingleNode || owner(ofConversation: id) == selfId }

    /// The user a token was issued to (`<userId>.<secret>`); nil for any other shape.
    public static func userId(fromToken token: String) -> String? {
        guard let dot = token.firstIndex(of: "."), dot != token.startIndex else { return nil }
        return String(token[..<dot])
    }

    /// Draws ids with `draw` until one this node owns (about `members` draws on average; bounded,
    /// since a ring of N members gives every node about 1/N of the hash space).
    public func mintLocal(_ draw: () -> String) -> String {
        while true {
            let id = draw()
            if isSingleNode || ring.owner(of: id) == selfId { return id }
        }
    }
}
