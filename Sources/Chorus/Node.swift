import ArgumentParser
import ChorusCluster
import ChorusCoordinator
import ChorusCore
import ChorusEngine
import ChorusEtcd
import ChorusGateway
import ChorusMesh
import ChorusWAL
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// The composition root of one node. `run` reads top to bottom as the node starts: the
/// membership, recovery of the log, the engine, the cluster's parts, the gateway, then the
/// services, which stop in reverse order (gateway first, log last) on SIGTERM or SIGINT. Each step
/// builds only from what the steps before it built: nothing is bound late.
struct Node {
    let settings: ServeSettings

    func run() async throws {
        let logger = Self.bootstrapLogging()
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        if settings.insecureFastPasswordHash {
            logger.warning("--insecure-fast-password-hash: passwords are hashed with a cheap KDF; for tests and load runs only")
        }
        let metrics = NodeMetrics(registry: registry)
        var membership = try loadMembership(logger: logger)
        let group = try await makeEventLoops()
        var members: (store: MembersStore, snapshot: MembersStore.Snapshot)?
        if let r = settings.replication {
            let store = MembersStore(client: EtcdClient(endpoints: r.endpoints, group: group), cluster: r.cluster)
            let found = try await replicatedMembers(membership, store: store, logger: logger)
            (membership, members) = (found.membership, (store, found.members))
        }
        // With replication nothing is served until etcd's table names the partitions' leaders.
        let placement = PlacementCell(Placement(
            ring: membership.current.ring, selfId: settings.nodeId,
            leaders: settings.replication == nil ? nil : Array(repeating: "", count: Partitioning.count)))
        let mesh = makeMesh(membership.current, placement: placement, group: group, logger: logger)
        let followed = settings.replication.map { _ in
            FollowedPartitions(inboxes: InboxDirectory(), sharesInbox: { placement.sharesInbox(user: $0, with: $1) })
        }
        // The replayed state is handed to the engine's actors and not kept here (a copy would double it).
        var recovered = try recover(placement: placement, followed: followed, metrics: metrics, logger: logger)
        var replica: ReplicaParts?
        if let r = settings.replication, let followed, let members {
            replica = try await prepareReplication(&recovered, followed: followed, settings: r, members: members, logger: logger)
        }
        let engine = try await buildEngine(recovered, placement: placement, mesh: mesh, group: group, metrics: metrics, logger: logger)
        let sessions = await buildSessions(engine, metrics: metrics, logger: logger)
        var cluster: ClusterParts?
        if let mesh, let peers = engine.peers {
            cluster = buildCluster(engine, sessions: sessions, peers: peers, membership: membership, mesh: mesh, group: group, logger: logger)
            cluster?.replication = replica?.copies
        }
        cluster?.membership.resume()
        let front = buildGateway(engine, sessions: sessions, cluster: cluster, members: members?.store, group: group, metrics: metrics, logger: logger)
        let services = ServiceGroup(
            configuration: .init(
                services: serviceList(engine, sessions: sessions, cluster: cluster, replica: replica, front: front, logger: logger),
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await services.run()
        front.readiness.set(false)
        try await group.shutdownGracefully()
        logger.info("stopped cleanly")
    }

    /// The event-loop threads. With `--fsync never`, a send read on a loop is committed on that
    /// loop at the end of its tick (CommitDeferral): no hand-off to the log's writer and back.
    func makeEventLoops() async throws -> MultiThreadedEventLoopGroup {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: settings.eventLoops)
        for loop in group.makeIterator() {
            try await loop.submit { CommitDeferral.install { work in loop.execute(work) } }.get()
        }
        return group
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
