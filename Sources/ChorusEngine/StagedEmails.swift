import ChorusCore

/// The re-engagement email records of users whose partitions this node follows, kept so that a
/// promotion hands the re-engagement outbox what the old leader had queued and sent (otherwise a
/// new leader would mail a user again, or never send what was queued). Per user: every email not
/// yet sent, the newest one with its outcome, failures (they suppress an address) and the
/// unsubscribe; a sent email older than the newest is dropped, so a user's list stays a few
/// records. Pure; the events are those the outbox applies (`Outbox.apply`).
public struct StagedEmails: Sendable {
    private(set) var byUser: [String: [ChorusEvent]] = [:]
    /// The user of each staged email (sent and failed records name only the message).
    private var userOf: [String: String] = [:]

    public init() {}

    /// Record kinds staged here (`emailQueued` ... `unsubscribed`).
    public static let kinds: ClosedRange<UInt16> = 15...18

    public var userCount: Int { byUser.count }

    public mutating func apply(_ event: ChorusEvent) {
        switch event {
        case .emailQueued(let user, _, let id, _, _):
            guard userOf[id] == nil else { return }
            userOf[id] = user
            byUser[user, default: []].append(event)
            compact(user)
        case .emailSent(let id, _), .emailFailed(let id, _, _):
            guard let user = userOf[id] else { return }
            byUser[user, default: []].append(event)
            compact(user)
        case .unsubscribed(let user, _):
            let already = byUser[user]?.contains { if case .unsubscribed = $0 { true } else { false } } ?? false
            if !already { byUser[user, default: []].append(event) }
        default:
            break
        }
    }

    /// Hands over (and forgets) the records of the users `isPromoted` selects, in the order they
    /// were logged per user.
    public mutating func take(where isPromoted: (String) -> Bool) -> [ChorusEvent] {
        var out: [ChorusEvent] = []
        for user in byUser.keys where isPromoted(user) {
            for case .emailQueued(_, _, let id, _, _) in byUser[user]! { userOf[id] = nil }
            out += byUser.removeValue(forKey: user)!
        }
        return out
    }

    /// Drops `user`'s sent emails other than the newest (queued record and outcome).
    private mutating func compact(_ user: String) {
        guard let events = byUser[user] else { return }
        var newest: String?
        var sent: Set<String> = []
        for e in events {
            switch e {
            case .emailQueued(_, _, let id, _, _): newest = id
            case .emailSent(let id, _): sent.insert(id)
            default: break
            }
        }
        let drop = sent.subtracting([newest].compactMap { $0 })
        guard !drop.isEmpty else { return }
        byUser[user] = events.filter { e in
            switch e {
            case .emailQueued(_, _, let id, _, _), .emailSent(let id, _): !drop.contains(id)
            default: true
            }
        }
        for id in drop { userOf[id] = nil }
    }
}
