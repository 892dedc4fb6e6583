import ChorusCluster
import ChorusCore
import ChorusEngine
import Foundation
import Logging
import NIOCore
import Synchronization

/// The gateway's part of a cluster (docs/CLUSTER.md). Every client request runs on the node that
/// owns it: account requests on the owner of the username, everything a user does on the owner of
/// that user. The node a client reached forwards HTTP requests whole and relays WebSocket frames;
/// tokens are checked by their user's owner. Single node: no `ClusterGateway`, nothing changes.
public final class ClusterGateway: Sendable {
    public let placement: PlacementCell
    let transport: any PeerTransport
    let services: SessionServices
    let engine: EnginePeerService
    let remoteSessions: RemoteSessions
    let proxies: ProxySessions
    let logger: Logger
    /// Set once the router exists (it needs this object first).
    private let router = Mutex<APIRouter?>(nil)
    /// This node's client-facing address (for `GET /v1/cluster` on peers).
    public let httpAddress = Mutex("")

    public init(
        placement: PlacementCell, transport: any PeerTransport, services: SessionServices, engine: EnginePeerService, loops: any EventLoopGroup,
        logger: Logger
    ) {
        self.engine = engine
        self.placement = placement
        self.transport = transport
        self.services = services
        self.logger = logger
        remoteSessions = RemoteSessions(services: services, transport: transport, loops: loops)
        proxies = ProxySessions(transport: transport, heartbeatMs: services.heartbeatMs)
        services.cluster.withLock { $0 = self }
        services.registry.remote.withLock { $0 = self }
    }

    /// Presence of users owned by other nodes, asked of their owners (with `watch`, each owner then
    /// tells this node of every change). A user whose owner does not answer is reported offline.
    func presence(of users: [String], watch: Bool) async -> [(String, PresenceCore.Status)] {
        var byNode: [String: [String]] = [:]
        for u in users { byNode[placement.owner(ofUser: u), default: []].append(u) }
        var out: [(String, PresenceCore.Status)] = []
        for (node, ids) in byNode {
            var w = ByteWriter(capacity: 16 + ids.count * 16)
            w.write(PeerKind.presenceWatch.rawValue); w.write(watch); w.writeVarint(UInt64(ids.count))
            for id in ids { w.writeString(id) }
            var statuses: [String: PresenceCore.Status] = [:]
            if let answer = try? await transport.request(w.bytes, to: node), case .success(let body) = PeerAnswer.decode(answer) {
                var r = ByteReader(Array(body))
                for id in ids {
                    guard let online = try? r.readBool(), let last = try? r.readInt64() else { break }
                    statuses[id] = PresenceCore.Status(online: online, lastSeen: last)
                }
            }
            for id in ids { out.append((id, statuses[id] ?? PresenceCore.Status(online: false, lastSeen: 0))) }
        }
        return out
    }

    /// Tells `node` (which watches `userId`) of a change.
    func tellPresence(_ userId: String, _ status: PresenceCore.Status, to node: String) {
        var w = ByteWriter(capacity: 48)
        w.write(PeerKind.presence.rawValue); w.writeString(userId); w.write(status.online); w.write(status.lastSeen)
        transport.send(w.bytes, to: node)
    }

    public func attach(router r: APIRouter) { router.withLock { $0 = r } }

    /// The user a token belongs to, asked of the user's owner when that is another node.
    public func authenticate(token: String) async throws(ChatError) -> UserRecord {
        guard let userId = Placement.userId(fromToken: token), !placement.isLocal(user: userId) else {
            return try await services.accounts.authenticate(token: token)
        }
        var w = ByteWriter(capacity: 16 + token.utf8.count)
        w.write(PeerKind.authenticate.rawValue)
        w.writeString(token)
        let answer = try await transport.request(w.bytes, to: placement.owner(ofUser: userId))
        var r = ByteReader(Array(try PeerAnswer.decode(answer).get()))
        guard let user = try? PeerWire.readUser(&r) else { throw .unavailable("malformed peer answer") }
        return user
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
        for peer in placement.peers {
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
            let answer = try await transport.request(PeerWire.http(r, local: asLocal), to: node)
            var reader = ByteReader(Array(try PeerAnswer.decode(answer).get()))
            guard let response = try? PeerWire.readResponse(&reader) else { throw ChatError.unavailable("malformed peer answer") }
            return response
        } catch {
            return .error(error)
        }
    }

