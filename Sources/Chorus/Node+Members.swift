import ArgumentParser
import ChorusCluster
import ChorusCoordinator
import ChorusCore
import ChorusEtcd
import Logging
import NIOCore

extension Node {
    /// With `--etcd`, the members are etcd's (`members`), written from this node's flags (itself and
    /// its `--peer`s) at the cluster's first start: the flags and the membership file count only
    /// then. A node etcd does not list starts outside the ring: it holds no replica and leads
    /// nothing until it is added (`POST /v1/cluster/members`), and its peers refuse its mesh links
    /// until then.
    func replicatedMembers(
        _ m: StartingMembership, store: MembersStore, logger: Logger
    ) async throws -> (membership: StartingMembership, members: MembersStore.Snapshot) {
        let snapshot = try await etcdAtStart(logger) { try await store.bootstrap(settings.flagMembership.members) }
        var out = m
        out.current = ClusterMembership(epoch: UInt64(snapshot.modRevision), members: snapshot.members)
        out.pending = nil
        out.joining = false
        if snapshot.members[settings.nodeId] == nil {
            logger.warning("not a member of the cluster in etcd: holding no replica until added", metadata: ["members": "\(snapshot.members.keys.sorted())"])
        } else if snapshot.members.keys.sorted() != settings.flagMembership.ids {
            logger.info("the members in etcd override --peer", metadata: ["members": "\(snapshot.members.keys.sorted())"])
        }
        return (out, snapshot)
    }
}

extension Node {
    /// Runs `work` against etcd at start, once a second until it succeeds, for 30 s at most (etcd
    /// may start after the node); past that the node does not start (exit 1).
    func etcdAtStart<T>(_ logger: Logger, _ work: () async throws -> T) async throws -> T {
        for attempt in 1... {
            do {
                return try await work()
            } catch {
                guard attempt < 30 else {
                    logger.critical("cannot start: etcd cannot be reached: \(error)")
                    throw ExitCode(1)
                }
                try await Task.sleep(for: .seconds(1))
            }
        }
        fatalError("unreachable")
    }
}

/// `POST /v1/cluster/members` on a replicated cluster: the change is a compare-and-swap of etcd's
/// members; each partition's leader then moves its replicas (`Reconfiguration`), and the answer
/// does not wait for that (`GET /v1/cluster` shows where replicas are).
struct ReplicatedMembershipChanges: Sendable {
    let store: MembersStore
    let factor: Int

    func change(_ request: MembershipChangeRequest) async throws(ChatError) -> ClusterMembership {
        for _ in 0..<5 {
            let current: MembersStore.Snapshot?
            do { current = try await store.read() } catch { throw .unavailable("etcd: \(error)") }
            guard let current else { throw .unavailable("the cluster has no members in etcd yet") }
            var next = current.members
            switch request {
            case .add(let id, let address):
                guard next[id] == nil else { throw .badRequest("\(id) is already a member") }
                next[id] = address
            case .remove(let id):
                guard next[id] != nil else { throw .badRequest("\(id) is not a member") }
                guard next.count > factor else {
                    throw .badRequest("a cluster with --replication-factor \(factor) keeps at least \(factor) members")
                }
                next[id] = nil
            }
            let swapped: Bool
            do { swapped = try await store.swap(from: current, to: next) } catch { throw .unavailable("etcd: \(error)") }
            if swapped {
                let written = try? await store.read()
                return ClusterMembership(epoch: UInt64(written?.modRevision ?? current.modRevision + 1), members: next)
            }
        }
        throw .unavailable("the members kept changing meanwhile; retry")
    }
}
