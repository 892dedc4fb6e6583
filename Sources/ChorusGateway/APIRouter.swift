import ChorusCore
import ChorusEngine
import Foundation

/// Maps HTTP requests to engine calls and engine answers to PROTOCOL.md's JSON. No I/O of its own.
public struct APIRouter: Sendable {
    public let accounts: Accounts
    public let conversations: Conversations
    public let sessions: SessionRegistry
    public let metrics: GatewayMetrics
    public let health: @Sendable () -> NodeHealth
    public let metricsText: @Sendable () -> String
    /// The cluster as this node sees it (`GET /v1/cluster`).
    public let cluster: @Sendable () async -> ClusterView
    /// Set on a node of a cluster: requests owned by other nodes are forwarded to them.
    public let clusterGateway: ClusterGateway?
    /// `POST /v1/cluster/members` (an operator's membership change), when the node offers it.
    public let membershipChange: (@Sendable (APIRequest) async -> APIResponse)?
    /// `GET` and `POST /v1/unsubscribe?token=T` (re-engagement email), run on the token's user's owner.
    public let unsubscribe: (@Sendable (APIRequest) async -> APIResponse)?
    /// The browser client (`GET /`, `GET /app/...`), served by every node from its own files.
    public let webClient: WebClient?
    /// The per-user send bucket HTTP sends share with the user's WebSocket sessions; nil is `off`.
    public let userSends: UserSendLimiter?
    /// WebSocket sessions one user may hold (`--max-sessions-per-user`): a declined upgrade past it is `429`.
    public let maxSessionsPerUser: Int
    let clock: any WallClock

    public init(
        accounts: Accounts, conversations: Conversations, sessions: SessionRegistry, metrics: GatewayMetrics,
        health: @escaping @Sendable () -> NodeHealth,
        metricsText: @escaping @Sendable () -> String,
        cluster: @escaping @Sendable () async -> ClusterView,
        clusterGateway: ClusterGateway? = nil,
        membershipChange: (@Sendable (APIRequest) async -> APIResponse)? = nil,
        unsubscribe: (@Sendable (APIRequest) async -> APIResponse)? = nil,
        webClient: WebClient? = nil,
        userSends: UserSendLimiter? = nil,
        maxSessionsPerUser: Int = 20,
        clock: any WallClock = SystemWallClock()
    ) {
        self.maxSessionsPerUser = maxSessionsPerUser
        self.userSends = userSends
        self.clock = clock
        self.webClient = webClient
        self.membershipChange = membershipChange
        self.unsubscribe = unsubscribe
        self.cluster = cluster
        self.clusterGateway = clusterGateway
        self.accounts = accounts
        self.conversations = conversations
        self.sessions = sessions
        self.metrics = metrics
        self.health = health
        self.metricsText = metricsText
    }

    /// `forwarded`: sent by a peer node, which found this node to be the request's owner; run here.
    /// `localOnly`: a peer gathering a cluster-wide list wants this node's part.
    public func handle(_ request: APIRequest, forwarded: Bool = false, localOnly: Bool = false) async -> APIResponse {
        if let web = webClient, let response = web.response(method: request.method, path: request.path) { return response }
        if !forwarded, let cluster = clusterGateway, let node = cluster.executor(for: request) {
            return await cluster.forward(request, to: node)
        }
        do {
            let response = try await route(request)
            if !localOnly, let cluster = clusterGateway, request.method == "GET", request.path == "/v1/conversations" {
                return await cluster.listEverywhere(request, local: response)
            }
            return response
        } catch {
            if case .rateLimited = error { metrics.rateLimited.increment() }
            return .error(error)
        }
    }

