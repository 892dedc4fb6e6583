import ChorusCore
import Testing

@testable import ChorusEngine

/// What a follower keeps of its users' re-engagement email records for a promotion.
@Suite struct StagedEmailsTests {
    static func queued(_ user: String, _ id: String, period: Int64) -> ChorusEvent {
        .emailQueued(userId: user, periodStart: period, messageId: id, to: "\(user)@example.com", at: period + 10)
    }

    @Test func keepsWhatTheOutboxNeedsAndDropsOlderSentEmails() {
        var s = StagedEmails()
        s.apply(Self.queued("u_a", "m1", period: 1))
        s.apply(.emailSent(messageId: "m1", at: 2))
        s.apply(Self.queued("u_a", "m2", period: 3))  // newest, pending
        s.apply(Self.queued("u_b", "m3", period: 1))
        s.apply(.emailFailed(messageId: "m3", at: 2, reason: "550"))
        s.apply(.unsubscribed(userId: "u_b", at: 4))
        s.apply(.unsubscribed(userId: "u_b", at: 5))  // once is enough
        s.apply(.emailSent(messageId: "unknown", at: 6))  // not a staged email: ignored
        s.apply(Self.queued("u_a", "m2", period: 3))  // a repeat: ignored
        #expect(s.byUser["u_a"] == [Self.queued("u_a", "m2", period: 3)], "the older sent email is dropped, the pending newest kept")
        #expect(s.byUser["u_b"] == [Self.queued("u_b", "m3", period: 1), .emailFailed(messageId: "m3", at: 2, reason: "550"), .unsubscribed(userId: "u_b", at: 4)])
        s.apply(.emailSent(messageId: "m2", at: 7))
        #expect(s.byUser["u_a"] == [Self.queued("u_a", "m2", period: 3), .emailSent(messageId: "m2", at: 7)], "the newest stays, with its outcome")
    }

    @Test func takeHandsOverTheSelectedUsersOnce() {
        var s = StagedEmails()
        s.apply(Self.queued("u_a", "m1", period: 1))
        s.apply(Self.queued("u_b", "m2", period: 1))
        #expect(s.take { $0 == "u_a" } == [Self.queued("u_a", "m1", period: 1)])
        #expect(s.take { $0 == "u_a" } == [])
        #expect(s.userCount == 1)
        // A sent record for a message handed over is not staged again (its user is gone from here).
        s.apply(.emailSent(messageId: "m1", at: 3))
        #expect(s.byUser["u_a"] == nil)
    }
}
