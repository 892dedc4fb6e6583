/// How a node sends re-engagement email: the policy, the sender, links, wording and pace.
public struct ReengagementSettings: Sendable {
    public var policy: ReengagementPolicy
    public var from: String
    /// Links in emails start with it (`--public-url`).
    public var publicURL: String
    /// The right-hand side of Message-IDs.
    public var domain: String
    public var templates = EmailTemplates.standard
    /// Emails handed to the mailer per second at most (a token bucket of one second's worth).
    public var sendPerSecond = 50
    /// Emails in flight at once (the SMTP mailer keeps as many connections).
    public var concurrency = 4
    /// Outcomes logged per append while a round's sends go on (the rest at its end): a crash
    /// resends at most this many plus those answered during an append's fsync and those in flight.
    public var outcomesPerAppend = 64
    public var retry = RetrySchedule()
    public var tickMs: Int64 = 1_000

    public init(policy: ReengagementPolicy, from: String, publicURL: String, domain: String) {
        self.policy = policy
        self.from = from
        self.publicURL = publicURL
        self.domain = domain
    }
}
