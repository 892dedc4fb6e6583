import ChorusCluster
import ChorusCoordinator
import ChorusCore
import ChorusEngine
import ChorusEtcd
import ChorusPeer
import ChorusReplica
import ChorusReplication
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The mutable side of `ReplicationService`: the table and live nodes as last seen, the roles,
/// the copies being led.
actor ReplicaShell {
    let s: ReplicationService
    var entries: [PartitionId: PartitionTableStore.Entry] = [:]
    var alive: Set<String> = []
    var nodeRevisions: [String: Int64] = [:]
    var roles: ReplicaRoles<ContinuousClock.Instant>
    var takingOver: Set<PartitionId> = []
    /// The epoch a take-over of this node swapped in, until the table shows it.
    var swapped: [PartitionId: UInt64] = [:]
    var reconcileRound = 0
    let leading = Mutex<[PartitionId: LeaderCopy]>([:])
    let beating = Atomic<Bool>(false)
    /// Partitions promoted and routed to their copy (served), by partition.
    var serving: [PartitionId: LeaderCopy] = [:]
    /// The lease this node held when its view of it lapsed: acknowledgments are suspended until
    /// it is renewed (etcd never expired it, so no one could take over), or the node stops.
    var suspendedUnder: Int64??
    /// The partition being handed off, if any (one at a time).
    var handingOff: PartitionId?
    /// etcd's members as last seen, and every mesh address ever seen (by node id).
    var membersRevision: Int64
    var addresses: [String: String]
    /// Rings before the current one, still accepted from peers that have not seen a change yet.
    var acceptedRings: [UInt64] = []
    /// The peers the mesh links to (nil: not set since the ring changed).
    var linked: Set<String>?

    init(_ s: ReplicationService) {
        self.s = s
        roles = ReplicaRoles(selfId: s.selfId, incarnation: s.parts.incarnation, rebalanceAfter: s.parts.settings.rebalanceAfter)
        membersRevision = s.parts.startingMembers.modRevision
        addresses = s.parts.startingMembers.members
    }

    var ring: HashRing { s.placement.ring }

    /// Registers, reads (or creates) the table and the live nodes, then acts on every change and
    /// every 100 ms (the lease view included) until cancelled.
    func follow(lease: NodeLease) async throws {
        let store = s.parts.store
        // Each watch goes on from the revision its own range was read at: nothing in between is missed.
        var (table, tableRevision, nodesRevision) = (([PartitionId: PartitionTableStore.Entry]()), Int64(0), Int64(0))
        while true {
            do {
                (table, tableRevision) = try await store.bootstrap(PartitionAssignment.initialTable(ring: ring, factor: s.parts.settings.factor))
                let nodes = try await s.parts.client.range(prefix: store.prefix + "nodes/")
                alive = Set(nodes.kvs.compactMap { Self.nodeId($0.key, prefix: store.prefix) })
                nodesRevision = nodes.revision
                break
            } catch {
                s.logger.warning("etcd cannot be reached; retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
        entries = table
        publishLeaders()
        connectReplicas()
        let tablePrefix = store.partitionsPrefix
        let nodesPrefix = store.prefix + "nodes/"
        let watches = [
            EtcdWatch(client: s.parts.client, prefix: tablePrefix, fromRevision: tableRevision + 1, onEvents: { events in
                Task { await self.tableChanged(events) }
            }),
            EtcdWatch(client: s.parts.client, prefix: nodesPrefix, fromRevision: nodesRevision + 1, onEvents: { events in
                Task { await self.nodesChanged(events) }
            }),
            EtcdWatch(client: s.parts.client, prefix: s.parts.members.key, fromRevision: membersRevision + 1, onEvents: { events in
                Task { await self.membersChanged(events) }
            }),
        ]
        defer { for w in watches { w.cancel() } }
        s.logger.info("replication started", metadata: [
            "factor": "\(s.parts.settings.factor)", "ackReplicas": "\(s.parts.settings.ackReplicas)", "alive": "\(alive.sorted())",
        ])
        var rebuilt = !s.parts.rebuilding
        while !Task.isCancelled {
            await watchLease(lease)
            if !rebuilt, s.parts.copies.rebuilding.isEmpty {
                let key = store.prefix + "incarnations/" + s.selfId
                if (try? await s.parts.client.put(key, Array("\(s.parts.incarnation)".utf8))) != nil {
                    rebuilt = true
                    s.logger.info("every copy rebuilt: this data directory now counts", metadata: ["incarnation": "\(s.parts.incarnation)"])
                }
            }
            decide()
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// A lapsed view of the lease suspends every served partition (appends refused); renewed under
    /// the same lease, they are served again; a new lease (etcd expired the old one, and other
    /// nodes may have taken over) stops the node.
    private func watchLease(_ lease: NodeLease) async {
        let holds = await lease.holds()
        let id = await lease.lease
        if let under = suspendedUnder {
            guard holds else { return }
            guard id == under else { stop("this node's etcd lease expired while it led partitions") }
            suspendedUnder = nil
            for (_, copy) in serving { s.parts.journal.lead(copy) }
            s.logger.warning("lease renewed: serving again", metadata: ["partitions": "\(serving.count)"])
        } else if !holds, !serving.isEmpty || !roles.leading.isEmpty {
            suspendedUnder = .some(id)
            for p in serving.keys { s.parts.journal.stopLeading(p) }
            s.logger.warning("lease not renewed in time: acknowledging nothing until it is", metadata: ["partitions": "\(serving.count)"])
        }
    }

    static func nodeId(_ key: [UInt8], prefix: String) -> String? {
        let k = String(decoding: key, as: UTF8.self)
        let head = prefix + "nodes/"
        return k.hasPrefix(head) ? String(k.dropFirst(head.count)) : nil
    }

    // Watch batches arrive in revision order but run as separate tasks: each change is taken only
    // if it is newer than what is known.

    func tableChanged(_ events: [EtcdWatchEvent]) {
        var newLeaders: Set<String> = []
        for e in events where e.kind == .put {
            guard let (p, entry) = s.parts.store.decode(e.kv), entry.modRevision > entries[p]?.modRevision ?? 0 else { continue }
            // A new epoch, even under the same leader (a hand-off that chose this node again): while
            // the partition paused, its users' entries may have been queued for no one.
            if entries[p]?.assignment.epoch != entry.assignment.epoch { newLeaders.insert(entry.assignment.leader) }
            entries[p] = entry
        }
        // Entries for the users that moved wait until the new leaders were asked what they lack
        // (`scheduleReconcile`): sent at once, a later entry could land before an earlier one the
        // old leader never got, and the gap would never be seen. Paused before routing changes.
        if !newLeaders.isEmpty { s.fanout?.pause(nodes: Array(newLeaders)) }
        publishLeaders()
        connectReplicas()
        decide()
        scheduleReconcile()
    }

    func nodesChanged(_ events: [EtcdWatchEvent]) {
        for e in events {
            guard let id = Self.nodeId(e.kv.key, prefix: s.parts.store.prefix), e.kv.modRevision > nodeRevisions[id] ?? 0 else { continue }
            nodeRevisions[id] = e.kv.modRevision
            if e.kind == .put { alive.insert(id) } else { alive.remove(id) }
        }
        publishLeaders()
        decide()
    }

    /// Routing follows the table: requests for a partition go to the leader it names.
    /// This node names itself only for partitions it serves (promoted): until then a request for
    /// one of their keys is `unavailable` here, not answered from state it does not hold yet.
    /// A leader without a lease (etcd lists it as dead) is named by no one: its keys answer
    /// `unavailable` at once rather than after the mesh's timeout, until a take-over names another.
    func publishLeaders() {
        s.placement.publish(replicas: Partitioning.all.map { entries[$0]?.assignment.replicas ?? [] })
        s.placement.lead(Partitioning.all.map { p in
            let leader = entries[p]?.assignment.leader ?? ""
            if leader == s.selfId { return serving[p] == nil ? "" : leader }
            return alive.contains(leader) ? leader : ""
        })
    }

    func decide() {
        for d in roles.decide(table: entries.mapValues(\.assignment), alive: alive, now: .now) {
            switch d {
            case .lead(let p, let a): lead(p, a)
            case .stepDown(let p): stop("partition \(p) has a new leader (\(entries[p]?.assignment.leader ?? "?")) while this node led it")
            case .takeOver(let p, _): takeOver(p)
            case .handOff(let p, let target): handOff(p, to: target)
            }
        }
        reconfigureDue()
    }

    /// Leads `p` in `a.epoch` from the followed copy: commits the epoch's first record (and with it
    /// everything inherited), promotes the partition's staged keys, then serves it.
    private func lead(_ p: PartitionId, _ a: PartitionAssignment) {
        let parts = s.parts
        s.logger.debug("starting to lead", metadata: ["partition": "\(p)", "epoch": "\(a.epoch)", "followers": "\(a.followers)"])
        parts.copies.setLed(p, true)
        let inherited = parts.copies.copy(p).map { PartitionReplay(copies: [p: $0]) } ?? PartitionReplay()
        let followed = parts.followed
        let copy = LeaderCopy(
            partition: p, epoch: a.epoch, followers: a.followers, ackReplicas: parts.settings.ackReplicas, replay: inherited, journal: s.wal,
            client: s.peers
        ) { actions in
            for case .apply(let kind, let payload, let lsn) in actions { followed.apply(kind: kind, payload: payload, lsn: lsn) }
        }
        leading.withLock { $0[p] = copy }
        let s = self.s
        let decided = ContinuousClock.now
        Task {
            let started = await withCheckedContinuation { c in copy.start { c.resume(returning: $0) } }
            guard case .success = started else {
                s.logger.warning("could not start leading", metadata: ["partition": "\(p)", "epoch": "\(a.epoch)", "outcome": "\(started)"])
                return
            }
            let emails = await followed.promote(
                where: { Partitioning.partition(ofPoint: $0) == p }, accounts: s.accounts, conversations: s.conversations, now: s.clock.nowMs())
            // The partition's conversations fan out from here now; the previous leader may have died
            // (or stepped aside) with entries not yet delivered. Owners take a conversation's
            // entries in seq order and repair only past the highest they hold, so nothing new goes
            // out until the reconciliation below has put what each owner lacks first.
            let placement = s.placement
            s.fanout?.pause(nodes: Array(Set(placement.serving + placement.ring.members + [s.selfId])))
            // The highs this node remembers for its users' inboxes date from when it last led them:
            // while it followed, other leaders' entries went into the inboxes.
            s.writer?.refreshHighs()
            await self.serve(p, copy)
            await s.promoted(emails)
            s.logger.info("leading", metadata: [
                "partition": "\(p)", "epoch": "\(a.epoch)", "followers": "\(a.followers)", "elapsed": "\(ContinuousClock.now - decided)",
            ])
            await self.scheduleReconcile()
        }
    }

    /// After partitions change leaders: fan-out entries queued for a node that no longer owns their
    /// user are dropped, and every member of the conversations led here gets what its inbox lacks
    /// from its owner now (this node included): entries in flight when a leader died are put back.
    /// Runs once changes have settled for 300 ms; each node is reconciled on its own and its queue
    /// resumed as soon as it is done (a node that cannot be reached holds back only its own).
    func scheduleReconcile() {
        reconcileRound += 1
        let round = reconcileRound
        Task {
            try? await Task.sleep(for: .milliseconds(300))
            guard round == reconcileRound else { return }
            let (placement, conversations, fanout) = (s.placement, s.conversations, s.fanout)
            fanout?.purge { user, node in placement.owner(ofUser: user) != node }
            await withTaskGroup(of: Void.self) { group in
                for node in Set(placement.serving + [s.selfId]) {
                    group.addTask {
                        await conversations.reconcile(with: node)
                        fanout?.resume(node: node)
                    }
                }
            }
        }
    }

    private func takeOver(_ p: PartitionId) {
        guard !takingOver.contains(p), let entry = entries[p], entry.assignment.epoch >= swapped[p] ?? 0 else { return }
        takingOver.insert(p)
        let runner = FailoverRunner(store: s.parts.store, ackReplicas: s.parts.settings.ackReplicas, fence: fence(alive: alive))
        Task {
            let started = ContinuousClock.now
            let dead = entry.assignment.leader
            do {
                switch try await runner.takeOver(p, from: entry) {
                case .promoted(let next):
                    swapped[p] = next.epoch
                    s.logger.info("took over", metadata: [
                        "partition": "\(p)", "from": "\(dead)", "epoch": "\(next.epoch)", "leader": "\(next.leader)",
                        "elapsed": "\(ContinuousClock.now - started)",
                    ])
                case .tooFewAnswers(let n):
                    s.logger.debug("take-over: too few copies answered", metadata: ["partition": "\(p)", "answers": "\(n)"])
                case .lostRace:
                    s.logger.debug("take-over: another node swapped first", metadata: ["partition": "\(p)"])
                }
            } catch {
                s.logger.warning("take-over: etcd", metadata: ["partition": "\(p)", "error": "\(error)"])
            }
            takingOver.remove(p)
        }
    }

    /// Routes the partition's appends to its copy (unless acknowledgments are suspended).
    func serve(_ p: PartitionId, _ copy: LeaderCopy) {
        serving[p] = copy
        if suspendedUnder == nil { s.parts.journal.lead(copy) }
        publishLeaders()
    }

    /// Fences `p` at `epoch` on every replica (this node's copy directly, the others over the mesh)
    /// and returns the promises once `Promotion.fenceSettled` (replicas etcd lists as dead are not
    /// waited for: a stopped node would otherwise hold every failover for the mesh's timeout).
    /// A question still open then finishes in the background; at most one per replica per round.
    private func fence(alive: Set<String>) -> FailoverRunner.Fence {
        let (copies, peers, selfId, ackReplicas) = (s.parts.copies, s.peers, s.selfId, s.parts.settings.ackReplicas)
        return { p, epoch, replicas in
            let (answers, sink) = AsyncStream.makeStream(of: (String, PeerReply?).self, bufferingPolicy: .unbounded)
            for r in replicas {
                Task {
                    if r == selfId {
                        let answer = await withCheckedContinuation { c in copies.handle(.fence(partition: p, epoch: epoch), from: selfId) { c.resume(returning: $0) } }
                        sink.yield((r, try? answer.get()))
                    } else {
                        sink.yield((r, try? await peers.call(.replication(.fence(partition: p, epoch: epoch)), to: r)))
                    }
                }
            }
            var votes: [String: FailoverRunner.Vote] = [:]
            var answered: Set<String> = []
            for await (r, reply) in answers {
                answered.insert(r)
                if case .fenced(.promised(let position, let incarnation))? = reply { votes[r] = .init(position: position, incarnation: incarnation) }
                if Promotion.fenceSettled(replicas: replicas, answered: answered, promised: votes.count, alive: alive, ackReplicas: ackReplicas) { break }
            }
            sink.finish()
            return votes
        }
    }

    /// Empty appends to every follower of every partition led here, every 50 ms: they learn the
    /// commit index, and followers that were unreachable are tried again.
    nonisolated func beat() async {
        while !Task.isCancelled {
            // Off the concurrency pool: a pump may read a lagging follower's records back from the
            // log, and the lease's keep-alives must not wait behind it.
            // A round still running (a slow read) is not joined by another.
            let copies = leading.withLock { Array($0.values) }
            if beating.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
                DispatchQueue.global().async { [self] in
                    for copy in copies { copy.pump(heartbeat: true) }
                    beating.store(false, ordering: .releasing)
                }
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Fail-stop: this node may no longer acknowledge for a partition it led, and its copy must be
    /// rebuilt from its log before it follows again.
    func stop(_ why: String) -> Never {
        s.logger.critical("stopping: \(why); restart the node to follow its partitions again")
        exit(75)
    }
}
