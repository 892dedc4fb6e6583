import ChorusCore
import Glibc
import Logging

/// What recovery found and did, for the operator's log line and for tests.
public struct RecoveryReport: Sendable, CustomStringConvertible {
    public var segments = 0
    public var blocks = 0
    /// Records passed to the replay callback (those after the snapshot).
    public var recordsReplayed = 0
    /// LSN of the snapshot loaded, 0 if none.
    public var snapshotLSN: UInt64 = 0
    public var firstLSN: UInt64 = 0
    public var lastLSN: UInt64 = 0
    public var tornTail: TornTail?
    /// Files deleted: leftover temporaries and empty segments after a torn tail.
    public var removedFiles: [String] = []
    /// Snapshots that failed validation and were passed over for an older one.
    public var skippedSnapshots: [String] = []

    public var description: String {
        var s = "\(segments) segments, \(blocks) blocks, LSN \(firstLSN)...\(lastLSN), snapshot at \(snapshotLSN), "
            + "\(recordsReplayed) records replayed"
        if let t = tornTail { s += "; torn tail cut: \(t)" }
        if !removedFiles.isEmpty { s += "; removed \(removedFiles.joined(separator: ", "))" }
        if !skippedSnapshots.isEmpty { s += "; skipped bad snapshots \(skippedSnapshots.joined(separator: ", "))" }
        return s
    }
}

extension WriteAheadLog {
    /// Opens (creating if needed) the log in `directory`: loads the newest valid snapshot, cuts a torn
    /// tail, refuses damage, replays every record after the snapshot in LSN order, then opens for appends.
    public static func open(
        directory: String,
        options: WALOptions = WALOptions(),
        logger: Logger = Logger(label: "chorus.wal"),
        restoreSnapshot: (WALSnapshot) throws -> Void = { _ in },
        replay: (JournalRecord) throws -> Void
    ) throws -> (WriteAheadLog, RecoveryReport) {
        try options.validate()
        try Directory.createAll(directory)
        // One log per directory: two writers would interleave blocks. Released on close, on a
        // sticky failure, and by the kernel when the process dies.
        let lock = try PosixFile(path: directory + "/LOCK", flags: O_RDWR | O_CREAT)
        // A lock held for a moment is waited for (up to 1 s): a child this process forks inherits
        // the lock's descriptor until it execs, so a log closed and reopened while another thread
        // spawns a process can find it briefly held. Another live process holds it for good.
        var attempts = 0
        while try !lock.tryLock() {
            attempts += 1
            guard attempts < 100 else { throw WALError.locked(directory: directory) }
            usleep(10_000)
        }
        var report = RecoveryReport()

        let names = try Directory.list(directory)
        for name in names where name.hasSuffix(".tmp") {
            try Directory.remove(directory + "/" + name)
            report.removedFiles.append(name)
        }
        if !report.removedFiles.isEmpty { try Directory.syncDirectory(directory) }

        let inputs = try scanSegments(directory: directory, names: names)
        let plan: RecoveryPlan
        switch RecoveryPlanner.plan(inputs) {
        case .damaged(let damage): throw WALError.damaged(damage)
        case .recover(let p): plan = p
        }
        try apply(plan, inputs: inputs, directory: directory, options: options, report: &report, logger: logger)

        let snapshots = SnapshotStore(directory: directory)
        var snapshotLSN: UInt64 = 0
        let (snapshot, skipped) = try snapshots.loadNewest()
        report.skippedSnapshots = skipped
        let kept = plan.keep.map { inputs[$0] }
        let logFirst = kept.first?.nameLSN ?? 1
        let logNext = plan.nextLSN ?? 1
        if let snapshot {
            guard snapshot.lsn + 1 >= logFirst, kept.isEmpty || snapshot.lsn < logNext else {
                throw WALError.damaged(DamageReport(
                    file: snapshot.file, offset: 0,
                    reason: "snapshot at LSN \(snapshot.lsn) does not meet the log (LSN \(logFirst)..<\(logNext))"))
            }
            do {
                try restoreSnapshot(snapshot)
                snapshotLSN = snapshot.lsn
            } catch let declined as SnapshotDeclined {
                // The owner cannot read this snapshot (an older format, say). Without it every record
                // must still be in the log, or the state cannot be rebuilt: then refuse loudly.
                guard logFirst == 1 else {
                    throw WALError.damaged(DamageReport(
                        file: snapshot.file, offset: 0,
                        reason: "snapshot declined (\(declined.reason)) and the log starts at LSN \(logFirst), not 1"))
                }
                logger.warning("snapshot declined; replaying the whole log", metadata: ["file": "\(snapshot.file)", "reason": "\(declined.reason)"])
                report.skippedSnapshots.append(snapshot.file)
            }
        }
        report.snapshotLSN = snapshotLSN

        var index: [IndexEntry] = []
        var segments: [SegmentRef] = []
        for input in kept {
            let path = directory + "/" + input.file
            segments.append(SegmentRef(firstLSN: input.nameLSN, path: path, compacted: input.compacted))
            try replaySegment(
                path: path, scan: input.scan!, after: snapshotLSN, indexInterval: options.indexIntervalBytes,
                index: &index, report: &report, replay: replay)
        }
        let nextLSN = kept.isEmpty ? snapshotLSN + 1 : logNext
        report.segments = kept.count
        report.firstLSN = kept.isEmpty ? nextLSN : logFirst
        report.lastLSN = nextLSN - 1

        let writer = WriterContext()
        let state = State(
            nextLSN: nextLSN, writtenLSN: nextLSN - 1, durableLSN: nextLSN - 1, segments: segments, index: index,
            firstRetainedLSN: report.firstLSN)
        let log = WriteAheadLog(
            directory: directory, options: options, logger: logger, state: state, writer: writer, lock: lock)
        if let last = kept.last {
            writer.file = try PosixFile(path: directory + "/" + last.file, flags: O_RDWR)
            writer.segmentLSN = last.nameLSN
            writer.writeOffset = plan.truncation?.offset ?? last.scan!.validEnd
        } else {
            try log.writerQueue.sync { () in try log.roll(firstLSN: nextLSN) }
        }
        log.scheduleCompactionOfSealedSegments()
        logger.info("write-ahead log recovered", metadata: ["directory": "\(directory)", "report": "\(report)"])
        return (log, report)
    }

