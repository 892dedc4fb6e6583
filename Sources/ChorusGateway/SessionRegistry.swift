import ChorusCore
import ChorusEngine
import Logging
import Metrics
import NIOCore
import Synchronization

/// Open sessions: by token (a revoked token's sessions close at once, 4001), by user (typing), and
/// presence (`PresenceCore`, lazy: only watchers are told of changes).
public final class SessionRegistry: Sendable {
    struct State {
        var byToken: [TokenHash: [ObjectIdentifier: WebSocketSession]] = [:]
        var byUser: [String: [ObjectIdentifier: WebSocketSession]] = [:]
        var byID: [ObjectIdentifier: WebSocketSession] = [:]
        var presence = PresenceCore()
    }

    private let state = Mutex(State())
    private let clock: any WallClock
    /// A cluster's presence across nodes; nil on a single node.
    let cluster: ClusterPeers?

    public init(clock: any WallClock, cluster: ClusterPeers? = nil) {
        self.clock = clock
        self.cluster = cluster
    }

    public var openSessions: Int { state.withLock { $0.byID.count } }

    func add(_ s: WebSocketSession) {
        let id = ObjectIdentifier(s)
        let (change, targets) = state.withLock { st -> (PresenceCore.Change?, [WebSocketSession]) in
            st.byToken[s.tokenHash, default: [:]][id] = s
            st.byUser[s.userId, default: [:]][id] = s
            st.byID[id] = s
            let change = st.presence.opened(s.userId, now: clock.nowMs())
            return (change, change?.watchers.compactMap { st.byID[$0] } ?? [])
        }
        if let change { notify(change, targets) }
    }

    func remove(_ s: WebSocketSession) {
        let id = ObjectIdentifier(s)
        let (change, targets) = state.withLock { st -> (PresenceCore.Change?, [WebSocketSession]) in
            guard st.byID.removeValue(forKey: id) != nil else { return (nil, []) }
            st.byToken[s.tokenHash]?.removeValue(forKey: id)
            if st.byToken[s.tokenHash]?.isEmpty == true { st.byToken[s.tokenHash] = nil }
            st.byUser[s.userId]?.removeValue(forKey: id)
            if st.byUser[s.userId]?.isEmpty == true { st.byUser[s.userId] = nil }
            let change = st.presence.closed(s.userId, session: id, now: clock.nowMs())
            return (change, change?.watchers.compactMap { st.byID[$0] } ?? [])
        }
        if let change { notify(change, targets) }
    }

    /// Closes every session opened with this token.
    public func revoked(_ hash: TokenHash) {
        for s in state.withLock({ Array(($0.byToken[hash] ?? [:]).values) }) { s.close(code: CloseCode.tokenRevoked, reason: "token revoked") }
    }

    /// Closes the sessions of the users `select` picks (users a membership change moves away).
    public func close(usersWhere select: (String) -> Bool, code: UInt16, reason: String) {
        let picked = state.withLock { st in st.byUser.filter { select($0.key) }.flatMap { Array($0.value.values) } }
        for s in picked { s.close(code: code, reason: reason) }
    }

    /// How many sessions `userId` has open here.
    public func sessionCount(of userId: String) -> Int {
        state.withLock { $0.byUser[userId]?.count ?? 0 }
    }

    /// Open sessions of a user.
    func sessions(of userId: String) -> [WebSocketSession] {
        state.withLock { Array(($0.byUser[userId] ?? [:]).values) }
    }

    /// Starts telling `session` about these users; sends their presence now. Users of other nodes:
    /// their owner is asked for the status now and tells this node of every change.
    /// Starts pushing these users' changes to `session`; false (nothing changed) past the bound of
    /// users watched per session.
    @discardableResult
    func watch(_ session: WebSocketSession, users: [String]) -> Bool {
        let now = clock.nowMs()
        guard let statuses = state.withLock({ $0.presence.watch(ObjectIdentifier(session), users: users, now: now) }) else { return false }
        var elsewhere: [String] = []
        for (u, status) in statuses {
            if let cluster, !cluster.placement.isLocal(user: u) {
                elsewhere.append(u)
            } else {
                session.sendFromAnyThread(Self.frame(u, status))
            }
        }
        guard let cluster, !elsewhere.isEmpty else { return true }
        Task {
            for (u, status) in await remotePresence(of: elsewhere, watch: true, cluster: cluster) { session.sendFromAnyThread(Self.frame(u, status)) }
        }
        return true
    }

    /// One user's status now.
    func status(_ userId: String) -> PresenceCore.Status {
        let now = clock.nowMs()
        return state.withLock { $0.presence.status(userId, now: now) }
    }

    /// Another node watches these users of this node: their status now.
    func watch(fromNode node: String, users: [String]) -> [(String, PresenceCore.Status)] {
        let now = clock.nowMs()
        return state.withLock { $0.presence.watch(fromNode: node, users: users, now: now) }
    }

    /// A user of another node changed: tell the sessions here that watch it.
    func remoteChange(_ userId: String, _ status: PresenceCore.Status) {
        let targets = state.withLock { st in st.presence.watchers(of: userId).compactMap { st.byID[$0] } }
        let frame = Self.frame(userId, status)
        for t in targets { t.sendFromAnyThread(frame) }
    }

    /// Presence as `GET /v1/presence` reports it (users of other nodes: asked of their owners).
    public func presence(of users: [String]) async -> [(userId: String, online: Bool, lastSeen: Int64)] {
        let now = clock.nowMs()
        var known = state.withLock { st in Dictionary(users.map { ($0, st.presence.status($0, now: now)) }, uniquingKeysWith: { a, _ in a }) }
        if let cluster {
            let elsewhere = users.filter { !cluster.placement.isLocal(user: $0) }
            if !elsewhere.isEmpty { for (u, s) in await remotePresence(of: elsewhere, watch: false, cluster: cluster) { known[u] = s } }
        }
        return users.map { u in (u, known[u]!.online, known[u]!.lastSeen) }
    }

    /// A local status change: this node's watchers, then the nodes watching.
    private func notify(_ change: PresenceCore.Change, _ targets: [WebSocketSession]) {
        let frame = Self.frame(change.userId, change.status)
        for t in targets { t.sendFromAnyThread(frame) }
        if !change.nodes.isEmpty, let cluster {
            for node in change.nodes { tellPresence(change.userId, change.status, to: node, cluster: cluster) }
        }
    }

    static func frame(_ userId: String, _ status: PresenceCore.Status) -> [UInt8] {
        ServerFrame.presence(userId: userId, online: status.online, lastSeen: status.lastSeen)
    }
}
