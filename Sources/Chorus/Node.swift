import ArgumentParser
import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusGateway
import ChorusMail
import ChorusMesh
import ChorusReengagement
import ChorusWAL
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// The composition root of one node: recovers the log, builds the engine, serves, and shuts down in
/// order (gateway first, log last) on SIGTERM or SIGINT.
struct Node {
    let settings: ServeSettings

    func run() async throws {
        let logger = Self.bootstrapLogging()
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        if settings.insecureFastPasswordHash {
            logger.warning("--insecure-fast-password-hash: passwords are hashed with a cheap KDF; for tests and load runs only")
        }

        // The membership: from a committed change (the membership file), else the flags (this node
        // and its peers; a ring of one without --peer).
        let store = MembershipStore(dataDirectory: settings.dataDirectory)
        var membership = settings.flagMembership
        var pendingMembership: ClusterMembership?
        var joining = settings.join
        if settings.mesh != nil {
            do {
                let (saved, pending) = try store.load()
                if let saved {
                    if saved.members.keys.sorted() != membership.members.keys.sorted() {
                        logger.warning("the membership file overrides --peer", metadata: ["epoch": "\(saved.epoch)", "members": "\(saved.ids)"])
                    }
                    membership = saved
                    joining = false
                }
                pendingMembership = pending
            } catch {
                logger.critical("cannot start: \(error)")
                throw ExitCode(1)
            }
        }
        let placement = PlacementCell(Placement(ring: membership.ring, selfId: settings.nodeId))
        let ownsUser: @Sendable (String) -> Bool = { placement.isLocal(user: $0) }

        // Recover: the newest engine snapshot, then the log after it, before anything is served.
        let started = ContinuousClock.now
        let metrics = NodeMetrics(registry: registry)
        var walOptions = WALOptions()
        walOptions.syncMode = settings.syncMode
        if let bytes = settings.walSegmentBytes { walOptions.segmentBytes = bytes }
        walOptions.minCommitIntervalMicroseconds = settings.commitIntervalUs ?? ServeSettings.defaultCommitIntervalUs(settings.syncMode)
        walOptions.onSync = { [histogram = metrics.walFsyncSeconds] in histogram.recordNanoseconds(Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000) }
        var state = EngineState()
        state.ownsUser = ownsUser
        var inboxes = InboxDirectory()
        var replayError: Error?
        let (log, report): (WriteAheadLog, RecoveryReport)
        do {
            (log, report) = try WriteAheadLog.open(
                directory: settings.dataDirectory + "/wal", options: walOptions, logger: logger,
                restoreSnapshot: { snapshot in
                    (state, inboxes) = try restoreEngine(snapshot)
                    state.ownsUser = ownsUser
                }
            ) { record in
                do {
                    try state.apply(kind: record.kind, payload: record.payload, lsn: record.lsn, inboxes: inboxes)
                } catch {
                    replayError = replayError ?? error
                    throw error
                }
            }
        } catch {
            logger.critical("cannot start: \(replayError.map { "record does not decode: \($0)" } ?? "\(error)")")
            throw ExitCode(1)
        }
        // Copies of conversations handed to other nodes by a membership change stay in the log;
        // only what this node owns now is served.
        if !placement.isSingleNode { state.retainConversations(where: { placement.isLocal(conversation: $0) }) }
        logger.info("recovered", metadata: [
            "snapshotLSN": "\(report.snapshotLSN)", "records": "\(report.recordsReplayed)", "lastLSN": "\(report.lastLSN)", "users": "\(state.accounts.userCount)", "conversations": "\(state.conversations.count)",
            "elapsed": "\(ContinuousClock.now - started)",
        ])

        var accountsConfig = Accounts.Configuration()
        accountsConfig.placement = placement
        accountsConfig.loginRateLimit = settings.loginRateLimit
        accountsConfig.hasher = PasswordHasher(
            iterations: settings.insecureFastPasswordHash ? PasswordHasher.insecureFastIterations : PasswordHasher.recommendedIterations)
        let clock = SystemWallClock()
        let accounts = Accounts(state: state.accounts, journal: log, clock: clock, configuration: accountsConfig)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: settings.eventLoops)
        // With `--fsync never`, a send read on an event loop is committed on that loop at the end of
        // its tick (CommitDeferral): no hand-off to the log's writer thread and back.
        for loop in group.makeIterator() {
            try await loop.submit { CommitDeferral.install { work in loop.execute(work) } }.get()
        }
        // A cluster: the mesh, and the gateway's part that forwards to owners and answers peers.
        let meshService = GatewayMeshService()
        let reconciler = Mutex<Conversations?>(nil)
        var mesh: MeshNode?
        let addressBook = PeerAddressBook()
        if let listen = settings.mesh {
            var meshConfig = MeshConfiguration(
                selfId: settings.nodeId, listen: PeerAddress(host: listen.host, port: listen.port),
                peers: MembershipManager.addresses(membership.members.filter { $0.key != settings.nodeId }), ringSignature: placement.ring.signature)
            meshConfig.maxFrameBytes = 2 << 20
            let node = MeshNode(configuration: meshConfig, group: group, service: meshService, logger: logger) { peer, status in
                if status == .dead { meshService.gateway.withLock { $0 }?.peerDown(peer) }
                // Reachable again (or for the first time): put back what its users may miss.
                if status == .alive, let conversations = reconciler.withLock({ $0 }) { Task { await conversations.reconcile(with: peer) } }
            }
            mesh = node
        }
        // Conversations reach other nodes' conversations and inboxes through the mesh.
        let peers = mesh.map { EnginePeers(placement: placement, transport: MeshTransport(node: $0)) }
        let fanout = peers.map { p in
            InboxFanout(send: { items, node, reply in p.appendInboxes(items, to: node, reply: reply) }, sleep: { ms in try? await Task.sleep(for: .milliseconds(ms)) })
        }
        let conversations = Conversations(
            state: state, accounts: accounts, journal: log, inboxes: inboxes, clock: clock, limits: accountsConfig.limits,
            placement: placement, peers: peers, fanout: fanout)
        reconciler.withLock { $0 = conversations }
        if let fanout { metrics.fanout.withLock { $0 = { (fanout.queuedTotal, fanout.droppedItems) } } }
        // Re-engagement email: timers from each user's durable lastLoginAt, the outbox from the log.
        let emailSecret: [UInt8]
        do { emailSecret = try loadEmailSecret(dataDirectory: settings.dataDirectory) } catch {
            logger.critical("cannot start: the email secret cannot be read or made: \(error)")
            throw ExitCode(1)
        }
        var reengagementSettings = ReengagementSettings(
            policy: ReengagementPolicy(inactivityMs: settings.inactivityAfterMs),
            from: settings.mailFrom ?? "chorus@localhost",
            publicURL: settings.publicURL ?? "http://\(settings.host):\(settings.port)",
            domain: settings.publicURL.flatMap { URL(string: $0)?.host } ?? "chorus.local")
        reengagementSettings.tickMs = 1_000
        reengagementSettings.sendPerSecond = settings.emailRate
        reengagementSettings.concurrency = settings.smtpConnections  // emails in flight: one per SMTP connection
        if let templates = settings.emailTemplates { reengagementSettings.templates = templates }
        let reengagement = ReengagementService(
            settings: reengagementSettings, outbox: state.outbox, journal: log,
            mailer: mailer(group: group, logger: logger),
            directory: AccountsDirectory(accounts: accounts, placement: placement),
            tokens: UnsubscribeTokens(secret: emailSecret), nowMs: clock.nowMs(), logger: logger)
        await accounts.onLogin { index in Task { await reengagement.loggedIn(UInt32(index)) } }
        state = EngineState()  // the actors own it now; keeping the replay's copy would double it

