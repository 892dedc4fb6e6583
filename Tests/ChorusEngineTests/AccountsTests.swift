import ChorusCore
@testable import ChorusEngine
import ChorusTestKit
import Synchronization
import Testing

@Suite struct TokenBucketTests {
    @Test func burstThenRateWithRetryAfter() {
        var b = TokenBucket(rate: 100, burst: 300, nowMs: 0)
        for _ in 0..<300 { #expect(b.take(nowMs: 0) == .allowed) }
        #expect(b.take(nowMs: 0) == .limited(retryAfterMs: 10))
        #expect(b.take(nowMs: 9) == .limited(retryAfterMs: 1))
        #expect(b.take(nowMs: 10) == .allowed)
        // A long pause refills to the burst, not beyond.
        for _ in 0..<300 { #expect(b.take(nowMs: 100_000) == .allowed) }
        #expect(b.take(nowMs: 100_000) != .allowed)
    }

    @Test func settingParses() throws {
        #expect(try RateLimitSetting.parse("100:300") == RateLimitSetting(rate: 100, burst: 300))
        #expect(try RateLimitSetting.parse("0.5:2") == RateLimitSetting(rate: 0.5, burst: 2))
        #expect(try RateLimitSetting.parse("off") == nil)
        for bad in ["", "100", "100:", ":3", "-1:3", "1:0", "a:b", "1:2:3"] {
            #expect(throws: RateLimitParseError.self, "\(bad)") { try RateLimitSetting.parse(bad) }
        }
    }

    @Test func keyedLimiterIsBoundedAndPerKey() {
        var l = KeyedRateLimiter(setting: RateLimitSetting(rate: 1, burst: 1), maxKeys: 4)
        #expect(l.take("a", nowMs: 0) == .allowed)
        #expect(l.take("a", nowMs: 0) != .allowed)
        #expect(l.take("b", nowMs: 0) == .allowed)
        for k in ["c", "d", "e", "f"] { _ = l.take(k, nowMs: 0) }
        #expect(l.take("f", nowMs: 0) != .allowed)
    }
}

@Suite struct AccountsTests {
    func make(_ journal: InMemoryJournal = InMemoryJournal(), clock: ManualClock = ManualClock(), login: RateLimitSetting? = nil) -> Accounts {
        var config = Accounts.Configuration()
        config.hasher = PasswordHasher(iterations: PasswordHasher.insecureFastIterations)
        config.loginRateLimit = login
        return Accounts(state: AccountsState(), journal: journal, clock: clock, configuration: config)
    }

    @Test func registerLoginAuthenticateLogout() async throws {
        let journal = InMemoryJournal()
        let clock = ManualClock()
        let accounts = make(journal, clock: clock)
        let alice = try await accounts.register(username: "alice", password: "correct horse", email: "alice@example.com", displayName: nil)
        #expect(alice.displayName == "alice" && alice.userId.hasPrefix("u_") && alice.userId.count == 15)
        #expect(await accounts.lastLoginAt(alice.userId) == clock.nowMs(), "registering counts as a login")
        await #expect(throws: ChatError.usernameTaken) {
            try await accounts.register(username: "alice", password: "another pw", email: "a2@example.com", displayName: nil)
        }
        await #expect(throws: ChatError.invalidCredentials) {
            try await accounts.login(username: "alice", password: "wrong password", clientAddress: "127.0.0.1")
        }
        await #expect(throws: ChatError.invalidCredentials) {
            try await accounts.login(username: "nobody", password: "whatever1", clientAddress: "127.0.0.1")
        }
        clock.advance(ms: 5000)
        let issued = try await accounts.login(username: "alice", password: "correct horse", clientAddress: "127.0.0.1")
        #expect(issued.token.hasPrefix(alice.userId + "."), "the token names its user")
        #expect(issued.token.count == alice.userId.count + 1 + 43, "then 256 bits, base64url without padding")
        #expect(await accounts.lastLoginAt(alice.userId) == clock.nowMs())
        #expect(try await accounts.authenticate(token: issued.token).userId == alice.userId)
        await #expect(throws: ChatError.unauthorized) { try await accounts.authenticate(token: issued.token + "x") }
        // The log holds the token's hash, never the token.
        let tokenBytes = Array(issued.token.utf8)
        #expect(!journal.records.contains { r in r.payload.count >= tokenBytes.count && String(decoding: r.payload, as: UTF8.self).contains(issued.token) })
        try await accounts.logout(token: issued.token)
        await #expect(throws: ChatError.unauthorized) { try await accounts.authenticate(token: issued.token) }
    }

    @Test func tokensExpire() async throws {
        let clock = ManualClock()
        let accounts = make(clock: clock)
        _ = try await accounts.register(username: "bob", password: "password1", email: "bob@example.com", displayName: "Bob")
        let issued = try await accounts.login(username: "bob", password: "password1", clientAddress: "x")
        clock.advance(ms: issued.expiresAt - clock.nowMs() - 1)
        _ = try await accounts.authenticate(token: issued.token)
        clock.advance(ms: 1)
        await #expect(throws: ChatError.unauthorized) { try await accounts.authenticate(token: issued.token) }
    }

    @Test func expiredTokensAreDroppedAndTheirSessionsToldOnce() async throws {
        let clock = ManualClock()
        let accounts = make(clock: clock)
        let closed = Mutex<[TokenHash]>([])
        await accounts.onRevocation { h in closed.withLock { $0.append(h) } }
        _ = try await accounts.register(username: "bob", password: "password1", email: "bob@example.com", displayName: "Bob")
        let first = try await accounts.login(username: "bob", password: "password1", clientAddress: "x")
        clock.advance(ms: 1000)
        let second = try await accounts.login(username: "bob", password: "password1", clientAddress: "x")
        #expect(await accounts.expireTokens() == 0, "nothing expired yet: no scan")
        clock.advance(ms: first.expiresAt - clock.nowMs())
        #expect(await accounts.expireTokens() == 1)
        #expect(closed.withLock { $0 } == [Accounts.hash(token: first.token)])
        #expect(await accounts.expireTokens() == 0, "told once")
        _ = try await accounts.authenticate(token: second.token)
        clock.advance(ms: 1000)
        #expect(await accounts.expireTokens() == 1)
        #expect(closed.withLock { $0.count } == 2)
    }

    @Test func loggingOutEverywhereRevokesEveryTokenOfTheUserOnly() async throws {
        let journal = InMemoryJournal()
        let accounts = make(journal)
        let closed = Mutex<Set<TokenHash>>([])
        await accounts.onRevocation { h in _ = closed.withLock { $0.insert(h) } }
        let bob = try await accounts.register(username: "bob", password: "password1", email: "bob@example.com", displayName: nil)
        _ = try await accounts.register(username: "cat", password: "password1", email: "cat@example.com", displayName: nil)
        let tokens = [
            try await accounts.login(username: "bob", password: "password1", clientAddress: "x"),
            try await accounts.login(username: "bob", password: "password1", clientAddress: "y"),
        ]
        let cats = try await accounts.login(username: "cat", password: "password1", clientAddress: "x")
        try await accounts.logoutEverywhere(bob.userId)
        for t in tokens { await #expect(throws: ChatError.unauthorized) { try await accounts.authenticate(token: t.token) } }
        _ = try await accounts.authenticate(token: cats.token)
        #expect(closed.withLock { $0 } == Set(tokens.map { Accounts.hash(token: $0.token) }))
        // Durable: a replay of the log agrees.
        var state = AccountsState()
        for r in journal.records { state.apply(try ChorusEvent.decode(kind: r.kind, payload: r.payload)) }
        #expect(tokens.allSatisfy { state.authenticate(Accounts.hash(token: $0.token), now: 0) == nil })
    }

    @Test func stateReplaysFromTheLog() async throws {
        let journal = InMemoryJournal()
        let accounts = make(journal)
        let user = try await accounts.register(username: "carol", password: "password1", email: "c@example.com", displayName: "C")
        let issued = try await accounts.login(username: "carol", password: "password1", clientAddress: "x")
        var state = AccountsState()
        for r in journal.records { state.apply(try ChorusEvent.decode(kind: r.kind, payload: r.payload)) }
        #expect(state.user(named: "carol") == user)
        #expect(state.authenticate(Accounts.hash(token: issued.token), now: 0) == user.userId)
    }

    @Test func aStoppedLogRefusesAndChangesNothing() async throws {
        let journal = InMemoryJournal()
        let accounts = make(journal)
        journal.fail()
        await #expect(throws: ChatError.self) {
            try await accounts.register(username: "dave", password: "password1", email: "d@example.com", displayName: nil)
        }
        #expect(await accounts.user(named: "dave") == nil)
    }

    @Test func loginRateLimitPerAddress() async throws {
        let accounts = make(login: RateLimitSetting(rate: 1, burst: 2))
        _ = try await accounts.register(username: "erin", password: "password1", email: "e@example.com", displayName: nil)
        _ = try await accounts.login(username: "erin", password: "password1", clientAddress: "10.0.0.1")
        await #expect(throws: ChatError.invalidCredentials) { try await accounts.login(username: "erin", password: "bad password", clientAddress: "10.0.0.1") }
        await #expect(throws: ChatError.rateLimited(retryAfterMs: 1000)) {
            try await accounts.login(username: "erin", password: "password1", clientAddress: "10.0.0.1")
        }
        _ = try await accounts.login(username: "erin", password: "password1", clientAddress: "10.0.0.2")
    }

    @Test func validation() {
        let state = AccountsState()
        let limits = ChatLimits()
        #expect(state.validateRegistration(username: "ok_name", password: "password1", email: "a@b.co", displayName: nil, limits: limits) == nil)
        #expect(state.validateRegistration(username: "BAD", password: "password1", email: "a@b.co", displayName: nil, limits: limits)?.code == "bad_request")
        #expect(state.validateRegistration(username: "okname", password: "short", email: "a@b.co", displayName: nil, limits: limits)?.code == "bad_request")
        #expect(state.validateRegistration(username: "okname", password: "password1", email: "nope", displayName: nil, limits: limits)?.code == "bad_request")
        #expect(state.validateRegistration(username: "okname", password: "password1", email: "a@b.co", displayName: "x\u{7}", limits: limits)?.code == "bad_request")
        // Format characters hide or reorder what a name shows: a bidi override, a zero-width space,
        // a word joiner are refused; the zero-width joiners that scripts and emoji need are not.
        for hidden in ["evil\u{202E}gnp.exe", "ad\u{200B}min", "a\u{2060}b", "\u{FEFF}bob"] {
            #expect(state.validateRegistration(username: "okname", password: "password1", email: "a@b.co", displayName: hidden, limits: limits)?.code == "bad_request", "\(hidden.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        for fine in ["Zoë", "\u{1F469}\u{200D}\u{1F4BB}", "\u{0915}\u{094D}\u{200C}\u{0937}"] {
            #expect(state.validateRegistration(username: "okname", password: "password1", email: "a@b.co", displayName: fine, limits: limits) == nil)
        }
        #expect(state.validateRegistration(username: "taken", password: "password1", email: "a@b.co", displayName: nil, limits: limits, reserved: ["taken"]) == .usernameTaken)
    }

    @Test func passwordHashRoundTripAndCost() throws {
        let hasher = PasswordHasher(iterations: 1000)
        let stored = try hasher.hash("secret password")
        #expect(stored.hasPrefix("pbkdf2-sha256$1000$"))
        #expect(hasher.verify("secret password", against: stored))
        #expect(!hasher.verify("secret passwore", against: stored))
        #expect(!hasher.verify("secret password", against: "garbage"))
        #expect(PasswordHasher().iterations >= 600_000)
        #expect(try hasher.hash("same") != hasher.hash("same"), "salted")
    }
}
