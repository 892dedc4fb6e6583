import ArgumentParser
import ChorusCluster
import ChorusEngine
import ChorusCore
import ChorusReplication
import ChorusWAL
import Logging

/// The membership a node starts with.
struct StartingMembership {
    var current: ClusterMembership
    /// A change prepared before a restart, prepared again at start.
    var pending: ClusterMembership?
    var joining: Bool
    let store: MembershipStore
}

/// What recovery hands to the engine: the open log and the state replayed from it.
struct Recovered {
    let log: WriteAheadLog
    /// What the engine appends through: the log itself, or with replication a `ReplicatedJournal`
    /// over it.
    var journal: any Journal
    /// With replication: every partition's copy as the log left it.
    var partitions: PartitionReplay?
    let report: RecoveryReport
    var state: NodeState
    let inboxes: InboxDirectory
    let sharesInbox: @Sendable (String, String) -> Bool
}

extension Node {
    /// From a committed change (the membership file), else the flags (this node and its peers; a
    /// ring of one without --peer).
    func loadMembership(logger: Logger) throws -> StartingMembership {
        let store = MembershipStore(dataDirectory: settings.dataDirectory)
        var m = StartingMembership(current: settings.flagMembership, pending: nil, joining: settings.join, store: store)
        guard settings.mesh != nil else { return m }
        do {
            let (saved, pending) = try store.load()
            if let saved {
                if saved.members.keys.sorted() != m.current.members.keys.sorted() {
                    logger.warning("the membership file overrides --peer", metadata: ["epoch": "\(saved.epoch)", "members": "\(saved.ids)"])
                }
                m.current = saved
                m.joining = false
            }
            m.pending = pending
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        return m
    }

    /// The newest engine snapshot, then the log after it, before anything is served. With
    /// replication (`followed`), the log holds only replication records: each partition's copy is
    /// rebuilt and its committed events staged in `followed` (nothing is led before etcd says so).
    func recover(placement: PlacementCell, followed: FollowedPartitions? = nil, metrics: NodeMetrics, logger: Logger) throws -> Recovered {
        // Everything under --data is the node's alone (PROTOCOL.md section 6, data at rest).
        do {
            if let was = try DurableFile.makePrivate(settings.dataDirectory) {
                logger.warning("the data directory was open to others; made private (0700)", metadata: [
                    "path": "\(settings.dataDirectory)", "mode": "\(String(was, radix: 8))",
                ])
            }
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        let sharesInbox: @Sendable (String, String) -> Bool = { placement.sharesInbox(user: $0, with: $1) }
        let started = ContinuousClock.now
        var walOptions = WALOptions()
        walOptions.syncMode = settings.syncMode
        if let bytes = settings.walSegmentBytes { walOptions.segmentBytes = bytes }
        walOptions.minCommitIntervalMicroseconds = settings.commitIntervalUs ?? ServeSettings.defaultCommitIntervalUs(settings.syncMode)
        walOptions.onSync = { [histogram = metrics.walFsyncSeconds] in
            histogram.recordNanoseconds(Int64($0.components.seconds) * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000)
        }
        var state = NodeState()
        state.engine.sharesInbox = sharesInbox
        var inboxes = followed?.inboxes ?? InboxDirectory()
        var partitions = PartitionReplay()
        var replayError: Error?
        let (log, report): (WriteAheadLog, RecoveryReport)
        do {
            (log, report) = try WriteAheadLog.open(
                directory: settings.dataDirectory + "/wal", options: walOptions, logger: logger,
                restoreSnapshot: { snapshot in
                    // A replicated node writes no engine snapshots: one here is another node's data.
                    if followed != nil { throw ReplicatedLogError.engineSnapshot }
                    (state, inboxes) = try restoreNode(snapshot)
                    state.engine.sharesInbox = sharesInbox
                }
            ) { record in
                do {
                    if let followed {
                        try Self.replayReplicated(record, into: &partitions, followed: followed)
                    } else {
                        try state.apply(kind: record.kind, payload: record.payload, lsn: record.lsn, inboxes: inboxes)
                    }
                } catch {
                    replayError = replayError ?? error
                    throw error
                }
            }
        } catch {
            logger.critical("cannot start: \(replayError.map { "record does not decode: \($0)" } ?? "\(error)")")
            throw ExitCode(1)
        }
        // Copies of conversations handed to other nodes by a membership change stay in the log;
        // only what this node owns now is served.
        if !placement.isSingleNode { state.engine.retainConversations(where: { placement.isLocal(conversation: $0) }) }
        logger.info("recovered", metadata: [
            "snapshotLSN": "\(report.snapshotLSN)", "records": "\(report.recordsReplayed)", "lastLSN": "\(report.lastLSN)",
            "users": "\(state.engine.accounts.userCount)", "conversations": "\(state.engine.conversations.count)", "elapsed": "\(ContinuousClock.now - started)",
        ])
        metrics.attach(log)
        return Recovered(
            log: log, journal: log, partitions: followed == nil ? nil : partitions, report: report, state: state, inboxes: inboxes,
            sharesInbox: sharesInbox)
    }

    /// One record of a replicated node's log: its partition's copy moves, committed events are staged.
    static func replayReplicated(_ record: JournalRecord, into partitions: inout PartitionReplay, followed: FollowedPartitions) throws {
        guard ReplicationRecord.owns(kind: record.kind) else { throw ReplicatedLogError.unreplicatedRecord(lsn: record.lsn, kind: record.kind) }
        let decoded = try ReplicationRecord.decode(kind: record.kind, payload: record.payload)
        for action in try partitions.replay(decoded, lsn: record.lsn) {
            switch action {
            case .apply(let kind, let payload, let lsn): followed.apply(kind: kind, payload: payload, lsn: lsn)
            case .reset(let p): throw ReplicatedLogError.snapshotOfPartition(p)
            }
        }
    }
}

/// Decodes a node snapshot; one of a format this build does not read is declined (the log is
/// replayed instead).
func restoreNode(_ snapshot: WALSnapshot) throws -> (NodeState, InboxDirectory) {
    let result: Result<(NodeState, InboxDirectory), EngineSnapshotError> = Result { () throws(EngineSnapshotError) in
        try NodeSnapshot.decode(snapshot.payload)
    }
    switch result {
    case .success(let restored): return restored
    case .failure(.unsupportedVersion(let v)):
        throw SnapshotDeclined(reason: "snapshot format \(v), this build reads 4 to \(NodeSnapshot.version)")
    case .failure(let e): throw e
    }
}

/// Why a replicated node's log cannot be recovered.
enum ReplicatedLogError: Error, CustomStringConvertible {
    case unreplicatedRecord(lsn: UInt64, kind: UInt16)
    case engineSnapshot
    case snapshotOfPartition(PartitionId)

    var description: String {
        switch self {
        case .unreplicatedRecord(let lsn, let kind):
            "record \(lsn) (kind \(kind)) was written without --etcd: a replicated node starts on an empty data directory or its own replicated log"
        case .engineSnapshot: "the log has an engine snapshot, which only a node without --etcd writes"
        case .snapshotOfPartition(let p): "the log holds a snapshot of \(p), which this build does not restore"
        }
    }
}