    private func route(_ r: APIRequest) async throws(ChatError) -> APIResponse {
        guard let (route, parameters) = APIRoute.match(method: r.method, path: r.path) else {
            // An unknown path under /v1 needs a token before it is told it does not exist.
            if r.path.hasPrefix("/v1/") && !r.path.hasPrefix("/v1/unsubscribe") && !r.path.hasPrefix("/v1/cluster") { _ = try await authenticate(r) }
            return .error(404, code: "not_found", message: "no such endpoint: \(r.method) \(r.path)")
        }
        switch route {
        case .webClient, .webAsset:
            // Reached only without a web client (`handle` serves it first).
            return .error(503, code: "unavailable", message: "the web client's files were not found beside this binary")
        case .healthz:
            let h = health()
            return .json(h.alive ? 200 : 503, ["status": h.alive ? "ok" : "unhealthy", "reason": h.reason ?? NSNull()])
        case .readyz:
            let h = health()
            return .json(h.ready ? 200 : 503, ["status": h.ready ? "ready" : "not ready", "reason": h.reason ?? NSNull()])
        case .metrics:
            return APIResponse(
                status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: Array(metricsText().utf8))
        case .cluster:
            let view = await cluster()
            let nodes = view.nodes.map { n -> [String: Any] in
                var o: [String: Any] = ["nodeId": n.nodeId, "address": n.address, "status": n.status]
                if let leads = n.leads, let follows = n.follows { (o["leads"], o["follows"]) = (leads, follows) }
                if let rebuilding = n.rebuilding { o["rebuilding"] = rebuilding }
                return o
            }
            var body: [String: Any] = ["nodes": nodes, "self": view.selfId, "epoch": view.epoch, "pendingEpoch": view.pendingEpoch.map { $0 as Any } ?? NSNull()]
            if let moving = view.movingReplicas { body["movingReplicas"] = moving }
            return .json(200, body)
        case .changeMembership:
            guard let change = membershipChange else {
                return .error(404, code: "not_found", message: "membership changes need a cluster node started with --admin-token")
            }
            return await change(r)
        case .unsubscribePage, .unsubscribe:
            guard let unsubscribe else { return .error(404, code: "not_found", message: "re-engagement email is off on this node") }
            return await unsubscribe(r)
        case .register:
            let body = try r.jsonObject()
            let user = try await accounts.register(
                username: try body.string("username"), password: try body.string("password"), email: try body.string("email"),
                displayName: try body.optionalString("displayName"), clientAddress: ClientAddress.limitKey(r.clientAddress))
            return .json(201, ["userId": user.userId, "username": user.username, "displayName": user.displayName, "email": user.email])
        case .login:
            let body = try r.jsonObject()
            let issued = try await accounts.login(
                username: try body.string("username"), password: try body.string("password"), clientAddress: ClientAddress.limitKey(r.clientAddress))
            return .json(201, ["token": issued.token, "userId": issued.userId, "expiresAt": issued.expiresAt])
        case .webSocket:
            // Reached only when the upgrade was refused.
            guard let token = r.bearerToken ?? r.query["token"] else { throw .unauthorized }
            let user: UserRecord
            if let cluster = clusterGateway { user = try await cluster.authenticate(token: token) } else { user = try await accounts.authenticate(token: token) }
            let count = await clusterGateway?.sessionCount(of: user.userId) ?? sessions.sessionCount(of: user.userId)
            if count >= maxSessionsPerUser {
                throw .rateLimited(retryAfterMs: 1000)
            }
            throw .badRequest("expected a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)")
        case .logout, .logoutEverywhere, .presence, .me, .findUser, .createConversation, .listConversations, .getConversation, .addMember, .removeMember, .history,
            .postMessage:
            return try await routeAuthenticated(route, parameters, r, user: try await authenticate(r))
        }
    }

    /// Routes that need a bearer token (`APIRoute.isPublic` false), for `user`.
    private func routeAuthenticated(_ route: APIRoute, _ parameters: [String], _ r: APIRequest, user: UserRecord) async throws(ChatError) -> APIResponse {
        switch route {
        case .logout:
            guard let token = r.bearerToken else { throw .unauthorized }
            try await accounts.logout(token: token)
            return APIResponse(status: 204)
        case .logoutEverywhere:
            // Runs on the user's owner, where all of its sessions run (relayed ones end with them).
            try await accounts.logoutEverywhere(user.userId)
            return APIResponse(status: 204)
        case .presence:
            let ids = (r.query["userIds"] ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty }
            guard ids.count <= 1000 else { throw .badRequest("userIds: at most 1000") }
            // Only the caller and users who share a conversation with it (PROTOCOL.md section 6).
            let visible = await conversations.visible(to: user.userId, among: ids)
            let shown = await sessions.presence(of: ids.filter(visible.contains))
            let byId = Dictionary(shown.map { ($0.userId, $0) }, uniquingKeysWith: { a, _ in a })
            let presence = ids.map { id -> [String: Any] in
                guard let p = byId[id] else { return ["userId": id, "status": "unknown"] }
                return ["userId": p.userId, "status": p.online ? "online" : "offline", "lastSeen": p.lastSeen]
            }
            return .json(200, ["presence": presence])
        case .me:
            let lastLogin = await accounts.lastLoginAt(user.userId)
            return .json(200, [
                "userId": user.userId, "username": user.username, "displayName": user.displayName, "email": user.email,
                "lastLoginAt": lastLogin ?? user.createdAt,
            ])
        case .findUser:
            // `?userId=ID` (beyond PROTOCOL.md; docs/PROTOCOL.md): the same answer by id, so a client
            // can name the members and senders it only knows by id.
            let found: UserRecord?
            if let id = r.query["userId"], !id.isEmpty {
                found = await accounts.user(id: id)
            } else if let name = r.query["username"], !name.isEmpty {
                found = await accounts.user(named: name)
            } else {
                throw .badRequest("missing query parameter 'username' (or 'userId')")
            }
            guard let found else { throw .unknownUser }
            return .json(200, ["userId": found.userId, "username": found.username, "displayName": found.displayName])
        default:
            return try await routeConversations(route, parameters, r, user: user)
        }
    }

    private func authenticate(_ r: APIRequest) async throws(ChatError) -> UserRecord {
        guard let token = r.bearerToken else { throw .unauthorized }
        if let cluster = clusterGateway { return try await cluster.authenticate(token: token) }
        return try await accounts.authenticate(token: token)
    }
}
