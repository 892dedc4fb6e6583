import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusPeer
import Foundation
import Logging
import NIOCore

/// The gateway's part of a cluster (docs/CLUSTER.md). Every client request runs on the node that
/// owns it: account requests on the owner of the username, everything a user does on the owner of
/// that user. The node a client reached forwards HTTP requests whole and relays WebSocket frames;
/// tokens are checked by their user's owner. Answers other nodes' `SessionRequest`s and takes their
/// `PeerEvent`s (the relay and presence). Single node: no `ClusterGateway`, nothing changes.
public final class ClusterGateway: SessionPeerHandler {
    public let placement: PlacementCell
    let client: PeerClient
    let services: SessionServices
    let remoteSessions: RemoteSessions
    let proxies: ProxySessions
    let logger: Logger

    public init(peers: ClusterPeers, services: SessionServices, loops: any EventLoopGroup, logger: Logger) {
        placement = peers.placement
        client = peers.client
        self.services = services
        self.logger = logger
        remoteSessions = RemoteSessions(services: services, client: peers.client, loops: loops)
        proxies = ProxySessions(client: peers.client, heartbeatMs: services.heartbeatMs, rateLimit: services.rateLimit)
    }

    /// The user a token belongs to, asked of the user's owner when that is another node.
    public func authenticate(token: String) async throws(ChatError) -> UserRecord {
        guard let userId = Placement.userId(fromToken: token), !placement.isLocal(user: userId) else {
            return try await services.accounts.authenticate(token: token)
        }
        let reply = try await client.call(.engine(.authenticate(token: token)), to: placement.owner(ofUser: userId))
        guard case .user(let user) = reply else { throw PeerReply.unexpected(reply) }
        return user
    }

    /// How many sessions `userId` holds on its owner (this node or another); nil if the owner does
    /// not answer (the owner then refuses the session itself if it is over the cap).
    public func sessionCount(of userId: String) async -> Int? {
        guard !placement.isLocal(user: userId) else { return services.registry.sessionCount(of: userId) }
        guard case .seqs(let counts)? = try? await client.call(.session(.sessionCount(userId: userId)), to: placement.owner(ofUser: userId)),
              let count = counts.first
        else { return nil }
        return Int(count)
    }

    /// The node that must run `r`, when it is not this one.
    func executor(for r: APIRequest) -> String? {
        let node: String?
        switch (r.method, r.path) {
        case ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/v1/cluster"), ("POST", "/v1/cluster/members"), ("GET", "/"):
            node = nil
        case ("POST", "/v1/users"), ("POST", "/v1/sessions"):
            node = (try? r.jsonObject().string("username")).map(placement.owner(ofUsername:))
        case ("GET", "/v1/users"):
            node = r.query["userId"].map(placement.owner(ofUser:)) ?? r.query["username"].map(placement.owner(ofUsername:))
        case ("POST", let path) where path.hasPrefix("/v1/conversations/") && path.hasSuffix("/messages"):
            // A send runs on the sender's owner, where its one send bucket lives (PROTOCOL.md
            // section 6); the owner submits it to the conversation wherever that lives.
            node = (r.bearerToken ?? r.query["token"]).flatMap(Placement.userId(fromToken:)).map(placement.owner(ofUser:))
        case (_, let path) where path.hasPrefix("/v1/conversations/"):
            // Everything about one conversation runs where it lives.
            let id = path.dropFirst("/v1/conversations/".count).split(separator: "/").first.map(String.init) ?? ""
            node = id.isEmpty ? nil : placement.owner(ofConversation: id)
        default:
            node = (r.bearerToken ?? r.query["token"]).flatMap(Placement.userId(fromToken:)).map(placement.owner(ofUser:))
        }
        guard let node, node != placement.selfId else { return nil }
        return node
    }