        let readiness = ReadinessFlag()
        let listeningAddress = Mutex("\(settings.host):\(settings.port)")
        metrics.attach(log)
        var gatewayConfig = GatewayConfiguration()
        gatewayConfig.host = settings.host
        gatewayConfig.port = settings.port
        gatewayConfig.maxConnections = settings.maxConnections
        let gatewayMetrics = GatewayMetrics()
        let sessionRegistry = SessionRegistry(clock: clock)
        await accounts.onRevocation { hash in sessionRegistry.revoked(hash) }
        let nodeId = settings.nodeId
        let dataDirectory = settings.dataDirectory
        let syncMode = settings.syncMode
        let sessions = SessionServices(
            accounts: accounts, conversations: conversations, inboxes: inboxes, registry: sessionRegistry, clock: clock,
            heartbeatMs: settings.heartbeatMs, rateLimit: settings.sessionRateLimit, maxOutboundFrames: gatewayConfig.maxOutboundFrames,
            logger: logger, metrics: gatewayMetrics)
        var clusterGateway: ClusterGateway?
        var membershipManager: MembershipManager?
        if let mesh {
            let writer = RemoteInboxWriter(journal: log, inboxes: inboxes, placement: placement)
            let engineService = EnginePeerService(conversations: conversations, accounts: accounts, writer: writer)
            let manager = MembershipManager(
                selfId: settings.nodeId, current: membership, pending: pendingMembership, joining: joining, cell: placement, mesh: mesh,
                transport: MeshTransport(node: mesh),
                handover: Handover(
                    accounts: accounts, conversations: conversations, inboxes: inboxes, journal: log, clock: clock,
                    emailState: { await reengagement.handOverEvents(of: $0) }, onEmail: { await reengagement.receive($0) }),
                onCommit: { await reengagement.armUnarmed() },
                conversations: conversations, writer: writer, fanout: fanout, sessions: sessionRegistry, store: store, logger: logger)
            meshService.membership.withLock { $0 = manager }
            membershipManager = manager
            let cg = ClusterGateway(
                placement: placement, transport: MeshTransport(node: mesh), services: sessions, engine: engineService, loops: group, logger: logger)
            meshService.gateway.withLock { $0 = cg }
            clusterGateway = cg
        }
        let meshNode = mesh
        let cluster = clusterGateway
        let membershipNow = membershipManager
        membershipNow?.resume()
        var membershipChange: (@Sendable (APIRequest) async -> APIResponse)?
        if let token = settings.adminToken, let manager = membershipNow {
            membershipChange = { request in await manager.handleAdmin(request, adminToken: token) }
        }
        let web = WebClient(directory: WebClient.defaultDirectory())
        if web.directory == nil { logger.warning("the web client's files were not found beside the binary; GET / answers 503") }
        let router = APIRouter(
            accounts: accounts, conversations: conversations, sessions: sessionRegistry, metrics: gatewayMetrics,
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
                if let meshNode, let cluster {
                    for (peer, status) in meshNode.statuses {
                        let address = await addressBook.address(of: peer, asking: cluster)
                        nodes.append(.init(nodeId: peer, address: address, status: status.rawValue))
                    }
                }
                let m = membershipNow
                return ClusterView(
                    selfId: nodeId, nodes: nodes.sorted { $0.nodeId < $1.nodeId }, epoch: m?.current.epoch ?? 1, pendingEpoch: m?.pending?.epoch)
            },
            clusterGateway: cluster,
            membershipChange: membershipChange,
            unsubscribe: unsubscribeHandler(reengagement, clock: clock),
            webClient: web)
        cluster?.attach(router: router)
        metrics.sessions.withLock { $0 = { sessionRegistry.openSessions } }
        metrics.conversations.withLock { $0 = { (conversations.count, conversations.liveCount) } }
        let gateway = GatewayServer(configuration: gatewayConfig, router: router, sessions: sessions, group: group, logger: logger) { address in
            let http = "\(address.ipAddress ?? settings.host):\(address.port ?? settings.port)"
            listeningAddress.withLock { $0 = http }
            if settings.publicURL == nil { Task { await reengagement.setPublicURL("http://\(http)") } }
            cluster?.httpAddress.withLock { $0 = http }
            readiness.set(true)
            // The one line that says where the node listens (tests and scripts read it from stdout).
            Output.line("chorus \(nodeId) listening on http://\(address.ipAddress ?? "?"):\(address.port ?? 0) (data \(dataDirectory), fsync \(syncMode))")
        }
        metrics.connections.withLock { $0 = { gateway.openConnections } }
        let services = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: LogService(log: log, logger: logger)),
                    .init(service: Checkpointer(
                        log: log, directory: settings.dataDirectory + "/wal", everyRecords: settings.snapshotEveryRecords,
                        initialSnapshotLSN: report.snapshotLSN, logger: logger, ownsUser: ownsUser)),
                    .init(
                        service: CacheSweeper(
                            conversations: conversations, clock: clock, interval: .seconds(60), idleMs: 600_000, logger: logger),
                        successTerminationBehavior: .ignore),
                ] + (mesh.map { [ServiceGroupConfiguration.ServiceConfiguration(service: MeshLifecycle(node: $0, logger: logger))] } ?? []) + [
                    .init(service: ReengagementLoop(service: reengagement, clock: clock)),
                    .init(service: gateway),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await services.run()
        readiness.set(false)
        try await group.shutdownGracefully()
        logger.info("stopped cleanly")
    }

    /// SMTP with `--smtp`, else `.eml` files under the data directory.
    func mailer(group: any EventLoopGroup, logger: Logger) -> any Mailer {
        guard let smtp = settings.smtp, let (host, port) = try? ConfigParsing.hostPort(smtp, allowEphemeral: false) else {
            return DirectoryMailer(directory: settings.dataDirectory + "/outbox")
        }
        var s = SMTPSettings(host: host, port: port, sender: settings.mailFrom ?? "chorus@localhost")
        let env = ProcessInfo.processInfo.environment
        s.username = env["CHORUS_SMTP_USERNAME"]
        s.password = env["CHORUS_SMTP_PASSWORD"]
        s.tls = SMTPSettings.TLSMode(rawValue: settings.smtpTLS) ?? .opportunistic
        s.caFile = settings.smtpCAFile
        if let url = settings.publicURL.flatMap({ URL(string: $0)?.host }) { s.heloName = url }
        logger.info("re-engagement email goes to SMTP server \(host):\(port)")
        return SMTPMailer(settings: s, group: group, logger: logger, connections: settings.smtpConnections)
    }

    static func bootstrapLogging() -> Logger {
        let level = ProcessInfo.processInfo.environment["CHORUS_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "chorus")
    }
}

