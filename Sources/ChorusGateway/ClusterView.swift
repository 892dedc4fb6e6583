/// The members of the cluster and their status as this node sees them (PROTOCOL.md `GET /v1/cluster`).
public struct ClusterView: Sendable {
    public struct Node: Sendable {
        public var nodeId: String
        public var address: String
        /// "alive", "suspect" or "dead".
        public var status: String
        /// With replication: the partitions this node leads and those it holds a copy of as a
        /// follower, as this node's view of etcd's table says.
        public var leads: [Int]?
        public var follows: [Int]?
        /// This node only: the partitions whose copy here is being rebuilt.
        public var rebuilding: [Int]?

        public init(nodeId: String, address: String, status: String, leads: [Int]? = nil, follows: [Int]? = nil) {
            self.nodeId = nodeId
            self.address = address
            self.status = status
            self.leads = leads
            self.follows = follows
        }
    }

    public var selfId: String
    public var nodes: [Node]
    /// The membership's epoch (1 for a cluster started from its flags, +1 per change).
    public var epoch: UInt64
    /// The epoch a change in progress moves to (its keys are frozen meanwhile).
    public var pendingEpoch: UInt64?
    /// With replication: the partitions whose replicas are not yet the ones the members' ring
    /// names (a membership change still moving them); 0 when none.
    public var movingReplicas: Int?

    public init(selfId: String, nodes: [Node], epoch: UInt64 = 1, pendingEpoch: UInt64? = nil) {
        self.selfId = selfId
        self.nodes = nodes
        self.epoch = epoch
        self.pendingEpoch = pendingEpoch
    }
}
