import ArgumentParser
import ChorusCluster
import ChorusCoordinator
import ChorusEngine
import ChorusEtcd
import ChorusReplica
import ChorusReplication
import ChorusWAL
import Logging
import NIOCore

extension Node {
    /// With `--etcd`: the data directory's incarnation, the node's copies of every partition as its
    /// log left them, and the replicated journal the engine appends through (`recovered.journal`).
    ///
    /// A lease a previous run left in etcd is ended first (`NodeLease.endPrevious`): that run is
    /// gone, and its partitions must not wait for the lease's TTL to be led again.
    ///
    /// etcd keeps the incarnation each node last served whole from (`incarnations/<id>`, no lease).
    /// A node whose disk is not that one lost its data: its copies are rebuilding (it promises
    /// every partition's current epoch and is not counted until it has caught up), and the key
    /// names the new disk only once every copy has. A node etcd has never seen starts whole: it
    /// never held a record, so it was never one of the copies an ack counted.
    func prepareReplication(
        _ recovered: inout Recovered, followed: FollowedPartitions, settings r: ReplicationSettings,
        members: (store: MembersStore, snapshot: MembersStore.Snapshot), logger: Logger
    ) async throws -> ReplicaParts {
        var rng = SystemRandomNumberGenerator()
        let incarnation: (value: UInt64, created: Bool)
        do { incarnation = try DataIncarnation.loadOrCreate(directory: settings.dataDirectory, using: &rng) } catch {
            logger.critical("cannot start: the data directory's incarnation: \(error)")
            throw ExitCode(1)
        }
        let client = members.store.client
        let store = PartitionTableStore(client: client, cluster: r.cluster)
        let key = store.prefix + "incarnations/" + settings.nodeId
        let (inSync, known) = try await etcdAtStart(logger) { () async throws -> (Bool, [PartitionId: PartitionTableStore.Entry]) in
            if let ended = try await NodeLease.endPrevious(client: client, key: store.prefix + "nodes/" + settings.nodeId) {
                logger.warning("ended the lease a previous run of this node still held: its partitions fail over now", metadata: ["lease": "\(ended)"])
            }
            var inSync = true
            if let served = try await client.get(key) {
                inSync = served.valueString == "\(incarnation.value)"
            } else {
                _ = try await client.put(key, Array("\(incarnation.value)".utf8))
            }
            return (inSync, inSync ? [:] : try await store.read().table)
        }
        let copies = FollowerCopies(
            journal: recovered.log, incarnation: incarnation.value, recovered: recovered.partitions ?? PartitionReplay(), inSync: inSync
        ) { actions in
            for case .apply(let kind, let payload, let lsn) in actions { followed.apply(kind: kind, payload: payload, lsn: lsn) }
        }
        if !inSync {
            // Only the partitions this node holds a copy of: no leader sends it the others.
            for (p, e) in known where e.assignment.replicas.contains(settings.nodeId) {
                copies.handle(.fence(partition: p, epoch: e.assignment.epoch), from: settings.nodeId) { _ in }
            }
            logger.warning("this data directory is not the one this node last served from: its copies are rebuilt from the leaders")
        }
        let journal = ReplicatedJournal(log: recovered.log)
        recovered.journal = journal
        logger.info("replication", metadata: [
            "incarnation": "\(incarnation.value)", "newDisk": "\(incarnation.created)", "etcd": "\(r.endpoints)", "cluster": "\(r.cluster)",
        ])
        return ReplicaParts(
            settings: r, journal: journal, followed: followed, copies: copies, incarnation: incarnation.value, client: client, store: store,
            members: members.store, startingMembers: members.snapshot, rebuilding: !inSync)
    }
}
