import ChorusCluster
import ChorusCore
import ChorusWAL

/// Where a node keeps its membership across restarts: `<data>/cluster/membership` (the current one,
/// once a change has committed) and `<data>/cluster/pending` (a change prepared, not yet committed
/// or aborted). Each is replaced atomically and fsynced (`DurableFile`).
struct MembershipStore: Sendable {
    let directory: String

    init(dataDirectory: String) { directory = dataDirectory + "/cluster" }

    var currentPath: String { directory + "/membership" }
    var pendingPath: String { directory + "/pending" }

    func load() throws -> (current: ClusterMembership?, pending: ClusterMembership?) {
        (try read(currentPath), try read(pendingPath))
    }

    func save(current m: ClusterMembership) throws {
        try DurableFile.createDirectory(directory)
        try DurableFile.write(m.bytes, to: currentPath)
    }

    func save(pending m: ClusterMembership) throws {
        try DurableFile.createDirectory(directory)
        try DurableFile.write(m.bytes, to: pendingPath)
    }

    func clearPending() throws { try DurableFile.remove(pendingPath) }

    private func read(_ path: String) throws -> ClusterMembership? {
        guard let bytes = try DurableFile.read(path) else { return nil }
        do {
            return try ClusterMembership(bytes: bytes)
        } catch {
            throw MembershipStoreError.damaged(path: path, reason: "\(error)")
        }
    }
}

enum MembershipStoreError: Error, CustomStringConvertible {
    case damaged(path: String, reason: String)

    var description: String {
        switch self {
        case .damaged(let path, let reason): "membership file \(path) does not decode (\(reason)); restore it or remove it to start from --peer"
        }
    }
}

/// The wire form of membership steps (`PeerKind.membership`) and hand-over batches (`PeerKind.handover`).
enum MembershipWire {
    enum Step: UInt8 {
        case prepare = 1, status = 2, commit = 3, abort = 4
    }

    static func step(_ step: Step, _ m: ClusterMembership) -> [UInt8] {
        var w = ByteWriter(capacity: 96)
        w.write(PeerKind.membership.rawValue)
        w.write(step.rawValue)
        m.write(to: &w)
        return w.bytes
    }

    static func handover(epoch: UInt64, _ events: [ChorusEvent]) -> [UInt8] {
        var w = ByteWriter(capacity: 4096)
        w.write(PeerKind.handover.rawValue)
        w.write(epoch)
        w.writeVarint(UInt64(events.count))
        for e in events {
            w.write(e.kind)
            w.writeLengthPrefixed(e.encode())
        }
        return w.bytes
    }

    /// A hand-over batch's epoch and events (after the kind byte).
    static func readHandover(_ r: inout ByteReader) throws -> (epoch: UInt64, events: [ChorusEvent]) {
        let epoch = try r.readUInt64()
        let count = try r.readVarint()
        guard count <= 1_000_000 else { throw ByteReaderError.lengthOverBound(length: count, bound: 1_000_000) }
        var events: [ChorusEvent] = []
        for _ in 0..<count {
            let kind = try r.readUInt16()
            events.append(try ChorusEvent.decode(kind: kind, payload: Array(try r.readLengthPrefixed(bound: 2 << 20))))
        }
        return (epoch, events)
    }
}
