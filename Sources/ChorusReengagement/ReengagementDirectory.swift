/// A user as the re-engagement timers see it; `index` is dense (the accounts' table index) and
/// names the user's timer.
public struct ReengagementUser: Sendable, Equatable {
    public var index: UInt32
    public var userId: String
    public var name: String
    public var email: String
    public var lastLoginAt: Int64

    public init(index: UInt32, userId: String, name: String, email: String, lastLoginAt: Int64) {
        self.index = index
        self.userId = userId
        self.name = name
        self.email = email
        self.lastLoginAt = lastLoginAt
    }
}

/// The node's users (the executable plugs its accounts in): only those this node owns.
public protocol ReengagementDirectory: Sendable {
    func allUsers() async -> [ReengagementUser]
    func user(_ index: UInt32) async -> ReengagementUser?
    func user(id: String) async -> ReengagementUser?
    /// Many at once (a burst of expired timers): one hop to the accounts, not one per user.
    func users(_ indices: [UInt32]) async -> [ReengagementUser?]
}
