import ChorusCore

/// Who gets a re-engagement email, and when (PROTOCOL.md section 4). Pure: every decision takes the
/// user's durable facts and `now`.
///
/// A period of inactivity starts at a login (`lastLoginAt`; registering counts) and is due
/// `inactivityMs` later. One email per period, identified by the user and the login that started
/// it; none without an email address, after unsubscribing, or to a suppressed address (a mail
/// server refused it for good). Logins do not touch the timer: when it fires, the user is looked at
/// again and the timer re-armed if a newer login moved the deadline.
public struct ReengagementPolicy: Sendable, Equatable {
    public var inactivityMs: Int64

    public init(inactivityMs: Int64) {
        precondition(inactivityMs > 0)
        self.inactivityMs = inactivityMs
    }

    /// What the policy knows of one user.
    public struct UserFacts: Sendable, Equatable {
        public var userId: String
        public var email: String
        public var lastLoginAt: Int64
        public var unsubscribed: Bool
        /// The start of the last period an email was queued for (nil: never).
        public var mailedPeriod: Int64?
        public var suppressed: Bool

        public init(userId: String, email: String, lastLoginAt: Int64, unsubscribed: Bool = false, mailedPeriod: Int64? = nil, suppressed: Bool = false) {
            self.userId = userId
            self.email = email
            self.lastLoginAt = lastLoginAt
            self.unsubscribed = unsubscribed
            self.mailedPeriod = mailedPeriod
            self.suppressed = suppressed
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Not due yet: arm the timer for this deadline.
        case arm(atMs: Int64)
        /// Due: queue the email for the period that started at `periodStart`.
        case send(periodStart: Int64)
        /// Nothing to do until something changes (a login starts a new period and re-arms).
        case none(Reason)
    }

    public enum Reason: String, Sendable, Equatable {
        case noEmail = "no email address"
        case unsubscribed
        case alreadyMailed = "already mailed for this period"
        case suppressed = "address suppressed"
    }

    /// The deadline of the user's current period.
    public func deadline(_ u: UserFacts) -> Int64 { u.lastLoginAt + inactivityMs }

    /// The decision at `now` (at start-up, when a timer fires, and again just before sending).
    public func decide(_ u: UserFacts, now: Int64) -> Decision {
        if u.email.isEmpty { return .none(.noEmail) }
        if u.unsubscribed { return .none(.unsubscribed) }
        if u.suppressed { return .none(.suppressed) }
        if u.mailedPeriod == u.lastLoginAt { return .none(.alreadyMailed) }
        let due = deadline(u)
        return now >= due ? .send(periodStart: u.lastLoginAt) : .arm(atMs: due)
    }

    /// The email's Message-ID: the same for the same user and period, for ever (so even the one
    /// unavoidable duplicate, a crash between the mail server's 250 and recording it, is
    /// recognisable as the same email).
    public static func messageId(userId: String, periodStart: Int64, domain: String) -> String {
        "<reengage.\(userId).\(periodStart)@\(domain)>"
    }
}
