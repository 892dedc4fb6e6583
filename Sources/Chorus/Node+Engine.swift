import ChorusCLI
import ArgumentParser
import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusGateway
import ChorusMail
import ChorusMesh
import ChorusPeer
import ChorusReengagement
import ChorusWAL
import Foundation
import Logging
import NIOCore

/// The engine of one node: accounts, conversations, inboxes and the re-engagement email, over the
/// recovered log; with a mesh, the typed client to other nodes and the fan-out to their inboxes.
struct EngineParts {
    let log: WriteAheadLog
    /// What the engine appends through (`Recovered.journal`).
    let journal: any Journal
    let writer: RemoteInboxWriter
    /// Where the mesh transport sends requests addressed to this node (set with the dispatcher).
    let localDispatch: LocalDispatch
    let report: RecoveryReport
    let sharesInbox: @Sendable (String, String) -> Bool
    let clock: SystemWallClock
    let placement: PlacementCell
    let accounts: Accounts
    let conversations: Conversations
    let inboxes: InboxDirectory
    let reengagement: ReengagementService
    /// Set on a node of a cluster.
    let peers: ClusterPeers?
    let fanout: InboxFanout?
}

extension Node {
    /// The mesh of a cluster node, ready to be used as a transport; it serves nothing until its
    /// service starts it with the node's dispatcher.
    func makeMesh(_ membership: ClusterMembership, placement: PlacementCell, group: any EventLoopGroup, logger: Logger) -> MeshNode? {
        guard let listen = settings.mesh else { return nil }
        var config = MeshConfiguration(
            selfId: settings.nodeId, listen: PeerAddress(host: listen.host, port: listen.port),
            peers: MembershipManager.addresses(membership.members.filter { $0.key != settings.nodeId }), ringSignature: placement.ring.signature)
        config.maxFrameBytes = 2 << 20
        config.tls = settings.meshTLS
        config.maxInboundConnections = settings.meshMaxInbound
        return MeshNode(configuration: config, group: group, logger: logger)
    }

    func buildEngine(
        _ recovered: Recovered, placement: PlacementCell, mesh: MeshNode?, group: any EventLoopGroup, metrics: NodeMetrics, logger: Logger
    ) async throws -> EngineParts {
        var accountsConfig = Accounts.Configuration()
        accountsConfig.placement = placement
        accountsConfig.loginRateLimit = settings.loginRateLimit
        accountsConfig.registerRateLimit = settings.registerRateLimit
        accountsConfig.tokenTTLMs = settings.tokenTTLMs
        accountsConfig.hashPool = PasswordHashPool(workers: ProcessInfo.processInfo.activeProcessorCount, maxPending: settings.maxPendingHashes)
        accountsConfig.hasher = PasswordHasher(
            iterations: settings.insecureFastPasswordHash ? PasswordHasher.insecureFastIterations : PasswordHasher.recommendedIterations)
        let clock = SystemWallClock()
        let log = recovered.journal
        let accounts = Accounts(state: recovered.state.engine.accounts, journal: log, clock: clock, configuration: accountsConfig)
        // Entries for this node's own users from conversations of other partitions (replication)
        // are written here; other nodes' through the mesh.
        let writer = RemoteInboxWriter(journal: log, inboxes: recovered.inboxes, placement: placement)
        let selfId = settings.nodeId
        // Conversations reach other nodes' conversations and inboxes through the mesh.
        let local = LocalDispatch()
        let peers = mesh.map { ClusterPeers(placement: placement, client: PeerClient(MeshTransport(node: $0, local: local))) }
        let enginePeers = peers.map { EnginePeers(placement: placement, client: $0.client) }
        let fanout = enginePeers.map { p in
            InboxFanout(
                send: { items, node, reply in
                    if node == selfId { writer.append(items, reply: reply) } else { p.appendInboxes(items, to: node, reply: reply) }
                },
                sleep: { ms in try? await Task.sleep(for: .milliseconds(ms)) })
        }
        let conversations = Conversations(
            state: recovered.state.engine, accounts: accounts, journal: log, inboxes: recovered.inboxes, clock: clock, limits: accountsConfig.limits,
            placement: placement, peers: enginePeers, fanout: fanout)
        // An owner that lacks the entry before one it is sent answers `gap`: the conversation
        // puts the missing ones first.
        fanout?.onGap { node, members in await conversations.repairGaps(at: node, members) }
        if let fanout { metrics.fanout.withLock { $0 = { (fanout.queuedTotal, fanout.droppedItems, fanout.gapsAnswered) } } }
        metrics.conversations.withLock { $0 = { (conversations.count, conversations.liveCount) } }
        let reengagement = try makeReengagement(recovered, accounts: accounts, placement: placement, clock: clock, group: group, logger: logger)
        await accounts.onLogin { index in Task { await reengagement.loggedIn(UInt32(index)) } }
        return EngineParts(
            log: recovered.log, journal: log, writer: writer, localDispatch: local, report: recovered.report, sharesInbox: recovered.sharesInbox, clock: clock, placement: placement, accounts: accounts,
            conversations: conversations, inboxes: recovered.inboxes, reengagement: reengagement, peers: peers, fanout: fanout)
    }

