import ChorusCore

/// A token's SHA-256, the only form in which tokens are stored or logged.
public struct TokenHash: Hashable, Sendable {
    /// The first 16 bytes of the SHA-256, inline. 128 bits keep tokens unguessable and unique; the
    /// map of live tokens is the largest per-user table, and this halves its key.
    private let high: UInt64
    private let low: UInt64

    public init(_ bytes: [UInt8]) {
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, b) in bytes.prefix(16).enumerated() {
            if i < 8 { h |= UInt64(b) << (8 * UInt64(i)) } else { l |= UInt64(b) << (8 * UInt64(i - 8)) }
        }
        high = h
        low = l
    }

    /// The 16 bytes kept (what revocations log).
    public var bytes: [UInt8] {
        (0..<16).map { i in UInt8(truncatingIfNeeded: (i < 8 ? high : low) >> (8 * UInt64(i % 8))) }
    }
}

/// Accounts and tokens as plain state: rebuilt by replaying events, changed only by `apply`.
/// Pure: no I/O, no clock; `now` comes in as an argument.
public struct AccountsState: Sendable {
    /// Users in registration order, and each one's last login (0: never), side by side. Maps hold
    /// positions, not records: at a million users every byte per entry counts (docs/ENGINE.md).
    private(set) var records: [UserRecord] = []
    private(set) var lastLogins: [Int64] = []
    var index: [String: Int32] = [:]
    var byUsername: [String: Int32] = [:]
    var tokens: [TokenHash: TokenGrant] = [:]
    /// No token expires before this (`Int64.max` with none): `expireTokens` scans only past it.
    private(set) var earliestExpiry = Int64.max

    struct TokenGrant: Sendable {
        var user: Int32
        var expiresAt: Int64
    }

    public init() {}

    public var userCount: Int { records.count }
    public var tokenCount: Int { tokens.count }

    public func user(id: String) -> UserRecord? { index[id].map { records[Int($0)] } }

    public func user(named username: String) -> UserRecord? { byUsername[username].map { records[Int($0)] } }

    /// When the user last logged in (registering counts), nil if unknown.
    public func lastLogin(_ userId: String) -> Int64? { index[userId].map { lastLogins[Int($0)] } }

    /// Every user by id (a copy: for tests and tools, not hot paths).
    public var users: [String: UserRecord] { Dictionary(uniqueKeysWithValues: records.map { ($0.userId, $0) }) }

    /// Every known last login by user id (a copy: for tests and tools).
    public var lastLoginAt: [String: Int64] {
        Dictionary(uniqueKeysWithValues: zip(records, lastLogins).filter { $0.1 != 0 }.map { ($0.0.userId, $0.1) })
    }

    /// The user a token belongs to, if it is known, unrevoked and unexpired at `now`.
    public func authenticate(_ hash: TokenHash, now: Int64) -> String? {
        guard let t = tokens[hash], t.expiresAt > now else { return nil }
        return records[Int(t.user)].userId
    }

    /// Adds or replaces a user (replay, snapshots).
    mutating func put(_ u: UserRecord, lastLogin: Int64) {
        if let i = index[u.userId] {
            records[Int(i)] = u
            lastLogins[Int(i)] = max(lastLogins[Int(i)], lastLogin)
            byUsername[u.username] = i
            return
        }
        precondition(records.count < Int(Int32.max), "user table full")
        let i = Int32(records.count)
        records.append(u)
        lastLogins.append(lastLogin)
        index[u.userId] = i
        byUsername[u.username] = i
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
        if let name = displayName, name.utf8.count > limits.displayNameBytes || name.unicodeScalars.contains(where: Self.isForbiddenInName) {
            return .badRequest("displayName: at most \(limits.displayNameBytes) bytes, no control or format characters (bidi overrides, zero-width spaces)")
        }
        if byUsername[username] != nil || reserved.contains(username) { return .usernameTaken }
        return nil
    }

    /// Control characters, and format characters (Cf: bidi overrides, zero-width spaces) but for
    /// the joiners U+200C and U+200D that some scripts and emoji need (PROTOCOL.md section 6).
    static func isForbiddenInName(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control: true
        case .format: scalar.value != 0x200C && scalar.value != 0x200D
        default: false
        }
    }

    /// Applies one durable event. Events for other parts of the engine are ignored.
    public mutating func apply(_ event: ChorusEvent) {
        switch event {
        case .userRegistered(let u):
            put(u, lastLogin: 0)
        case .loggedIn(let userId, let at):
            if let i = index[userId] { lastLogins[Int(i)] = max(lastLogins[Int(i)], at) }
        case .tokenIssued(let hash, let userId, let expiresAt):
            // A token of an unknown user authenticates no one: not kept.
            if let i = index[userId] {
                tokens[TokenHash(hash)] = TokenGrant(user: i, expiresAt: expiresAt)
                earliestExpiry = min(earliestExpiry, expiresAt)
            }
        case .tokenRevoked(let hash, _):
            tokens[TokenHash(hash)] = nil
        case .userHandedIn(let u, let lastLogin, let handed, _):
            // Replaces what this node held of the user (a copy from before it last moved away).
            if let old = index[u.userId] {
                tokens = tokens.filter { $0.value.user != old }
                lastLogins[Int(old)] = 0
                if records[Int(old)].username != u.username { byUsername[records[Int(old)].username] = nil }
            }
            put(u, lastLogin: lastLogin)
            let i = index[u.userId]!
            for t in handed {
                tokens[TokenHash(t.hash)] = TokenGrant(user: i, expiresAt: t.expiresAt)
                earliestExpiry = min(earliestExpiry, t.expiresAt)
            }
        default:
            break
        }
    }

    /// The user's hand-over record: account, newest login, live tokens (as of `now`).
    public func handOver(_ userId: String, now: Int64) -> ChorusEvent? {
        guard let i = index[userId] else { return nil }
        let live = tokens.filter { $0.value.user == i && $0.value.expiresAt > now }
            .map { TokenRecord(hash: $0.key.bytes, expiresAt: $0.value.expiresAt) }
        return .userHandedIn(records[Int(i)], lastLogin: lastLogins[Int(i)], tokens: live, delivered: [])
    }

    /// The table index of a user (dense, stable for the node's life: re-engagement timers use it).
    public func tableIndex(of userId: String) -> Int32? { index[userId] }

    /// The user at a table index, with its newest login.
    public func user(atIndex i: Int32) -> (UserRecord, lastLogin: Int64)? {
        Int(i) < records.count && i >= 0 ? (records[Int(i)], lastLogins[Int(i)]) : nil
    }

    /// Every user id this node holds.
    public var userIds: [String] { records.map(\.userId) }

    /// Drops the tokens expired at `now` and returns their hashes (their sessions are closed); scans
    /// the map only once the earliest expiry has passed.
    public mutating func expireTokens(now: Int64) -> [TokenHash] {
        guard now >= earliestExpiry else { return [] }
        var expired: [TokenHash] = []
        var earliest = Int64.max
        tokens = tokens.filter { hash, grant in
            guard grant.expiresAt > now else {
                expired.append(hash)
                return false
            }
            earliest = min(earliest, grant.expiresAt)
            return true
        }
        earliestExpiry = earliest
        return expired
    }

    /// The hashes of the live tokens of `userId` (log out everywhere).
    public func tokens(of userId: String, now: Int64) -> [TokenHash] {
        guard let i = index[userId] else { return [] }
        return tokens.filter { $0.value.user == i && $0.value.expiresAt > now }.map(\.key)
    }
}