    /// A peer's request (see `PeerKind`).
    public func handle(request payload: [UInt8], from peer: String, reply: @escaping @Sendable (Result<[UInt8], ChatError>) -> Void) {
        var r = ByteReader(payload)
        guard let kindByte = try? r.readUInt8(), let kind = PeerKind(rawValue: kindByte) else {
            return reply(.success(PeerAnswer.failure(.badRequest("unknown peer request"))))
        }
        switch kind {
        case .http:
            guard let request = try? PeerWire.readHTTP(&r), let router = router.withLock({ $0 }) else {
                return reply(.success(PeerAnswer.failure(.badRequest("malformed forwarded request"))))
            }
            Task {
                let response = await router.handle(request.request, forwarded: true, localOnly: request.local)
                reply(.success(PeerAnswer.ok(PeerWire.response(response))))
            }
        case .authenticate:
            guard let token = try? r.readString(bound: 1024) else { return reply(.success(PeerAnswer.failure(.unauthorized))) }
            Task {
                do throws(ChatError) {
                    reply(.success(PeerAnswer.ok(PeerWire.user(try await services.accounts.authenticate(token: token)))))
                } catch {
                    reply(.success(PeerAnswer.failure(error)))
                }
            }
        case .sessionOpen:
            guard let proxy = try? r.readUInt64(), let token = try? r.readString(bound: 1024) else {
                return reply(.success(PeerAnswer.failure(.badRequest("malformed session open"))))
            }
            remoteSessions.open(edge: peer, proxy: proxy, token: token, authenticate: { [services] (t: String) async throws(ChatError) -> UserRecord in
                try await services.accounts.authenticate(token: t)
            }) { result in
                switch result {
                case .success: reply(.success(PeerAnswer.ok()))
                case .failure(let e): reply(.success(PeerAnswer.failure(e)))
                }
            }
        case .info:
            reply(.success(PeerAnswer.ok(Array(httpAddress.withLock { $0 }.utf8))))
        case .presenceWatch:
            guard let watch = try? r.readBool(), let n = try? r.readVarint(), n <= 1000 else {
                return reply(.success(PeerAnswer.failure(.badRequest("malformed presence request"))))
            }
            var users: [String] = []
            for _ in 0..<n {
                guard let u = try? r.readString(bound: 256) else { return reply(.success(PeerAnswer.failure(.badRequest("malformed presence request")))) }
                users.append(u)
            }
            let statuses = watch
                ? services.registry.watch(fromNode: peer, users: users)
                : users.map { ($0, services.registry.status($0)) }
            var w = ByteWriter(capacity: statuses.count * 9)
            for (_, s) in statuses { w.write(s.online); w.write(s.lastSeen) }
            reply(.success(PeerAnswer.ok(w.bytes)))
        case .typing:
            guard let id = try? r.readString(bound: 256), let user = try? r.readString(bound: 256) else {
                return reply(.success(PeerAnswer.failure(.badRequest("malformed typing"))))
            }
            Task { reply(.success(await typing(in: id, by: user).map(PeerAnswer.failure) ?? PeerAnswer.ok())) }
        case .sessionFrame, .sessionPush, .sessionClose:
            reply(.success(PeerAnswer.failure(.badRequest("one-way message sent as a request"))))
        default:
            // Engine requests, handled right here on the connection's loop (inbox appends keep their order).
            if !engine.handle(kind, &r, reply: reply) { reply(.success(PeerAnswer.failure(.badRequest("unknown peer request")))) }
        }
    }

