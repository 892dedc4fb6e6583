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
