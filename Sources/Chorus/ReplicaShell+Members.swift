import ChorusCluster
import ChorusCoordinator
import ChorusEtcd
import ChorusReplica
import ChorusReplication

extension ReplicaShell {
    /// etcd's members changed (a join or a retirement): the ring, and with it every partition's
    /// target replicas, is theirs now; the leaders move their replicas (`reconfigureDue`).
    func membersChanged(_ events: [EtcdWatchEvent]) {
        for e in events where e.kind == .put {
            guard let snapshot = try? s.parts.members.decode(e.kv), snapshot.modRevision > membersRevision else { continue }
            membersRevision = snapshot.modRevision
            addresses.merge(snapshot.members) { _, new in new }
            let before = ring
            let next = HashRing(members: snapshot.members.keys)
            guard next.signature != before.signature else { continue }
            s.placement.adopt(ring: next)
            // Peers that have not seen the change yet still stamp frames with the ring before it.
            acceptedRings = Array((acceptedRings + [before.signature]).suffix(4))
            s.logger.info("members changed", metadata: ["members": "\(snapshot.members.keys.sorted())"])
            linked = nil
        }
        connectReplicas()
        decide()
    }

    /// Mesh links to every member and to every node a partition still names as a replica (a
    /// retiring node stays reachable until no partition names it).
    func connectReplicas() {
        let named = Set(ring.members).union(entries.values.flatMap(\.assignment.replicas)).subtracting([s.selfId])
        let peers = named.filter { addresses[$0] != nil }
        guard peers != linked else { return }
        linked = peers
        s.mesh.reconfigure(
            peers: MembershipManager.addresses(addresses.filter { peers.contains($0.key) }), ringSignature: ring.signature,
            alsoAccepting: Set(acceptedRings))
    }

    /// For a partition led here whose replicas are not yet the ring's (after a membership change),
    /// the next step (`Reconfiguration`): a widen or narrow is a hand-off to this node itself, in
    /// the next epoch, with the new replicas; one step at a time, across all partitions.
    func reconfigureDue() {
        guard handingOff == nil, suspendedUnder == nil else { return }
        let factor = s.parts.settings.factor
        let ring = self.ring
        guard ring.members.count >= factor else { return }
        for (p, copy) in serving.sorted(by: { $0.key < $1.key }) {
            guard let entry = entries[p], entry.assignment.leader == s.selfId, roles.leading[p] == entry.assignment.epoch else { continue }
            let target = Partitioning.replicas(of: p, ring: ring, factor: factor)
            let caughtUp = Set(entry.assignment.followers.filter { copy.caughtUp($0) })
            switch Reconfiguration.next(entry.assignment, target: target, alive: alive, caughtUp: caughtUp) {
            case nil:
                continue
            case .handOff(let to):
                handOff(p, to: to)
            case .widen(let next), .narrow(let next):
                reassign(p, from: entry, to: next, copy: copy)
            }
            return
        }
    }

    /// Steps aside from `p` (every admitted append committed, the copy followed again), then swaps
    /// `next` in; `decide` then leads it (the same node and disk, a new epoch, new followers). If
    /// the swap fails, the entry still names this node in an epoch it stepped aside from, which is
    /// taken over like any other.
    private func reassign(_ p: PartitionId, from entry: PartitionTableStore.Entry, to next: PartitionAssignment, copy: LeaderCopy) {
        pause(p)
        Task {
            let started = ContinuousClock.now
            defer { handingOff = nil }
            guard await self.stepAside(p, epoch: entry.assignment.epoch, copy: copy, until: { _ in true }) else { return }
            let swapped = (try? await s.parts.store.swap(p, from: entry, to: next)) ?? false
            s.logger.info("replicas moved", metadata: [
                "partition": "\(p)", "epoch": "\(next.epoch)", "replicas": "\(next.replicas)", "swapped": "\(swapped)",
                "elapsed": "\(ContinuousClock.now - started)",
            ])
            decide()
        }
    }
}
