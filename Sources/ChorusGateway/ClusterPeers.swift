import ChorusCluster
import ChorusPeer

/// How the sessions of a cluster node reach other nodes: who owns what, and the typed peer client.
/// Nil on a single node.
public struct ClusterPeers: Sendable {
    public let placement: PlacementCell
    public let client: PeerClient

    public init(placement: PlacementCell, client: PeerClient) {
        self.placement = placement
        self.client = client
    }
}
