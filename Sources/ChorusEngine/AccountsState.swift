import ChorusCore

/// A token's SHA-256, the only form in which tokens are stored or logged.
public struct TokenHash: Hashable, Sendable {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
}

/// Accounts and tokens as plain state: rebuilt by replaying events, changed only by `apply`.
/// Pure: no I/O, no clock; `now` comes in as an argument.
public struct AccountsState: Sendable {
    public internal(set) var users: [String: UserRecord] = [:]
    var byUsername: [String: String] = [:]
    public internal(set) var lastLoginAt: [String: Int64] = [:]
    var tokens: [TokenHash: (userId: String, expiresAt: Int64)] = [:]

    public init() {}

    public var userCount: Int { users.count }
    public var tokenCount: Int { tokens.count }

    public func user(id: String) -> UserRecord? { users[id] }

    public func user(named username: String) -> UserRecord? { byUsername[username].flatMap { users[$0] } }

    /// The user a token belongs to, if it is known, unrevoked and unexpired at `now`.
    public func authenticate(_ hash: TokenHash, now: Int64) -> String? {
        guard let t = tokens[hash], t.expiresAt > now else { return nil }
        return t.userId
    }

    /// Why a registration must be refused, or nil. `reserved` holds usernames being registered now.
    public func validateRegistration(
        username: String, password: String, email: String, displayName: String?, limits: ChatLimits,
        reserved: Set<String> = []
    ) -> ChatError? {
        if !limits.isValidUsername(username) {
            return .badRequest("username: \(limits.usernameLength.lowerBound) to \(limits.usernameLength.upperBound) characters of a-z 0-9 _ . -")
        }
        if !limits.passwordBytes.contains(password.utf8.count) {
            return .badRequest("password: \(limits.passwordBytes.lowerBound) to \(limits.passwordBytes.upperBound) bytes")
        }
        if !limits.isValidEmail(email) { return .badRequest("email: not a valid address") }
        if let name = displayName, name.utf8.count > limits.displayNameBytes || name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return .badRequest("displayName: at most \(limits.displayNameBytes) bytes, no control characters")
        }
        if byUsername[username] != nil || reserved.contains(username) { return .usernameTaken }
        return nil
    }

    /// Applies one durable event. Events for other parts of the engine are ignored.
    public mutating func apply(_ event: ChorusEvent) {
        switch event {
        case .userRegistered(let u):
            users[u.userId] = u
            byUsername[u.username] = u.userId
        case .loggedIn(let userId, let at):
            lastLoginAt[userId] = max(lastLoginAt[userId] ?? 0, at)
        case .tokenIssued(let hash, let userId, let expiresAt):
            tokens[TokenHash(hash)] = (userId, expiresAt)
        case .tokenRevoked(let hash, _):
            tokens[TokenHash(hash)] = nil
        default:
            break
        }
    }

    /// Drops tokens expired at `now` (they authenticate nothing; this only frees memory).
    public mutating func purgeExpiredTokens(now: Int64) {
        tokens = tokens.filter { $0.value.expiresAt > now }
    }
}
