import ChorusCore
import ChorusReengagement
import Testing

/// The inactivity rules with plain values and explicit times (PROTOCOL.md section 4).
@Suite struct ReengagementPolicyTests {
    static let day: Int64 = 86_400_000
    let policy = ReengagementPolicy(inactivityMs: 10 * Self.day)
    let login: Int64 = 1_795_000_000_000

    func user(_ outbox: Outbox = Outbox(), email: String = "ann@example.com", lastLogin: Int64? = nil) -> ReengagementPolicy.UserFacts {
        outbox.facts(userId: "u1", email: email, lastLoginAt: lastLogin ?? login)
    }

    @Test func dueExactlyAtTheEndOfThePeriodNotAMillisecondBefore() {
        let deadline = login + 10 * Self.day
        #expect(policy.decide(user(), now: deadline - 1) == .arm(atMs: deadline))
        #expect(policy.decide(user(), now: deadline) == .send(periodStart: login))
        #expect(policy.decide(user(), now: deadline + 1) == .send(periodStart: login))
    }

    @Test func aLoginStartsANewPeriodAndMovesTheDeadline() {
        let later = login + 4 * Self.day
        // The timer for the old deadline fires: the user is looked at again and re-armed.
        #expect(policy.decide(user(lastLogin: later), now: login + 10 * Self.day) == .arm(atMs: later + 10 * Self.day))
    }

    @Test func oneEmailPerPeriodAndANewOneAfterTheNextLogin() {
        var outbox = Outbox()
        let id = ReengagementPolicy.messageId(userId: "u1", periodStart: login, domain: "example.com")
        outbox.apply(.emailQueued(userId: "u1", periodStart: login, messageId: id, to: "ann@example.com", at: login + 10 * Self.day))
        #expect(policy.decide(user(outbox), now: login + 30 * Self.day) == .none(.alreadyMailed))
        outbox.apply(.emailSent(messageId: id, at: login + 10 * Self.day + 5))
        #expect(policy.decide(user(outbox), now: login + 60 * Self.day) == .none(.alreadyMailed), "never two for one period")
        let back = login + 61 * Self.day
        #expect(policy.decide(user(outbox, lastLogin: back), now: back + 10 * Self.day) == .send(periodStart: back))
    }

    @Test func unsubscribedUsersNoAddressAndSuppressedAddressesAreSkipped() {
        var outbox = Outbox()
        outbox.apply(.unsubscribed(userId: "u1", at: login))
        let later = login + 100 * Self.day
        #expect(policy.decide(user(outbox), now: later) == .none(.unsubscribed))
        #expect(policy.decide(user(email: ""), now: later) == .none(.noEmail))
        var refused = Outbox()
        refused.apply(.emailQueued(userId: "u2", periodStart: 1, messageId: "<x>", to: "Ann@Example.com", at: 2))
        refused.apply(.emailFailed(messageId: "<x>", at: 3, reason: "550 mailbox unavailable"))
        #expect(policy.decide(user(refused), now: later) == .none(.suppressed), "the address, whatever its case")
        #expect(refused.pending.isEmpty)
    }

    @Test func theOutboxRecheckAtSendTimeAndItsMessageIdsAreStable() {
        var outbox = Outbox()
        let id = ReengagementPolicy.messageId(userId: "u1", periodStart: login, domain: "chorus.example")
        #expect(id == "<reengage.u1.1795000000000@chorus.example>")
        outbox.apply(.emailQueued(userId: "u1", periodStart: login, messageId: id, to: "ann@example.com", at: 1))
        outbox.apply(.emailQueued(userId: "u1", periodStart: login, messageId: id, to: "ann@example.com", at: 2))  // a repeat
        #expect(outbox.pending == [id] && outbox.shouldSend(id))
        outbox.apply(.unsubscribed(userId: "u1", at: 3))
        #expect(!outbox.shouldSend(id), "unsubscribed after queueing: not sent")
        outbox.apply(.emailSent(messageId: id, at: 4))
        #expect(outbox.pending.isEmpty && outbox.emails[id]?.status == .sent(at: 4))
    }

    @Test func theOutboxSurvivesItsBinaryForm() throws {
        var outbox = Outbox()
        outbox.apply(.emailQueued(userId: "u1", periodStart: 5, messageId: "<a>", to: "a@x.org", at: 6))
        outbox.apply(.emailQueued(userId: "u2", periodStart: 7, messageId: "<b>", to: "b@x.org", at: 8))
        outbox.apply(.emailQueued(userId: "u3", periodStart: 9, messageId: "<c>", to: "c@x.org", at: 10))
        outbox.apply(.emailSent(messageId: "<a>", at: 11))
        outbox.apply(.emailFailed(messageId: "<b>", at: 12, reason: "550"))
        outbox.apply(.unsubscribed(userId: "u4", at: 13))
        var w = ByteWriter(capacity: 256)
        outbox.encode(into: &w)
        var r = ByteReader(w.bytes)
        let back = try Outbox.decode(from: &r, bound: 1000)
        #expect(back == outbox && r.isAtEnd)
    }

    @Test func retriesBackOffExponentiallyWithJitterUpToTheCap() {
        let retry = RetrySchedule(baseMs: 1_000, capMs: 60_000)
        var rng = SystemRandomNumberGenerator()
        for attempt in 1...12 {
            let ceiling = min(60_000, Int64(1_000) << Int64(attempt - 1))
            for _ in 0..<50 {
                let d = retry.delayMs(afterAttempt: attempt, random: &rng)
                #expect(d >= ceiling / 2 && d <= ceiling)
            }
        }
    }
}