/// Ready once the gateway listens; not ready again once shutdown starts.
final class ReadinessFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isReady: Bool { value.load(ordering: .relaxed) }
    func set(_ ready: Bool) { value.store(ready, ordering: .relaxed) }
}

/// The log as a `Service`: it runs until graceful shutdown, then flushes and closes. Listed first in
/// the group, so it stops last, after the gateway has stopped taking client traffic.
struct LogService: Service {
    let log: WriteAheadLog
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        do {
            try log.close()
            logger.info("write-ahead log flushed and closed")
        } catch {
            logger.critical("write-ahead log close failed", metadata: ["error": "\(error)"])
            throw error
        }
    }
}

/// Decodes an engine snapshot; one of an older format is declined (the log is replayed instead).
func restoreEngine(_ snapshot: WALSnapshot) throws -> (EngineState, InboxDirectory) {
    let result: Result<(EngineState, InboxDirectory), EngineSnapshotError> = Result { () throws(EngineSnapshotError) in
        try EngineSnapshot.decode(snapshot.payload)
    }
    switch result {
    case .success(let restored): return restored
    case .failure(.unsupportedVersion(let v)):
        throw SnapshotDeclined(reason: "engine snapshot format \(v), this build reads \(EngineSnapshot.version)")
    case .failure(let e): throw e
    }
}
