import Benchmark
import ChorusCore
import ChorusTestKit
import ChorusWAL
import Glibc

func getenvString(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// A fresh, uniquely named directory under the bench dir.
func makeDir() -> String {
    var template = Array((benchDir + "/chorus-bench-XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "mkdtemp failed in \(benchDir)")
    return String(cString: template)
}

func removeTree(_ path: String) {
    guard let dir = opendir(path) else { return }
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
        if name != "." && name != ".." { unlink(path + "/" + name) }
    }
    closedir(dir)
    rmdir(path)
}

func openLog(_ options: WALOptions = WALOptions()) throws -> (WriteAheadLog, String) {
    let dir = makeDir()
    var options = options
    if let level = getenvString("CHORUS_BENCH_LZ4_LEVEL").flatMap(Int.init) { options.compressionLevel = level }
    let (log, _) = try WriteAheadLog.open(directory: dir, options: options) { _ in }
    return (log, dir)
}

/// Size of the block the log writes for these records (header and padding included).
func encodedBlockSize(_ records: [(kind: UInt16, payload: [UInt8])]) -> Int {
    var raw: [UInt8] = []
    for r in records { BlockCodec.appendRecord(kind: r.kind, payload: r.payload, to: &raw) }
    var block: [UInt8] = []
    BlockCodec.encodeBlock(
        firstLSN: 1, recordCount: records.count, raw: raw, into: &block,
        compressor: BlockCompressor(level: WALOptions().compressionLevel))
    return block.count
}

/// The baseline: a preallocated file, one pwrite and one fdatasync per commit.
final class RawFsyncFile {
    let path: String
    let fd: Int32
    var offset = 0
    let size = 64 << 20

    init(directory: String) throws {
        path = directory + "/chorus-bench-raw-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "open \(path)")
        precondition(posix_fallocate(fd, 0, off_t(size)) == 0, "fallocate")
        precondition(fsync(fd) == 0)
    }

    func commit(_ bytes: [UInt8]) throws {
        if offset + bytes.count > size { offset = 0 }
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        precondition(n == bytes.count, "pwrite")
        precondition(fdatasync(fd) == 0, "fdatasync")
        offset += bytes.count
    }

    func remove() {
        close(fd)
        unlink(path)
    }
}

/// Writes `records` chat records (never-sync, then one close fsync) for the replay benchmark.
func writeReplayLog(_ dir: String, records: Int) async throws {
    removeTree(dir)
    var options = WALOptions()
    options.syncMode = .never
    let (log, _) = try WriteAheadLog.open(directory: dir, options: options) { _ in }
    var gen = ChatRecordGenerator(seed: 5)
    var written = 0
    while written < records {
        let n = min(1000, records - written)
        _ = try await log.append(batch: (0..<n).map { _ in (kind: ChatRecordGenerator.kind, payload: gen.next(targetBytes: 200)) })
        written += n
    }
    try log.close()
}

extension ChatRecordGenerator {
    func nextPayload() -> [UInt8] {
        var copy = self
        return copy.next(targetBytes: 200)
    }
}

/// `appenders` tasks each appending `each` 200-byte chat records, one at a time. With `distinct`,
/// every record is a new message (for ratios); otherwise each appender repeats one (for speed).
func appendConcurrently(_ log: WriteAheadLog, appenders: Int, each: Int, distinct: Bool = false) async throws {
    var gen = ChatRecordGenerator(seed: 2)
    let payloads = (0..<appenders).map { _ in (0..<(distinct ? each : 1)).map { _ in gen.next(targetBytes: 200) } }
    try await withThrowingTaskGroup(of: Void.self) { group in
        for a in 0..<appenders {
            group.addTask {
                for i in 0..<each {
                    let payload = payloads[a][distinct ? i : 0]
                    _ = try await log.append(kind: ChatRecordGenerator.kind, payload: payload)
                }
            }
        }
        try await group.waitForAll()
    }
}
