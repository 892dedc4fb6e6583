import ChorusCluster
import ChorusCoordinator
import ChorusCore
import ChorusEngine
import ChorusEtcd
import ChorusMesh
import ChorusPeer
import ChorusReplica
import ChorusReplication
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// What a replicated node is made of beside the engine: its copies of every partition, the
/// journal that routes the engine's appends to the ones it leads, the followed state.
struct ReplicaParts {
    let settings: ReplicationSettings
    let journal: ReplicatedJournal
    let followed: FollowedPartitions
    let copies: FollowerCopies
    let incarnation: UInt64
    let client: EtcdClient
    let store: PartitionTableStore
    /// The cluster's members (the ring) in etcd, and what they were when the node started.
    let members: MembersStore
    let startingMembers: MembersStore.Snapshot
    /// The node's copies started rebuilding (a lost disk): etcd learns the new incarnation once
    /// every copy has caught up.
    let rebuilding: Bool
}

/// The replication shell of one node (docs/REPLICATION.md): keeps the node's etcd lease, watches
/// the partition table and the live nodes, feeds `ReplicaRoles` and carries out its decisions
/// (lead, take over, step down), and sends the leaders' heartbeats. A node that is deposed while
/// it leads, or whose lease lapses, stops the process (fail-stop): restarted, it recovers its
/// copies from its log and follows again.
struct ReplicationService: Service {
    let parts: ReplicaParts
    let selfId: String
    /// The value of `nodes/<id>`: mesh address, HTTP address, incarnation.
    let advertised: String
    let wal: any Journal
    let peers: PeerClient
    /// Links follow the members and every node a partition still names as a replica.
    let mesh: MeshNode
    let placement: PlacementCell
    let accounts: Accounts
    let conversations: Conversations
    let fanout: InboxFanout?
    /// Where entries from other partitions' conversations reach this node's inboxes.
    let writer: RemoteInboxWriter?
    /// Runs after a partition's keys were promoted, with their users' email records (re-engagement
    /// takes its outbox's share, then arms its users' timers).
    let promoted: @Sendable ([ChorusEvent]) async -> Void
    /// Runs when this node hands a partition off, once its appends are refused and committed:
    /// closes its users' sessions (1012) and stages its keys again (`FollowedPartitions.demote`).
    let demoted: @Sendable (PartitionId) async throws(ChatError) -> Void
    let clock: any WallClock
    let logger: Logger

    func run() async throws {
        let lease = NodeLease(
            client: parts.client, key: parts.store.prefix + "nodes/" + selfId, value: Array(advertised.utf8), ttl: parts.settings.lease)
        let shell = ReplicaShell(self)
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { tasks in
                tasks.addTask { await lease.run() }
                tasks.addTask { try await shell.follow(lease: lease) }
                tasks.addTask { await shell.beat() }
            }
        } onGracefulShutdown: {
            Task { await lease.revoke() }
        }
    }
}
