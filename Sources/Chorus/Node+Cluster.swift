import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusGateway
import ChorusMesh
import ChorusPeer
import Logging
import NIOCore

/// What a node of a cluster adds: the parts that answer other nodes (the engine's peer service,
/// the gateway's relay, the membership manager) and the mesh they are reached through.
struct ClusterParts {
    let mesh: MeshNode
    let gateway: ClusterGateway
    let engineService: EnginePeerService
    let membership: MembershipManager
    let addressBook = PeerAddressBook()
    /// With replication: the node's copies, which answer replication requests.
    var replication: (any ReplicationRequestHandler)?
}

extension Node {
    func buildCluster(
        _ engine: EngineParts, sessions: SessionParts, peers: ClusterPeers, membership: StartingMembership, mesh: MeshNode, group: any EventLoopGroup,
        logger: Logger
    ) -> ClusterParts {
        let writer = engine.writer
        let reengagement = engine.reengagement
        let manager = MembershipManager(
            selfId: settings.nodeId, current: membership.current, pending: membership.pending, joining: membership.joining, cell: engine.placement,
            mesh: mesh, client: peers.client,
            handover: Handover(
                accounts: engine.accounts, conversations: engine.conversations, inboxes: engine.inboxes, journal: engine.journal, clock: engine.clock,
                emailState: { await reengagement.handOverEvents(of: $0) }, onEmail: { await reengagement.receive($0) }),
            onCommit: { await reengagement.armUnarmed() },
            conversations: engine.conversations, writer: writer, fanout: engine.fanout, sessions: sessions.registry, store: membership.store,
            logger: logger)
        return ClusterParts(
            mesh: mesh,
            gateway: ClusterGateway(peers: peers, services: sessions.services, loops: group, logger: logger),
            engineService: EnginePeerService(conversations: engine.conversations, accounts: engine.accounts, writer: writer),
            membership: manager)
    }
}

extension ClusterParts {
    /// Where every peer message to this node goes.
    func dispatcher(forward: ForwardService, logger: Logger) -> PeerDispatcher {
        PeerDispatcher(
            engine: engineService, sessions: gateway, forward: forward, membership: membership, replication: replication ?? ReplicationOff(),
            logger: logger)
    }
}
