import ChorusCore

/// The durable state of re-engagement email, rebuilt from the log (`emailQueued`, `emailSent`,
/// `emailFailed`, `unsubscribed`): what is pending, what was sent, who unsubscribed, which
/// addresses are suppressed. Pure; the sender and the timer actor carry its decisions out.
///
/// Bound: at most one pending email per user (a period is mailed once, and a new period starts only
/// with a login), so the outbox never holds more than the node's users.
public struct Outbox: Sendable, Equatable {
    public enum Status: Sendable, Equatable {
        case pending
        case sent(at: Int64)
        case failed(reason: String)
    }

    public struct Email: Sendable, Equatable {
        public var messageId: String
        public var userId: String
        public var to: String
        public var periodStart: Int64
        public var queuedAt: Int64
        public var status: Status
    }

    public private(set) var emails: [String: Email] = [:]
    /// Message-IDs still to send, in the order they were queued.
    public private(set) var pending = PendingQueue()
    /// Each user's last mailed period (the login that started it).
    public private(set) var mailedPeriod: [String: Int64] = [:]
    public private(set) var unsubscribed: Set<String> = []
    /// Addresses a mail server refused for good.
    public private(set) var suppressed: Set<String> = []
    /// Messages a user's emails are known by, so old entries can be dropped (newest kept per user).
    private var latestByUser: [String: String] = [:]

    public init() {}

    /// Applies one logged event (replay, or live after the log's ack). Other events are ignored.
    public mutating func apply(_ event: ChorusEvent) {
        switch event {
        case .emailQueued(let userId, let periodStart, let messageId, let to, let at):
            guard emails[messageId] == nil else { return }
            // Only the newest email per user is kept: older ones are done (sent or failed).
            if let old = latestByUser[userId], old != messageId, emails[old]?.status != .pending { emails[old] = nil }
            emails[messageId] = Email(messageId: messageId, userId: userId, to: to, periodStart: periodStart, queuedAt: at, status: .pending)
            latestByUser[userId] = messageId
            pending.append(messageId)
            mailedPeriod[userId] = max(mailedPeriod[userId] ?? .min, periodStart)
        case .emailSent(let messageId, let at):
            guard emails[messageId]?.status == .pending else { return }
            emails[messageId]!.status = .sent(at: at)
            pending.remove(messageId)
        case .emailFailed(let messageId, _, let reason):
            guard let e = emails[messageId], e.status == .pending else { return }
            emails[messageId]!.status = .failed(reason: reason)
            pending.remove(messageId)
            suppressed.insert(e.to.lowercased())
        case .unsubscribed(let userId, _):
            unsubscribed.insert(userId)
        default:
            break
        }
    }

    /// The policy's view of a user.
    public func facts(userId: String, email: String, lastLoginAt: Int64) -> ReengagementPolicy.UserFacts {
        ReengagementPolicy.UserFacts(
            userId: userId, email: email, lastLoginAt: lastLoginAt, unsubscribed: unsubscribed.contains(userId),
            mailedPeriod: mailedPeriod[userId], suppressed: suppressed.contains(email.lowercased()))
    }

    /// Whether a pending email should still go (re-checked at send time): not after an unsubscribe,
    /// nor to an address suppressed meanwhile.
    public func shouldSend(_ messageId: String) -> Bool {
        guard let e = emails[messageId], e.status == .pending else { return false }
        return !unsubscribed.contains(e.userId) && !suppressed.contains(e.to.lowercased())
    }
}

extension Outbox {
    /// Binary form (engine snapshots): the state replay would rebuild, not the events.
    public func encode(into w: inout ByteWriter) {
        w.writeVarint(UInt64(emails.count))
        for e in emails.values.sorted(by: { $0.messageId < $1.messageId }) {
            w.writeString(e.messageId); w.writeString(e.userId); w.writeString(e.to); w.write(e.periodStart); w.write(e.queuedAt)
            switch e.status {
            case .pending: w.write(UInt8(0))
            case .sent(let at): w.write(UInt8(1)); w.write(at)
            case .failed(let reason): w.write(UInt8(2)); w.writeString(reason)
            }
        }
        w.writeVarint(UInt64(pending.count))
        for id in pending { w.writeString(id) }
        w.writeVarint(UInt64(mailedPeriod.count))
        for (user, period) in mailedPeriod.sorted(by: { $0.key < $1.key }) { w.writeString(user); w.write(period) }
        for set in [unsubscribed, suppressed] {
            w.writeVarint(UInt64(set.count))
            for v in set.sorted() { w.writeString(v) }
        }
    }

    public static func decode(from r: inout ByteReader, bound: Int) throws -> Outbox {
        func count() throws -> Int {
            let n = try r.readVarint()
            guard n <= UInt64(bound) else { throw ByteReaderError.lengthOverBound(length: n, bound: bound) }
            return Int(n)
        }
        func s() throws -> String { try r.readString(bound: 1024) }
        var o = Outbox()
        for _ in 0..<(try count()) {
            let id = try s(), user = try s(), to = try s(), period = try r.readInt64(), queuedAt = try r.readInt64()
            let status: Status
            switch try r.readUInt8() {
            case 0: status = .pending
            case 1: status = .sent(at: try r.readInt64())
            case 2: status = .failed(reason: try s())
            case let k: throw ByteReaderError.lengthOverBound(length: UInt64(k), bound: 2)
            }
            o.emails[id] = Email(messageId: id, userId: user, to: to, periodStart: period, queuedAt: queuedAt, status: status)
            if let old = o.latestByUser[user], let oldEmail = o.emails[old], oldEmail.periodStart > period { continue }
            o.latestByUser[user] = id
        }
        for _ in 0..<(try count()) { o.pending.append(try s()) }
        for _ in 0..<(try count()) { o.mailedPeriod[try s()] = try r.readInt64() }
        for _ in 0..<(try count()) { o.unsubscribed.insert(try s()) }
        for _ in 0..<(try count()) { o.suppressed.insert(try s()) }
        return o
    }
}

/// When to try a send again after a temporary failure (4xx, server down): exponential backoff from
/// `baseMs`, capped at `capMs`, with full jitter from the caller's random source. Pure.
public struct RetrySchedule: Sendable, Equatable {
    public var baseMs: Int64 = 1_000
    public var capMs: Int64 = 300_000

    public init(baseMs: Int64 = 1_000, capMs: Int64 = 300_000) {
        self.baseMs = baseMs
        self.capMs = capMs
    }

    /// The delay before attempt `attempt + 1` (attempt counts from 1), in [ceiling / 2, ceiling].
    public func delayMs(afterAttempt attempt: Int, random: inout some RandomNumberGenerator) -> Int64 {
        let ceiling = min(capMs, baseMs << Int64(min(max(attempt - 1, 0), 20)))
        return ceiling / 2 + Int64.random(in: 0...(ceiling - ceiling / 2), using: &random)
    }
}
