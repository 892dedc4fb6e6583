import ChorusCluster
import Metrics

/// The mesh's swift-metrics handles (exported by the node's Prometheus registry).
struct MeshMetrics: Sendable {
    let framesSent = Counter(label: "chorus_mesh_frames_sent_total")
    let framesReceived = Counter(label: "chorus_mesh_frames_received_total")
    /// Frames refused because a peer was unreachable or its queue was full.
    let dropped = Counter(label: "chorus_mesh_dropped_total")
    /// Per peer: 0 alive, 1 suspect, 2 dead.
    let status: [String: Gauge]

    init(peers: [String]) {
        var status: [String: Gauge] = [:]
        for p in peers {
            let g = Gauge(label: "chorus_mesh_peer_status", dimensions: [("peer", p)])
            g.record(1)
            status[p] = g
        }
        self.status = status
    }

    func setStatus(_ s: FailureDetector.Status, of peer: String) {
        status[peer]?.record(s == .alive ? 0 : s == .suspect ? 1 : 2)
    }
}