    /// `GET /v1/conversations`: each node lists the conversations it holds; the user's owner merges.
    func listEverywhere(_ r: APIRequest, local: APIResponse) async -> APIResponse {
        guard local.status == 200, var merged = Self.conversations(in: local) else { return local }
        for peer in placement.serving {
            let answer = await forward(r, to: peer, asLocal: true)
            guard answer.status == 200, let theirs = Self.conversations(in: answer) else { return answer }
            merged += theirs
        }
        // Newest activity first, as one node orders its list (by last message here).
        func key(_ c: [String: Any]) -> (Int64, String) {
            (((c["lastMessage"] as? [String: Any])?["ts"] as? NSNumber)?.int64Value ?? 0, c["conversationId"] as? String ?? "")
        }
        merged.sort { key($0) > key($1) }
        return .json(200, ["conversations": merged])
    }

    private static func conversations(in response: APIResponse) -> [[String: Any]]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else { return nil }
        return object["conversations"] as? [[String: Any]]
    }

    /// Runs `r` on `node` and returns its answer; `503 unavailable` if the node cannot be reached.
    func forward(_ r: APIRequest, to node: String, asLocal: Bool = false) async -> APIResponse {
        do throws(ChatError) {
            let reply = try await client.call(.forward(.http(r.forwarded(local: asLocal))), to: node)
            guard case .http(let response) = reply else { throw PeerReply.unexpected(reply) }
            return APIResponse(response)
        } catch {
            return .error(error)
        }
    }

    /// The client-facing address of `peer`, asked over the mesh (nil if it does not answer).
    public func address(of peer: String) async -> String? {
        guard case .info(let address)? = try? await client.call(.forward(.info), to: peer) else { return nil }
        return address
    }

    // MARK: SessionPeerHandler

    public func handle(_ request: SessionRequest, from peer: String, reply: @escaping PeerReplyHandler) {
        switch request {
        case .open(let proxy, let token):
            remoteSessions.open(edge: peer, proxy: proxy, token: token, authenticate: { [services] (t: String) async throws(ChatError) -> UserRecord in
                try await services.accounts.authenticate(token: t)
            }) { result in reply(result.map { .done }) }
        case .sessionCount(let user):
            reply(.success(.seqs([UInt64(services.registry.sessionCount(of: user))])))
        case .presence(let users, let watch):
            guard watch else { return reply(.success(.presence(users.map { services.registry.status($0) }))) }
            // Only users this node holds are remembered as watched from `peer`: the map stays
            // within (users here) x (peers), whatever ids a watch names.
            Task { [services] in
                var held: [String] = []
                for u in users where await services.accounts.user(id: u) != nil { held.append(u) }
                let watched = Dictionary(services.registry.watch(fromNode: peer, users: held), uniquingKeysWith: { a, _ in a })
                reply(.success(.presence(users.map { watched[$0] ?? services.registry.status($0) })))
            }
        case .typing(let id, let user):
            Task { [services] in reply(await services.typing(in: id, by: user).map { .failure($0) } ?? .success(.done)) }
        }
    }

    public func handle(_ event: PeerEvent, from peer: String) {
        switch event {
        case .sessionFrame(let proxy, let text, let bytes):
            remoteSessions.frame(edge: peer, proxy: proxy, text: text, bytes: bytes)
        case .sessionPush(let proxy, let frames):
            proxies.push(from: peer, proxy: proxy, frames: frames)
        case .presence(let user, let status):
            services.registry.remoteChange(user, status)
        case .userPush(let users, let frame):
            for u in users where placement.isLocal(user: u) {
                for s in services.registry.sessions(of: u) { s.sendFromAnyThread(frame) }
            }
        case .sessionClose(let proxy, let code, let reason):
            // Either direction: the owner closing an edge's connection, or an edge ending an owner's session.
            proxies.closed(by: peer, proxy: proxy, code: code, reason: reason)
            remoteSessions.closed(edge: peer, proxy: proxy)
        }
    }

    /// A peer became unreachable (dead): relayed sessions through it or owned by it end.
    public func peerDown(_ peer: String) {
        remoteSessions.edgeDown(peer)
        proxies.ownerDown(peer)
    }
}
