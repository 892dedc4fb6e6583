import Glibc

/// State as of an LSN: everything up to and including `lsn` is folded into `payload`.
public struct WALSnapshot: Sendable, Equatable {
    public var lsn: UInt64
    public var payload: [UInt8]
    public var file: String
}

/// Snapshot files beside the segments: `snapshot-<lsn>.snap`, a 40-byte header
/// (magic, version, flags, LSN, raw and stored lengths, CRC32C) and an LZ4 or raw payload.
/// Written to a temporary name, fsynced, renamed, and the directory fsynced.
public struct SnapshotStore: Sendable {
    /// Hard bound on a snapshot's uncompressed size, checked before allocating on load.
    public static let maxSnapshotBytes = 1 << 31

    public let directory: String

    public init(directory: String) { self.directory = directory }

    public static func fileName(lsn: UInt64) -> String {
        "snapshot-" + WALFormat.segmentName(firstLSN: lsn).dropLast(4) + ".snap"
    }

    static func parseFileName(_ name: String) -> UInt64? {
        guard name.hasPrefix("snapshot-"), name.hasSuffix(".snap") else { return nil }
        return WALFormat.parseSegmentName(String(name.dropFirst(9).dropLast(5)) + ".wal")
    }

    /// Encodes a snapshot file's bytes. Pure.
    public static func encode(lsn: UInt64, payload: [UInt8]) -> [UInt8] {
        var stored = [UInt8](repeating: 0, count: max(LZ4.compressBound(payload.count), 0))
        let compressed = payload.withUnsafeBytes { src in stored.withUnsafeMutableBytes { LZ4.compress(src, into: $0) } }
        let useLZ4 = compressed.map { $0 < payload.count } ?? false
        if useLZ4 { stored.removeLast(stored.count - compressed!) } else { stored = payload }
        var out: [UInt8] = []
        out.reserveCapacity(WALFormat.snapshotHeaderSize + stored.count)
        out.appendLE(WALFormat.snapshotMagic)
        out.append(WALFormat.version)
        out.append(useLZ4 ? WALFormat.flagLZ4 : 0)
        out.appendLE(UInt16(0))
        out.appendLE(lsn)
        out.appendLE(UInt64(payload.count))
        out.appendLE(UInt64(stored.count))
        let crc = CRC32C.checksum(stored, continuing: CRC32C.checksum(out))
        out.appendLE(crc)
        out.appendLE(UInt32(0))
        out.append(contentsOf: stored)
        return out
    }

    /// Decodes and verifies a snapshot file's bytes. Pure; corrupt bytes never reach LZ4.
    public static func decode(_ bytes: [UInt8], file: String) throws -> WALSnapshot {
        func bad(_ why: String) -> WALError { .badSnapshot(file: file, reason: why) }
        let h = WALFormat.snapshotHeaderSize
        guard bytes.count >= h else { throw bad("shorter than its header") }
        return try bytes.withUnsafeBytes { (buf) -> WALSnapshot in
            guard buf.le(0, as: UInt32.self) == WALFormat.snapshotMagic else { throw bad("bad magic") }
            guard buf[4] == WALFormat.version else { throw bad("unsupported version \(buf[4])") }
            let flags = buf[5]
            guard flags & ~WALFormat.flagLZ4 == 0, buf.le(6, as: UInt16.self) == 0, buf.le(36, as: UInt32.self) == 0
            else { throw bad("bad flags") }
            let lsn = buf.le(8, as: UInt64.self)
            let raw = buf.le(16, as: UInt64.self)
            let stored = buf.le(24, as: UInt64.self)
            guard raw <= UInt64(maxSnapshotBytes) else { throw bad("raw length \(raw) over bound") }
            guard stored == UInt64(bytes.count - h) else { throw bad("stored length \(stored) but \(bytes.count - h) bytes follow") }
            let body = UnsafeRawBufferPointer(rebasing: buf[h...])
            let crc = CRC32C.checksum(body, continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buf[0..<32])))
            guard crc == buf.le(32, as: UInt32.self) else { throw bad("CRC32C mismatch") }
            if flags & WALFormat.flagLZ4 == 0 {
                guard raw == stored else { throw bad("raw snapshot with two lengths") }
                return WALSnapshot(lsn: lsn, payload: [UInt8](body), file: file)
            }
            var payload = [UInt8](repeating: 0, count: Int(raw))
            guard payload.withUnsafeMutableBytes({ LZ4.decompress(body, into: $0) }) else {
                throw bad("LZ4 payload does not decompress to \(raw) bytes")
            }
            return WALSnapshot(lsn: lsn, payload: payload, file: file)
        }
    }

    /// Writes a snapshot durably: temporary file, fsync, rename, directory fsync.
    public func write(lsn: UInt64, payload: [UInt8]) throws {
        try DurableFile.write(Self.encode(lsn: lsn, payload: payload), to: directory + "/" + Self.fileName(lsn: lsn))
    }

    /// LSNs of the snapshot files present, newest first.
    public func list() throws -> [UInt64] {
        try Directory.list(directory).compactMap(Self.parseFileName).sorted(by: >)
    }

    /// The newest snapshot that validates, and the names of newer ones that did not.
    public func loadNewest() throws -> (WALSnapshot?, skipped: [String]) {
        var skipped: [String] = []
        for lsn in try list() {
            let name = Self.fileName(lsn: lsn)
            let bytes = try PosixFile(path: directory + "/" + name, flags: O_RDONLY).readAll()
            do {
                let snapshot = try Self.decode(bytes, file: name)
                guard snapshot.lsn == lsn else { throw WALError.badSnapshot(file: name, reason: "header LSN \(snapshot.lsn)") }
                return (snapshot, skipped)
            } catch {
                skipped.append(name)
            }
        }
        return (nil, skipped)
    }

    /// Deletes all but the newest `keep` + 1 snapshots.
    public func prune(keepingOlder keep: Int) throws {
        let all = try list()
        guard all.count > keep + 1 else { return }
        for lsn in all[(keep + 1)...] { try Directory.remove(directory + "/" + Self.fileName(lsn: lsn)) }
        try Directory.syncDirectory(directory)
    }
}

/// Thrown by a `restoreSnapshot` callback that cannot use a snapshot (for instance an older format):
/// the log then replays from its first record, which it can only do while it still holds LSN 1.
public struct SnapshotDeclined: Error, Sendable {
    public let reason: String
    public init(reason: String) { self.reason = reason }
}
