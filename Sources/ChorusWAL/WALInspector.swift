import Glibc

/// A read-only look at a log directory: what `chorus wal inspect` and `verify` print. Changes nothing.
public struct WALInspection: Sendable {
    public struct Segment: Sendable {
        public var file: String
        public var firstLSN: UInt64
        public var headerError: String?
        /// Rewritten by compaction with the cold compression level.
        public var compacted = false
        public var blocks = 0
        public var records = 0
        public var compressedBlocks = 0
        public var rawBytes = 0
        public var storedBytes = 0
        /// Bytes in valid blocks, headers and padding included.
        public var usedBytes = 0
        public var fileBytes = 0
        public var end: ScanEnd?
    }

    public struct Snapshot: Sendable {
        public var file: String
        public var lsn: UInt64
        public var error: String?
    }

    public var directory: String
    public var segments: [Segment] = []
    public var snapshots: [Snapshot] = []
    public var temporaryFiles: [String] = []
    public var decision: RecoveryDecision

    /// True when recovery would refuse to start.
    public var isDamaged: Bool {
        if case .damaged = decision { return true }
        return false
    }

    public var recordCount: Int { segments.reduce(0) { $0 + $1.records } }
    public var blockCount: Int { segments.reduce(0) { $0 + $1.blocks } }
    /// Raw bytes over stored bytes, over all valid blocks.
    public var compressionRatio: Double {
        let stored = segments.reduce(0) { $0 + $1.storedBytes }
        return stored == 0 ? 1 : Double(segments.reduce(0) { $0 + $1.rawBytes }) / Double(stored)
    }

    /// Scans `directory` without writing to it.
    public static func inspect(directory: String) throws -> WALInspection {
        let names = try Directory.list(directory)
        let inputs: [SegmentInput]
        do { inputs = try WriteAheadLog.scanSegments(directory: directory, names: names) } catch let e as WALError {
            throw e
        } catch {
            throw WALError.io(operation: "scan", path: directory, errno: EIO)
        }
        var result = WALInspection(directory: directory, decision: RecoveryPlanner.plan(inputs))
        result.temporaryFiles = names.filter { $0.hasSuffix(".tmp") }.sorted()
        for input in inputs {
            var seg = Segment(file: input.file, firstLSN: input.nameLSN)
            seg.compacted = input.compacted
            var st = stat()
            if stat(directory + "/" + input.file, &st) == 0 { seg.fileBytes = Int(st.st_size) }
            if case .failure(let e) = input.header { seg.headerError = e.description }
            if let scan = input.scan {
                seg.blocks = scan.blocks.count
                seg.records = scan.recordCount
                for b in scan.blocks {
                    seg.rawBytes += b.header.rawLength
                    seg.storedBytes += b.header.storedLength
                    seg.usedBytes += b.header.totalSize
                    if b.header.isCompressed { seg.compressedBlocks += 1 }
                }
                seg.end = scan.end
            }
            result.segments.append(seg)
        }
        let store = SnapshotStore(directory: directory)
        for lsn in try store.list() {
            let name = SnapshotStore.fileName(lsn: lsn)
            var snap = Snapshot(file: name, lsn: lsn)
            do {
                _ = try SnapshotStore.decode(PosixFile(path: directory + "/" + name, flags: O_RDONLY).readAll(), file: name)
            } catch {
                snap.error = "\(error)"
            }
            result.snapshots.append(snap)
        }
        return result
    }
}
