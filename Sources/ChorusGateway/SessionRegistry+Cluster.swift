import ChorusCore
import ChorusEngine
import ChorusPeer

extension SessionRegistry {
    /// Presence of users owned by other nodes, asked of their owners (with `watch`, each owner then
    /// tells this node of every change). A user whose owner does not answer is reported offline.
    func remotePresence(of users: [String], watch: Bool, cluster: ClusterPeers) async -> [(String, PresenceCore.Status)] {
        var byNode: [String: [String]] = [:]
        for u in users { byNode[cluster.placement.owner(ofUser: u), default: []].append(u) }
        var out: [(String, PresenceCore.Status)] = []
        for (node, ids) in byNode {
            var statuses: [PresenceStatus] = []
            if case .presence(let got)? = try? await cluster.client.call(.session(.presence(users: ids, watch: watch)), to: node), got.count == ids.count {
                statuses = got
            }
            for (i, id) in ids.enumerated() { out.append((id, i < statuses.count ? statuses[i] : PresenceStatus(online: false, lastSeen: 0))) }
        }
        return out
    }

    /// Tells `node` (which watches `userId`) of a change.
    func tellPresence(_ userId: String, _ status: PresenceCore.Status, to node: String, cluster: ClusterPeers) {
        cluster.client.tell(.presence(userId: userId, status), to: node)
    }
}