    /// Re-engagement email: timers from each user's durable lastLoginAt, the outbox from the log.
    private func makeReengagement(
        _ recovered: Recovered, accounts: Accounts, placement: PlacementCell, clock: SystemWallClock, group: any EventLoopGroup, logger: Logger
    ) throws -> ReengagementService {
        let emailSecret: [UInt8]
        do { emailSecret = try loadEmailSecret(dataDirectory: settings.dataDirectory) } catch {
            logger.critical("cannot start: the email secret cannot be read or made: \(error)")
            throw ExitCode(1)
        }
        var s = ReengagementSettings(
            policy: ReengagementPolicy(inactivityMs: settings.inactivityAfterMs),
            from: settings.mailFrom ?? "chorus@localhost",
            publicURL: settings.publicURL ?? "http://\(settings.host):\(settings.port)",
            domain: settings.publicURL.flatMap { URL(string: $0)?.host } ?? "chorus.local")
        s.tickMs = 1_000
        s.sendPerSecond = settings.emailRate
        s.concurrency = settings.smtpConnections  // emails in flight: one per SMTP connection
        if let templates = settings.emailTemplates { s.templates = templates }
        return ReengagementService(
            settings: s, outbox: recovered.state.outbox, journal: recovered.journal,
            mailer: mailer(group: group, logger: logger),
            directory: AccountsDirectory(accounts: accounts, placement: placement),
            tokens: UnsubscribeTokens(secret: emailSecret), nowMs: clock.nowMs(), logger: logger, keyPoint: { KeyPoint.of(id: $0) })
    }

    /// SMTP with `--smtp`, else `.eml` files under the data directory.
    func mailer(group: any EventLoopGroup, logger: Logger) -> any Mailer {
        guard let smtp = settings.smtp, let (host, port) = try? ConfigParsing.hostPort(smtp, allowEphemeral: false) else {
            return DirectoryMailer(directory: settings.dataDirectory + "/outbox")
        }
        var s = SMTPSettings(host: host, port: port, sender: settings.mailFrom ?? "chorus@localhost")
        let env = ProcessInfo.processInfo.environment
        s.username = settings.smtpUser
        s.password = env["CHORUS_SMTP_PASSWORD"]
        s.tls = SMTPSettings.TLSMode(rawValue: settings.smtpTLS) ?? .opportunistic
        s.caFile = settings.smtpCAFile
        if let url = settings.publicURL.flatMap({ URL(string: $0)?.host }) { s.heloName = url }
        logger.info("re-engagement email goes to SMTP server \(host):\(port)")
        return SMTPMailer(settings: s, group: group, logger: logger, connections: settings.smtpConnections)
    }
}
