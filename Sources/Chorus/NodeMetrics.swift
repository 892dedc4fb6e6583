import ChorusWAL
import Prometheus
import Synchronization

/// Node-level Prometheus series, refreshed from their sources at each scrape of `/metrics`.
final class NodeMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    let connections = Mutex<@Sendable () -> Int>({ 0 })
    let sessions = Mutex<@Sendable () -> Int>({ 0 })
    /// Conversations held here, and those with an actor now (the rest are idle: state only).
    let conversations = Mutex<@Sendable () -> (all: Int, live: Int)>({ (0, 0) })
    private let conversationsHeld: Gauge
    private let conversationsLive: Gauge
    /// Fan-out to other nodes' inboxes: entries waiting, entries dropped at the bound (a cluster).
    let fanout = Mutex<(@Sendable () -> (queued: Int, dropped: Int, gaps: Int))?>(nil)
    private let fanoutQueued: Gauge
    private let fanoutDropped: Gauge
    private let fanoutGaps: Gauge
    private let openSessions: Gauge
    private let lastStats = Mutex(WALStats())

    private let openConnections: Gauge
    private let walHealthy: Gauge
    private let walLastLSN: Gauge
    private let walSize: Gauge
    private let walCommits: Counter
    private let walRecords: Counter
    private let walStoredBytes: Counter
    private let walFsyncs: Counter
    let walFsyncSeconds: DurationHistogram

    /// Series are created before the log opens (the fsync histogram is fed by the log itself).
    private let logBox = Mutex<WriteAheadLog?>(nil)
    private var log: WriteAheadLog? { logBox.withLock { $0 } }

    func attach(_ log: WriteAheadLog) { logBox.withLock { $0 = log } }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        openConnections = registry.makeGauge(name: "chorus_connections_open", help: "Open client connections (HTTP and WebSocket).")
        openSessions = registry.makeGauge(name: "chorus_sessions_open", help: "Open WebSocket sessions.")
        conversationsHeld = registry.makeGauge(name: "chorus_conversations", help: "Conversations this node owns.")
        conversationsLive = registry.makeGauge(
            name: "chorus_conversations_live", help: "Conversations with an actor in memory (the others are idle: state only).")
        fanoutQueued = registry.makeGauge(name: "chorus_fanout_queued", help: "Inbox entries waiting to reach other nodes.")
        fanoutDropped = registry.makeGauge(
            name: "chorus_fanout_dropped", help: "Inbox entries dropped at the fan-out bound since start (reconciliation puts them back).")
        fanoutGaps = registry.makeGauge(
            name: "chorus_fanout_gaps", help: "Fan-out batches an owner answered gap since start (the entries before them were put first).")
        walHealthy = registry.makeGauge(name: "chorus_wal_healthy", help: "1 while the write-ahead log accepts appends, 0 once stopped.")
        walLastLSN = registry.makeGauge(name: "chorus_wal_last_lsn", help: "Last log sequence number written.")
        walSize = registry.makeGauge(name: "chorus_wal_size_bytes", help: "Bytes of the log's segment files on disk.")
        walCommits = registry.makeCounter(name: "chorus_wal_commits_total", help: "Group commits written.")
        walRecords = registry.makeCounter(name: "chorus_wal_records_total", help: "Records appended to the log.")
        walStoredBytes = registry.makeCounter(name: "chorus_wal_stored_bytes_total", help: "Block bytes written to the log.")
        walFsyncs = registry.makeCounter(name: "chorus_wal_fsyncs_total", help: "fdatasync calls on the log.")
        walFsyncSeconds = registry.makeDurationHistogram(
            name: "chorus_wal_fsync_seconds",
            buckets: [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                      .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100)],
            help: "fdatasync latency of the write-ahead log.")
    }

    /// The Prometheus text exposition of every series.
    func render() -> String {
        guard let log else { return registry.emitToString() }
        let stats = log.stats
        let delta = lastStats.withLock { last -> WALStats in
            defer { last = stats }
            var d = stats
            d.commits -= last.commits; d.records -= last.records; d.storedBytes -= last.storedBytes
            d.syncs -= last.syncs
            return d
        }
        openConnections.set(to: Double(connections.withLock { $0 }()))
        openSessions.set(to: Double(sessions.withLock { $0 }()))
        let held = conversations.withLock { $0 }()
        conversationsHeld.set(to: Double(held.all))
        conversationsLive.set(to: Double(held.live))
        if let f = fanout.withLock({ $0 })?() {
            fanoutQueued.set(to: Double(f.queued))
            fanoutDropped.set(to: Double(f.dropped))
            fanoutGaps.set(to: Double(f.gaps))
        }
        walHealthy.set(to: log.isHealthy ? 1.0 : 0.0)
        walLastLSN.set(to: Double(log.lastLSN))
        walSize.set(to: Double(log.diskBytes))
        walCommits.increment(by: Int64(delta.commits))
        walRecords.increment(by: Int64(delta.records))
        walStoredBytes.increment(by: Int64(delta.storedBytes))
        walFsyncs.increment(by: Int64(delta.syncs))
        return registry.emitToString()
    }
}