    /// A peer's one-way message (session relay).
    public func handle(oneWay payload: [UInt8], from peer: String) {
        var r = ByteReader(payload)
        guard let kindByte = try? r.readUInt8(), let kind = PeerKind(rawValue: kindByte) else { return }
        switch kind {
        case .sessionFrame:
            guard let proxy = try? r.readUInt64(), let text = try? r.readBool() else { return }
            remoteSessions.frame(edge: peer, proxy: proxy, text: text, bytes: Array(payload[r.offset...]))
        case .sessionPush:
            guard let (proxy, frames) = try? PeerWire.readPush(&r) else { return }
            proxies.push(from: peer, proxy: proxy, frames: frames)
        case .presence:
            guard let user = try? r.readString(bound: 256), let online = try? r.readBool(), let last = try? r.readInt64() else { return }
            services.registry.remoteChange(user, PresenceCore.Status(online: online, lastSeen: last))
        case .typing:
            guard let id = try? r.readString(bound: 256), let user = try? r.readString(bound: 256) else { return }
            Task { _ = await typing(in: id, by: user) }
        case .userPush:
            guard let n = try? r.readVarint(), n <= 100_000 else { return }
            var users: [String] = []
            for _ in 0..<n {
                guard let u = try? r.readString(bound: 256) else { return }
                users.append(u)
            }
            guard let frame = try? r.readLengthPrefixed(bound: 1 << 20) else { return }
            let bytes = Array(frame)
            for u in users where placement.isLocal(user: u) {
                for s in services.registry.sessions(of: u) { s.sendFromAnyThread(bytes) }
            }
        case .sessionClose:
            guard let proxy = try? r.readUInt64(), let code = try? r.readUInt16(), let reason = try? r.readString(bound: 1024) else { return }
            // Either direction: the owner closing an edge's connection, or an edge ending an owner's session.
            proxies.closed(by: peer, proxy: proxy, code: code, reason: reason)
            remoteSessions.closed(edge: peer, proxy: proxy)
        default:
            logger.warning("peer sent a request kind as one-way", metadata: ["peer": "\(peer)", "kind": "\(kind)"])
        }
    }

    /// `typing` from a session of `userId` (on its owner): relayed by the conversation's node to the
    /// other members' sessions, on their owners. Ephemeral: nothing is logged, a lost one is lost.
    /// A refusal (`not_member`, `unknown_conversation`, `unavailable`) comes back as on one node.
    func typing(in conversationId: String, by userId: String) async -> ChatError? {
        guard placement.isLocal(conversation: conversationId) else {
            var w = ByteWriter(capacity: 48)
            w.write(PeerKind.typing.rawValue); w.writeString(conversationId); w.writeString(userId)
            do {
                let answer = try await transport.request(w.bytes, to: placement.owner(ofConversation: conversationId))
                if case .failure(let e) = PeerAnswer.decode(answer) { return e }
                return nil
            } catch {
                return error
            }
        }
        let core: ConversationCore
        do { core = try services.conversations.core(conversationId) } catch { return error }
        guard core.isMember(userId) else { return .notMember }
        let frame = ServerFrame.typing(conversationId: conversationId, userId: userId)
        var remote: [String: [String]] = [:]
        for member in core.members where member != userId {
            if placement.isLocal(user: member) {
                for s in services.registry.sessions(of: member) { s.sendFromAnyThread(frame) }
            } else {
                remote[placement.owner(ofUser: member), default: []].append(member)
            }
        }
        for (node, users) in remote {
            var w = ByteWriter(capacity: 32 + frame.count + users.count * 16)
            w.write(PeerKind.userPush.rawValue)
            w.writeVarint(UInt64(users.count))
            for u in users { w.writeString(u) }
            w.writeLengthPrefixed(frame)
            transport.send(w.bytes, to: node)
        }
        return nil
    }

    /// A peer became unreachable (dead): relayed sessions through it or owned by it end.
    public func peerDown(_ peer: String) {
        remoteSessions.edgeDown(peer)
        proxies.ownerDown(peer)
    }

    /// The client-facing address of `peer`, asked over the mesh (nil if it does not answer).
    public func address(of peer: String) async -> String? {
        guard let answer = try? await transport.request([PeerKind.info.rawValue], to: peer),
            case .success(let body) = PeerAnswer.decode(answer)
        else { return nil }
        return String(decoding: body, as: UTF8.self)
    }
}
