import ChorusCore

/// Who is online, and who watches whom. Pure: the hub calls it under a lock with `now` and carries
/// out the notifications it returns. Not durable: after a restart everyone starts offline.
public struct PresenceCore: Sendable {
    /// A watcher: one session.
    public typealias Watcher = ObjectIdentifier

    public typealias Status = PresenceStatus

    /// A status change and the sessions (and other nodes) to tell.
    public struct Change: Equatable, Sendable {
        public var userId: String
        public var status: Status
        public var watchers: [Watcher]
        /// Nodes of a cluster whose sessions watch this user; each node forwards the change to them.
        public var nodes: [String] = []
    }

    /// Open sessions and last-seen time per user, in one map (one entry per user seen on this node).
    private var seen: [String: (sessions: Int32, lastSeen: Int64)] = [:]
    private var watchersOf: [String: Set<Watcher>] = [:]
    private var watchedBy: [Watcher: Set<String>] = [:]
    /// Users of this node watched from other nodes: user -> nodes (at most one entry per node each;
    /// only users the node holds are added, so at most users x peers).
    private var nodesWatching: [String: Set<String>] = [:]

    public init() {}

    public func status(_ userId: String, now: Int64) -> Status {
        let entry = seen[userId]
        let online = (entry?.sessions ?? 0) > 0
        return Status(online: online, lastSeen: online ? now : entry?.lastSeen ?? 0)
    }

    /// A session opened; the first one makes the user online.
    public mutating func opened(_ userId: String, now: Int64) -> Change? {
        let count = (seen[userId]?.sessions ?? 0) + 1
        seen[userId] = (count, now)
        return count == 1 ? change(userId, Status(online: true, lastSeen: now)) : nil
    }

    /// A session closed (cleanly or by heartbeat timeout); the last one makes the user offline at once.
    /// The session also stops watching.
    public mutating func closed(_ userId: String, session: Watcher, now: Int64) -> Change? {
        unwatchAll(session)
        let count = max(0, (seen[userId]?.sessions ?? 0) - 1)
        seen[userId] = (count, now)
        return count == 0 ? change(userId, Status(online: false, lastSeen: now)) : nil
    }

    /// Adds users to what `session` watches (a later `watch` adds to the set); returns their status now.
    /// Users one session may watch in all, over every `watch` it sends (PROTOCOL.md section 6).
    public static let maxWatchedPerSession = 1_000

    /// Adds `users` to what `session` watches and returns their status now; nil, and nothing
    /// added, if the session would then watch more than `maxWatchedPerSession` users.
    public mutating func watch(_ session: Watcher, users: [String], now: Int64) -> [(String, Status)]? {
        let already = watchedBy[session] ?? []
        guard already.union(users).count <= Self.maxWatchedPerSession else { return nil }
        var out: [(String, Status)] = []
        for u in users {
            watchersOf[u, default: []].insert(session)
            watchedBy[session, default: []].insert(u)
            out.append((u, status(u, now: now)))
        }
        return out
    }

    /// Another node has sessions watching these users (of this node); returns their status now.
    public mutating func watch(fromNode node: String, users: [String], now: Int64) -> [(String, Status)] {
        users.map { u in
            nodesWatching[u, default: []].insert(node)
            return (u, status(u, now: now))
        }
    }

    /// The sessions here watching `userId` (a user of another node whose change was reported).
    public func watchers(of userId: String) -> [Watcher] { Array(watchersOf[userId] ?? []) }

    public mutating func unwatchAll(_ session: Watcher) {
        for u in watchedBy.removeValue(forKey: session) ?? [] {
            watchersOf[u]?.remove(session)
            if watchersOf[u]?.isEmpty == true { watchersOf[u] = nil }
        }
    }

    private func change(_ userId: String, _ status: Status) -> Change? {
        // Lazy: nobody watching means no fan-out at all.
        let w = watchersOf[userId] ?? []
        let nodes = nodesWatching[userId] ?? []
        guard !w.isEmpty || !nodes.isEmpty else { return nil }
        return Change(userId: userId, status: status, watchers: Array(w), nodes: nodes.sorted())
    }
}
