import ChorusCLI
import ChorusCluster
import ChorusCoordinator
import ChorusCore
import ChorusEngine
import ChorusGateway
import ChorusReplica
import ChorusMesh
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// What every WebSocket session shares.
struct SessionParts {
    let registry: SessionRegistry
    let services: SessionServices
    let metrics: GatewayMetrics
    let configuration: GatewayConfiguration
}

/// The client-facing side: the router, the HTTP and WebSocket server, and (in a cluster) the
/// answering side of forwarded HTTP.
struct FrontParts {
    let router: APIRouter
    let server: GatewayServer
    let forward: ForwardService
    let readiness: ReadinessFlag
}

extension Node {
    func buildSessions(_ engine: EngineParts, metrics: NodeMetrics, logger: Logger) async -> SessionParts {
        var config = GatewayConfiguration()
        config.host = settings.host
        config.port = settings.port
        config.maxConnections = settings.maxConnections
        config.headerTimeoutMs = settings.headerTimeoutMs
        config.idleTimeoutMs = settings.idleTimeoutMs
        config.tls = settings.clientTLS
        config.trustedProxies = settings.trustedProxies
        let gatewayMetrics = GatewayMetrics()
        let registry = SessionRegistry(clock: engine.clock, cluster: engine.peers)
        await engine.accounts.onRevocation { hash in registry.revoked(hash) }
        metrics.sessions.withLock { $0 = { registry.openSessions } }
        let services = SessionServices(
            accounts: engine.accounts, conversations: engine.conversations, inboxes: engine.inboxes, registry: registry, clock: engine.clock,
            heartbeatMs: settings.heartbeatMs, rateLimit: settings.sessionRateLimit, maxOutboundFrames: config.maxOutboundFrames,
            logger: logger, metrics: gatewayMetrics, cluster: engine.peers,
            userSends: settings.userSendRateLimit.map { UserSendLimiter(setting: $0) }, maxSessionsPerUser: settings.maxSessionsPerUser)
        return SessionParts(registry: registry, services: services, metrics: gatewayMetrics, configuration: config)
    }

    func buildGateway(
        _ engine: EngineParts, sessions: SessionParts, cluster: ClusterParts?, members: MembersStore?, group: MultiThreadedEventLoopGroup,
        metrics: NodeMetrics, logger: Logger
    ) -> FrontParts {
        let readiness = ReadinessFlag()
        let replicaCopies = cluster?.replication as? FollowerCopies
        let listeningAddress = Mutex("\(settings.host):\(settings.port)")
        let log = engine.log
        let meshNode = cluster?.mesh
        let membership = cluster?.membership
        var membershipChange: (@Sendable (APIRequest) async -> APIResponse)?
        if let token = settings.adminToken, let r = settings.replication, let members {
            let changes = ReplicatedMembershipChanges(store: members, factor: r.factor)
            membershipChange = { request in
                await MembershipManager.admin(request, adminToken: token) { change throws(ChatError) in try await changes.change(change) }
            }
        } else if let token = settings.adminToken, let membership {
            membershipChange = { request in await membership.handleAdmin(request, adminToken: token) }
        }
        let web = WebClient(directory: WebClient.defaultDirectory())
        if web.directory == nil { logger.warning("the web client's files were not found beside the binary; GET / answers 503") }
        let router = APIRouter(
            accounts: engine.accounts, conversations: engine.conversations, sessions: sessions.registry, metrics: sessions.metrics,
            health: {
                let healthy = log.isHealthy
                let joined = meshNode?.hasJoined ?? true
                let ready = healthy && readiness.isReady && joined
                return NodeHealth(
                    alive: healthy, ready: ready,
                    reason: healthy ? (ready ? nil : (joined ? "starting or stopping" : "joining the mesh")) : log.failure)
            },
            metricsText: { metrics.render() },
            cluster: { [nodeId = settings.nodeId] in
                var nodes = [ClusterView.Node(nodeId: nodeId, address: listeningAddress.withLock { $0 }, status: "alive")]
                if let cluster {
                    for (peer, status) in cluster.mesh.statuses {
                        let address = await cluster.addressBook.address(of: peer, asking: cluster.gateway)
                        nodes.append(.init(nodeId: peer, address: address, status: status.rawValue))
                    }
                }
                if let factor = settings.replication?.factor, let leaders = engine.placement.current.leaders {
                    let ring = engine.placement.ring
                    // The table's replicas once etcd's table is read; the ring's until then.
                    let replicas = engine.placement.replicas
                    for i in nodes.indices {
                        let id = nodes[i].nodeId
                        nodes[i].leads = Partitioning.all.filter { leaders[Int($0.rawValue)] == id }.map { Int($0.rawValue) }
                        nodes[i].follows = Partitioning.all.filter {
                            leaders[Int($0.rawValue)] != id
                                && (replicas?[Int($0.rawValue)] ?? Partitioning.replicas(of: $0, ring: ring, factor: factor)).contains(id)
                        }.map { Int($0.rawValue) }
                        if id == nodeId { nodes[i].rebuilding = replicaCopies?.rebuilding.map { Int($0.rawValue) } }
                    }
                }
                var view = ClusterView(
                    selfId: nodeId, nodes: nodes.sorted { $0.nodeId < $1.nodeId }, epoch: membership?.current.epoch ?? 1,
                    pendingEpoch: membership?.pending?.epoch)
                if let factor = settings.replication?.factor, let replicas = engine.placement.replicas {
                    let ring = engine.placement.ring
                    view.movingReplicas = Partitioning.all.filter {
                        replicas[Int($0.rawValue)] != Partitioning.replicas(of: $0, ring: ring, factor: factor)
                    }.count
                }
                return view
            },
            clusterGateway: cluster?.gateway,
            membershipChange: membershipChange,
            unsubscribe: unsubscribeHandler(engine.reengagement, clock: engine.clock),
            webClient: web,
            userSends: sessions.services.userSends, maxSessionsPerUser: settings.maxSessionsPerUser, clock: engine.clock)
        let forward = ForwardService(router: router)
        let nodeId = settings.nodeId
        let dataDirectory = settings.dataDirectory
        let syncMode = settings.syncMode
        let publicURLGiven = settings.publicURL != nil
        let reengagement = engine.reengagement
        let server = GatewayServer(configuration: sessions.configuration, router: router, sessions: sessions.services, group: group, logger: logger) {
            [settings] address in
            let http = "\(address.ipAddress ?? settings.host):\(address.port ?? settings.port)"
            listeningAddress.withLock { $0 = http }
            let scheme = settings.clientTLS == nil ? "http" : "https"
            if !publicURLGiven { Task { await reengagement.setPublicURL("\(scheme)://\(http)") } }
            forward.httpAddress.withLock { $0 = http }
            readiness.set(true)
            // The one line that says where the node listens (tests and scripts read it from stdout).
            Output.line("chorus \(nodeId) listening on \(scheme)://\(address.ipAddress ?? "?"):\(address.port ?? 0) (data \(dataDirectory), fsync \(syncMode))")
        }
        metrics.connections.withLock { $0 = { server.openConnections } }
        return FrontParts(router: router, server: server, forward: forward, readiness: readiness)
    }
}
