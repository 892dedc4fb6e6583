import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusGateway
import ChorusWAL
import Logging
import ServiceLifecycle

extension Node {
    /// The node's services in start order; they stop in reverse (gateway first, log last).
    func serviceList(
        _ engine: EngineParts, sessions: SessionParts, cluster: ClusterParts?, replica: ReplicaParts?, front: FrontParts, logger: Logger
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        var list: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: LogService(log: engine.log, logger: logger))]
        // A replicated node's log holds its copies of partitions, not an engine state to snapshot.
        if replica == nil {
            list.append(.init(service: Checkpointer(
                log: engine.log, directory: settings.dataDirectory + "/wal", everyRecords: settings.snapshotEveryRecords,
                initialSnapshotLSN: engine.report.snapshotLSN, logger: logger, sharesInbox: engine.sharesInbox)))
        }
        list += [
            .init(
                service: CacheSweeper(conversations: engine.conversations, clock: engine.clock, interval: .seconds(60), idleMs: 600_000, logger: logger),
                successTerminationBehavior: .ignore),
            .init(
                service: TokenExpiry(accounts: engine.accounts, interval: TokenExpiry.interval(tokenTTLMs: settings.tokenTTLMs), logger: logger),
                successTerminationBehavior: .ignore),
        ]
        if let cluster {
            let dispatcher = cluster.dispatcher(forward: front.forward, logger: logger)
            engine.localDispatch.set(dispatcher)
            list.append(.init(service: MeshLifecycle(node: cluster.mesh, dispatcher: dispatcher, logger: logger)))
            if let replica, let peers = engine.peers, let mesh = settings.mesh {
                list.append(.init(service: ReplicationService(
                    parts: replica, selfId: settings.nodeId, advertised: "\(mesh.host):\(mesh.port) \(settings.host):\(settings.port) \(replica.incarnation)",
                    wal: engine.log, peers: peers.client, mesh: cluster.mesh, placement: engine.placement, accounts: engine.accounts, conversations: engine.conversations,
                    fanout: engine.fanout, writer: engine.writer, promoted: { [reengagement = engine.reengagement] emails in
                        await reengagement.receive(emails)
                        await reengagement.armUnarmed()
                    },
                    demoted: { [registry = sessions.registry, accounts = engine.accounts, conversations = engine.conversations, clock = engine.clock] p throws(ChatError) in
                        let moved: @Sendable (UInt64) -> Bool = { Partitioning.partition(ofPoint: $0) == p }
                        registry.close(usersWhere: { moved(KeyPoint.of(id: $0)) }, code: CloseCode.userMoved, reason: "user moved to another node")
                        try await replica.followed.demote(where: moved, accounts: accounts, conversations: conversations, now: clock.nowMs())
                    },
                    clock: engine.clock, logger: logger)))
            }
        }
        list.append(.init(service: ReengagementLoop(service: engine.reengagement, clock: engine.clock)))
        list.append(.init(service: front.server))
        return list
    }
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