    /// Reads and scans every segment file, in LSN order. Read-only.
    static func scanSegments(directory: String, names: [String]) throws -> [SegmentInput] {
        let segments = names.compactMap { name in WALFormat.parseSegmentName(name).map { (name, $0) } }
            .sorted { $0.1 < $1.1 }
        return try segments.map { name, lsn in
            let bytes = try PosixFile(path: directory + "/" + name, flags: O_RDONLY).readAll()
            return bytes.withUnsafeBytes { buf in
                let header = SegmentScanner.decodeHeader(buf)
                let scan = header.map { SegmentScanner.scan(buf, firstLSN: $0) }
                let compacted = SegmentScanner.headerFlags(buf) & SegmentScanner.flagCompacted != 0
                return SegmentInput(file: name, nameLSN: lsn, header: header, scan: try? scan.get(), compacted: compacted)
            }
        }
    }

    /// Cuts a torn tail (truncate, re-preallocate, fsync) and deletes emptied trailing segments.
    static func apply(
        _ plan: RecoveryPlan, inputs: [SegmentInput], directory: String, options: WALOptions,
        report: inout RecoveryReport, logger: Logger
    ) throws {
        if let tail = plan.truncation {
            logger.warning("cutting torn tail of the write-ahead log", metadata: ["tail": "\(tail)"])
            let file = try PosixFile(path: directory + "/" + tail.file, flags: O_RDWR)
            let size = try file.size()
            try file.truncate(to: tail.offset)
            try file.preallocate(max(size, options.segmentBytes))
            try file.sync()
            report.tornTail = tail
        }
        for (index, _) in plan.remove {
            try Directory.remove(directory + "/" + inputs[index].file)
            report.removedFiles.append(inputs[index].file)
        }
        if !plan.remove.isEmpty { try Directory.syncDirectory(directory) }
    }

    /// Replays the records of one segment after `snapshotLSN` and builds its sparse index entries.
    static func replaySegment(
        path: String, scan: SegmentScan, after snapshotLSN: UInt64, indexInterval: Int,
        index: inout [IndexEntry], report: inout RecoveryReport, replay: (JournalRecord) throws -> Void
    ) throws {
        var sinceIndex = 0
        for (i, block) in scan.blocks.enumerated() {
            if i == 0 || sinceIndex >= indexInterval {
                index.append(IndexEntry(firstLSN: block.header.firstLSN, segmentLSN: scan.firstLSN, offset: block.offset))
                sinceIndex = 0
            }
            sinceIndex += block.header.totalSize
        }
        report.blocks += scan.blocks.count
        // Records here are firstLSN..<nextLSN; skip the file if all are in the snapshot.
        guard scan.nextLSN > snapshotLSN + 1 else { return }
        let bytes = try PosixFile(path: path, flags: O_RDONLY).readAll()
        var scratch: [UInt8] = []
        var replayed = 0
        try bytes.withUnsafeBytes { buf in
            for block in scan.blocks where block.header.nextLSN > snapshotLSN + 1 {
                let start = block.offset + WALFormat.blockHeaderSize
                let payload = UnsafeRawBufferPointer(rebasing: buf[start..<(start + block.header.storedLength)])
                try BlockCodec.decodeRecords(header: block.header, payload: payload, scratch: &scratch) { record in
                    guard record.lsn > snapshotLSN else { return }
                    replayed += 1
                    try replay(record)
                }
            }
        }
        report.recordsReplayed += replayed
    }
}

extension Directory {
    /// mkdir -p.
    static func createAll(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            try create(prefix)
        }
    }
}
