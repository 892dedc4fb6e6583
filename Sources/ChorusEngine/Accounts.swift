import ChorusCluster
import ChorusCore
import Crypto
import Foundation
import Logging

/// What a successful login returns.
public struct IssuedToken: Sendable, Equatable {
    public var token: String
    public var userId: String
    public var expiresAt: Int64
}

/// Accounts and tokens. Every change is logged (and fsynced, in mode `always`) before it is applied
/// or answered. Password hashing runs off the actor, so a slow KDF never blocks other requests.
public actor Accounts {
    public struct Configuration: Sendable {
        public var limits = ChatLimits()
        public var hasher = PasswordHasher()
        /// Token lifetime (`--token-ttl`).
        public var tokenTTLMs: Int64 = 30 * 24 * 3600 * 1000
        /// Login attempts per client address; nil is `off`.
        public var loginRateLimit: RateLimitSetting? = RateLimitSetting(rate: 1, burst: 10)
        /// Registrations per client address; nil is `off`.
        public var registerRateLimit: RateLimitSetting? = RateLimitSetting(rate: 1, burst: 10)
        /// Where password hashes run, bounded (`--max-pending-hashes`).
        public var hashPool = PasswordHashPool()
        /// Which node owns which user: new user ids are minted to be owned by this node.
        public var placement = PlacementCell(.single("node1"))
        public init() {}
    }

    private var state: AccountsState
    private let journal: any Journal
    private let clock: any WallClock
    private let config: Configuration
    private var loginLimiter: KeyedRateLimiter?
    private var registerLimiter: KeyedRateLimiter?
    /// Usernames between validation and their durable registration (so two requests cannot both win).
    private var reserved: Set<String> = []
    /// Commits awaiting the log (a hand-over's export waits for zero).
    private var commitsInFlight = 0
    /// A fixed hash to verify against for unknown usernames, so timing does not reveal which exist.
    private let decoyHash: String
    private var revocationListeners: [@Sendable (TokenHash) -> Void] = []
    private var loginListeners: [@Sendable (Int32) -> Void] = []

    public init(state: AccountsState, journal: any Journal, clock: any WallClock, configuration: Configuration) {
        self.state = state
        self.journal = journal
        self.clock = clock
        config = configuration
        loginLimiter = configuration.loginRateLimit.map { KeyedRateLimiter(setting: $0) }
        registerLimiter = configuration.registerRateLimit.map { KeyedRateLimiter(setting: $0) }
        decoyHash = (try? configuration.hasher.hash("decoy-password-\(UInt64.random(in: 0...UInt64.max))")) ?? ""
    }

    public var userCount: Int { state.userCount }

    /// Called with the hash of every token revoked from now on (to close its open sessions).
    public func onRevocation(_ listener: @escaping @Sendable (TokenHash) -> Void) {
        revocationListeners.append(listener)
    }

    /// Registers an account; registering counts as a login. `clientAddress` keys the registration
    /// rate limit.
    public func register(
        username: String, password: String, email: String, displayName: String?, clientAddress: String = "local"
    ) async throws(ChatError) -> UserRecord {
        if case .limited(let ms) = registerLimiter?.take(clientAddress, nowMs: clock.nowMs()) {
            throw .rateLimited(retryAfterMs: ms)
        }
        if let refusal = state.validateRegistration(
            username: username, password: password, email: email, displayName: displayName, limits: config.limits,
            reserved: reserved)
        {
            throw refusal
        }
        reserved.insert(username)
        defer { reserved.remove(username) }
        let hasher = config.hasher
        let hashed = try await config.hashPool.run { Result { try hasher.hash(password) } }
        guard case .success(let hash) = hashed else { throw .unavailable("password hashing failed") }
        let now = clock.nowMs()
        let user = UserRecord(
            userId: freshUserID(username: username), username: username, email: email,
            displayName: displayName ?? username, passwordHash: hash, createdAt: now)
        try await commit([.userRegistered(user), .loggedIn(userId: user.userId, at: now)], user: user.userId)
        if let i = state.tableIndex(of: user.userId) { for l in loginListeners { l(i) } }
        return user
    }

    /// Checks credentials and issues a token. `clientAddress` keys the login rate limit.
    public func login(username: String, password: String, clientAddress: String) async throws(ChatError) -> IssuedToken {
        if case .limited(let ms) = loginLimiter?.take(clientAddress, nowMs: clock.nowMs()) {
            throw .rateLimited(retryAfterMs: ms)
        }
        let user = state.user(named: username)
        let hasher = config.hasher, stored = user?.passwordHash ?? decoyHash
        let ok = try await config.hashPool.run { hasher.verify(password, against: stored) }
        // A node that does not serve the username's key now (a replicated partition moving): retry.
        if user == nil { try config.placement.admit(username: username) }
        guard ok, let user else { throw .invalidCredentials }
        var raw = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in raw.indices { raw[i] = rng.next() }
        // `<userId>.<secret>`: any node of a cluster finds the owner of the token's user.
        let token = user.userId + "." + Base64URL.encode(raw)
        let now = clock.nowMs()
        let expiresAt = now + config.tokenTTLMs
        try await commit([
            .tokenIssued(tokenHash: Self.hash(token: token).bytes, userId: user.userId, expiresAt: expiresAt),
            .loggedIn(userId: user.userId, at: now),
        ], user: user.userId)
        if let i = state.tableIndex(of: user.userId) { for l in loginListeners { l(i) } }
        return IssuedToken(token: token, userId: user.userId, expiresAt: expiresAt)
    }

    /// The user a bearer token belongs to, or `unauthorized`.
    public func authenticate(token: String) throws(ChatError) -> UserRecord {
        guard token.utf8.count <= 192, let userId = state.authenticate(Self.hash(token: token), now: clock.nowMs()),
            let user = state.user(id: userId)
        else {
            // A token names its user: a node that does not serve that user now says so (retry).
            if let userId = Placement.userId(fromToken: token) { try config.placement.admit(user: userId) }
            throw .unauthorized
        }
        try config.placement.admit(user: userId)
        return user
    }

    /// Revokes a token on this node (logged first); listeners close its sessions.
    public func logout(token: String) async throws(ChatError) {
        let hash = Self.hash(token: token)
        guard let userId = state.authenticate(hash, now: clock.nowMs()) else { throw .unauthorized }
        try await commit([.tokenRevoked(tokenHash: hash.bytes, at: clock.nowMs())], user: userId)
        for listener in revocationListeners { listener(hash) }
    }

    /// Revokes every token of `userId` (logged first, one batch); listeners close all its sessions.
    public func logoutEverywhere(_ userId: String) async throws(ChatError) {
        let now = clock.nowMs()
        let hashes = state.tokens(of: userId, now: now)
        guard !hashes.isEmpty else { return }
        try await commit(hashes.map { .tokenRevoked(tokenHash: $0.bytes, at: now) }, user: userId)
        for hash in hashes { for listener in revocationListeners { listener(hash) } }
    }

    /// Drops the tokens expired by now; listeners close their sessions (4001). Returns how many.
    @discardableResult
    public func expireTokens() -> Int {
        let expired = state.expireTokens(now: clock.nowMs())
        for hash in expired { for listener in revocationListeners { listener(hash) } }
        return expired.count
    }

    public func user(id: String) -> UserRecord? { state.user(id: id) }

    /// The ids of the users `include` selects (a hand-over).
    public func userIds(where include: (String) -> Bool) -> [String] { state.userIds.filter(include) }

    /// Every user `include` selects, with its table index and newest login (re-engagement timers).
    public func indexedUsers(where include: (String) -> Bool) -> [(index: Int32, user: UserRecord, lastLogin: Int64)] {
        state.userIds.compactMap { id in
            guard include(id), let i = state.tableIndex(of: id), let (u, login) = state.user(atIndex: i) else { return nil }
            return (i, u, login)
        }
    }

    public func user(atIndex i: Int32) -> (UserRecord, lastLogin: Int64)? { state.user(atIndex: i) }
    /// Many table indices in one call (a burst of re-engagement timers).
    public func users(atIndices indices: [Int32]) -> [(UserRecord, lastLogin: Int64)?] { indices.map { state.user(atIndex: $0) } }
    public func tableIndex(of userId: String) -> Int32? { state.tableIndex(of: userId) }

    /// Tells `listener` the table index of every user who registers or logs in (after the log's ack).
    public func onLogin(_ listener: @escaping @Sendable (Int32) -> Void) { loginListeners.append(listener) }

    /// A user's hand-over record (see `AccountsState.handOver`).
    public func handOver(_ userId: String, now: Int64) -> ChorusEvent? { state.handOver(userId, now: now) }

    /// Applies a logged `userHandedIn`.
    public func apply(handedIn event: ChorusEvent) { state.apply(event) }
    public func user(named username: String) -> UserRecord? { state.user(named: username) }
    public func lastLoginAt(_ userId: String) -> Int64? { state.lastLogin(userId) }

    /// Logs the events about `user` (one group commit), then applies them. Refused while a
    /// membership change freezes the user; a hand-over's export waits for commits in flight.
    private func commit(_ events: [ChorusEvent], user: String) async throws(ChatError) {
        try config.placement.admit(user: user)
        commitsInFlight += 1
        defer { commitsInFlight -= 1 }
        do {
            _ = try await journal.append(batch: events.map { ($0.kind, $0.encode()) }, at: KeyPoint.of(id: user))
        } catch {
            throw .unavailable("the log refused the write: \(error)")
        }
        for e in events { state.apply(e) }
    }

    /// Waits (bounded) until no commit is in flight: after a freeze, none can start for frozen users.
    public func settle() async throws(ChatError) {
        var waited = 0
        while commitsInFlight > 0 {
            guard waited < 5_000 else { throw .unavailable("account writes did not settle for the hand-over") }
            try? await Task.sleep(for: .milliseconds(1))
            waited += 1
        }
    }

    /// A user id no user has, carrying the username's point (so owned by this node, the username's
    /// owner). Ids of one point differ in 25 random bits; only users of one username hash share a
    /// point, so a retry is all but impossible.
    private func freshUserID(username: String) -> String {
        var id = Placement.mintUser(username: username)
        while state.user(id: id) != nil { id = Placement.mintUser(username: username) }
        return id
    }

    public static func hash(token: String) -> TokenHash { TokenHash(Array(SHA256.hash(data: Array(token.utf8)))) }

    /// An opaque random id: a one-letter prefix, underscore, 13 base32 characters (65 bits). Fifteen
    /// bytes in all, so Swift keeps it inline in every String that holds it (no heap allocation: ids
    /// are the most copied strings of the node). Callers that store ids check them for collisions.
    public static func newID(prefix: String) -> String {
        precondition(prefix.utf8.count == 1, "one-letter id prefixes keep ids inline")
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
        var rng = SystemRandomNumberGenerator()
        var out = Array(prefix.utf8) + [0x5F]
        for _ in 0..<13 { out.append(alphabet[Int(rng.next(upperBound: UInt32(32)))]) }
        return String(decoding: out, as: UTF8.self)
    }
}
