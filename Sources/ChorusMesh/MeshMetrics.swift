import ChorusCluster
import Metrics
import Synchronization

/// The mesh's swift-metrics handles (exported by the node's Prometheus registry).
final class MeshMetrics: Sendable {
    let framesSent = Counter(label: "chorus_mesh_frames_sent_total")
    let framesReceived = Counter(label: "chorus_mesh_frames_received_total")
    /// Frames refused because a peer was unreachable or its queue was full.
    let dropped = Counter(label: "chorus_mesh_dropped_total")
    /// Peer connections closed before or at the handshake: no or a wrong certificate, not a
    /// member, wrong ring, too slow, or past the inbound cap.
    let refused = Counter(label: "chorus_mesh_refused_total")
    /// Per peer: 0 alive, 1 suspect, 2 dead.
    let status: Mutex<[String: Gauge]>

    init(peers: [String]) {
        status = Mutex([:])
        track(peers: peers)
    }

    /// Adds a gauge (suspect) for each new peer. Removed peers' gauges stay at their last value.
    func track(peers: [String]) {
        status.withLock { status in
            for p in peers where status[p] == nil {
                let g = Gauge(label: "chorus_mesh_peer_status", dimensions: [("peer", p)])
                g.record(1)
                status[p] = g
            }
        }
    }

    func setStatus(_ s: FailureDetector.Status, of peer: String) {
        status.withLock { $0[peer] }?.record(s == .alive ? 0 : s == .suspect ? 1 : 2)
    }
}
