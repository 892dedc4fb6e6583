import ChorusCore
import Logging
import Metrics

extension ReengagementDirectory {
    public func users(_ indices: [UInt32]) async -> [ReengagementUser?] {
        var out: [ReengagementUser?] = []
        for i in indices { out.append(await user(i)) }
        return out
    }
}

/// The timer-wheel actor and the sender: arms one timer per user from the durable `lastLoginAt`
/// (timers are not logged), and on `tick(now:)` hands what expired to the policy, logs the emails
/// that are due (`emailQueued`) and sends what is pending, within the rate limit, retrying
/// temporary failures with backoff and jitter. Time comes only from `tick`'s `now`.
public actor ReengagementService {
    var settings: ReengagementSettings
    let journal: any Journal
    let mailer: any Mailer
    let directory: any ReengagementDirectory
    let tokens: UnsubscribeTokens
    let logger: Logger
    /// A user's ring point: a user's records name it (a replicated log keeps them in its partition).
    let keyPoint: @Sendable (String) -> UInt64
    var wheel: TimerWheel
    public private(set) var outbox: Outbox
    /// Pending emails waiting for a retry: Message-ID -> (attempts so far, not before).
    var retries: [String: (attempts: Int, at: Int64)] = [:]
    var budget: Double
    var lastTick: Int64
    var random: any RandomNumberGenerator = SystemRandomNumberGenerator()
    let metrics = ReengagementMetrics()

    public init(
        settings: ReengagementSettings, outbox: Outbox, journal: any Journal, mailer: any Mailer, directory: any ReengagementDirectory,
        tokens: UnsubscribeTokens, nowMs: Int64, logger: Logger, keyPoint: @escaping @Sendable (String) -> UInt64 = { _ in 0 }
    ) {
        self.keyPoint = keyPoint
        self.settings = settings
        self.outbox = outbox
        self.journal = journal
        self.mailer = mailer
        self.directory = directory
        self.tokens = tokens
        self.logger = logger
        wheel = TimerWheel(nowMs: nowMs, tickMs: settings.tickMs)
        budget = Double(settings.sendPerSecond)
        lastTick = nowMs
    }

    /// Arms every user's timer (at start-up): due ones are queued at the next tick.
    public func start() async {
        let users = await directory.allUsers()
        wheel.reserve(ids: Int(users.map(\.index).max() ?? 0) + 1)
        for u in users { arm(u, now: lastTick) }
        metrics.outboxDepth.record(outbox.pending.count)
        logger.info("re-engagement timers armed", metadata: ["users": "\(users.count)", "armed": "\(wheel.count)", "pending": "\(outbox.pending.count)"])
    }

    /// A login or a registration: a user with no armed timer (mailed, or new) gets one. Users
    /// already armed are not touched: their timer re-checks when it fires.
    public func loggedIn(_ index: UInt32) async {
        guard !wheel.isArmed(index), let u = await directory.user(index) else { return }
        arm(u, now: lastTick)
    }

    private func arm(_ u: ReengagementUser, now: Int64) {
        switch settings.policy.decide(outbox.facts(userId: u.userId, email: u.email, lastLoginAt: u.lastLoginAt), now: now) {
        case .arm(let at): wheel.schedule(u.index, atMs: at)
        case .send: wheel.schedule(u.index, atMs: now)  // due already: the next tick queues it
        case .none: break
        }
    }

    /// Advances the wheel to `now`, queues what is due, sends what is pending. Returns the number of
    /// emails handed to the mailer.
    @discardableResult
    public func tick(now: Int64) async -> Int {
        budget = min(Double(settings.sendPerSecond), budget + Double(max(0, now - lastTick)) / 1000 * Double(settings.sendPerSecond))
        lastTick = max(lastTick, now)
        let expired = wheel.advance(toMs: now)
        // Looked up and queued in batches (one hop to the accounts, one group commit each): a burst
        // of due users costs a few hundred fsyncs, not one per user.
        var start = 0
        while start < expired.count {
            let indices = Array(expired[start..<min(start + Self.logBatch, expired.count)])
            start += indices.count
            var due: [(index: UInt32, event: ChorusEvent)] = []
            for (index, found) in zip(indices, await directory.users(indices)) {
                guard let u = found else { continue }
                switch settings.policy.decide(outbox.facts(userId: u.userId, email: u.email, lastLoginAt: u.lastLoginAt), now: now) {
                case .arm(let at): wheel.schedule(index, atMs: at)  // a login moved the deadline
                case .send(let periodStart):
                    let id = ReengagementPolicy.messageId(userId: u.userId, periodStart: periodStart, domain: settings.domain)
                    due.append((index, .emailQueued(userId: u.userId, periodStart: periodStart, messageId: id, to: u.email, at: now)))
                case .none(let reason):
                    if reason == .suppressed { metrics.suppressed.increment() }
                }
            }
            guard !due.isEmpty else { continue }
            if await log(due.map(\.event)) {
                metrics.due.increment(by: due.count)
            } else {
                for (index, _) in due { wheel.schedule(index, atMs: now + settings.retry.capMs) }  // look again later
            }
        }
        return await sendPending(now: now)
    }

    /// Expired timers looked up, and queued emails logged, in one go (about 600 KB of records).
    static let logBatch = 5_000

    /// `POST /v1/unsubscribe?token=T`: logs the unsubscribe (once); false for a token not ours.
    public func unsubscribe(token: String, now: Int64) async throws(ChatError) -> Bool {
        guard let userId = tokens.verify(token) else { return false }
        guard !outbox.unsubscribed.contains(userId) else { return true }
        guard await log([.unsubscribed(userId: userId, at: now)]) else { throw .unavailable("the log refused the unsubscribe") }
        return true
    }

    /// The user a token names, if it is ours (`GET /v1/unsubscribe` shows the page for it).
    public nonisolated func verify(token: String) -> String? { tokens.verify(token) }

    /// Logs (one group commit; each user's records at the user's point) then applies; false
    /// (logged loudly) if the log refused.
    func log(_ events: [ChorusEvent]) async -> Bool {
        var groups: [String: [(kind: UInt16, payload: [UInt8])]] = [:]
        for e in events { groups[user(of: e), default: []].append((e.kind, e.encode())) }
        do {
            try await journal.append(groups: groups.map { (keyPoint($0.key), $0.value) })
        } catch {
            logger.error("the log refused re-engagement records", metadata: ["error": "\(error)"])
            return false
        }
        for e in events { outbox.apply(e) }
        return true
    }

    /// The user an email record is about (a sent or failed one through its queued email).
    private func user(of event: ChorusEvent) -> String {
        switch event {
        case .emailQueued(let userId, _, _, _, _), .unsubscribed(let userId, _): userId
        case .emailSent(let id, _), .emailFailed(let id, _, _): outbox.emails[id]?.userId ?? ""
        default: ""
        }
    }

    /// A user's email state as events, for a membership change's hand-over: its newest email (as
    /// queued, then sent or failed) and its unsubscribe.
    public func handOverEvents(of userId: String) -> [ChorusEvent] {
        var events: [ChorusEvent] = []
        if let e = outbox.emails.values.filter({ $0.userId == userId }).max(by: { $0.periodStart < $1.periodStart }) {
            events.append(.emailQueued(userId: userId, periodStart: e.periodStart, messageId: e.messageId, to: e.to, at: e.queuedAt))
            switch e.status {
            case .pending: break
            case .sent(let at): events.append(.emailSent(messageId: e.messageId, at: at))
            case .failed(let reason): events.append(.emailFailed(messageId: e.messageId, at: e.queuedAt, reason: reason))
            }
        }
        if outbox.unsubscribed.contains(userId) { events.append(.unsubscribed(userId: userId, at: 0)) }
        return events
    }

    /// Email state handed to this node (already logged by the hand-over).
    public func receive(_ events: [ChorusEvent]) { for e in events { outbox.apply(e) } }

    /// Arms every user with no timer (users a membership change brought here).
    public func armUnarmed() async {
        for u in await directory.allUsers() where !wheel.isArmed(u.index) { arm(u, now: lastTick) }
    }

    /// Sets the base of links in emails (the node's address is known once it listens).
    public func setPublicURL(_ url: String) { settings.publicURL = url }
}

/// swift-metrics handles for re-engagement email (exported at /metrics).
public struct ReengagementMetrics: Sendable {
    public let due = Counter(label: "chorus_email_due_total")
    public let sent = Counter(label: "chorus_email_sent_total")
    public let retried = Counter(label: "chorus_email_retried_total")
    public let failed = Counter(label: "chorus_email_failed_total")
    public let suppressed = Counter(label: "chorus_email_suppressed_total")
    public let outboxDepth = Gauge(label: "chorus_email_outbox_depth")
}
