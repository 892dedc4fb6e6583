import Glibc

/// Small files replaced atomically and durably: written to `<path>.tmp`, fsynced, renamed over
/// `path`, and the directory fsynced. A crash leaves the old file or the new one, never a mix.
public enum DurableFile {
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let temporary = path + ".tmp"
        do {
            let file = try PosixFile(path: temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try bytes.withUnsafeBytes { (b) in try file.write(b, at: 0) }
            try file.sync()
        }
        try Directory.rename(temporary, path)
        try Directory.syncDirectory(directoryOf(path))
    }

    /// The file's bytes, or nil when it does not exist.
    public static func read(_ path: String) throws -> [UInt8]? {
        guard Directory.exists(path) else { return nil }
        return try PosixFile(path: path, flags: O_RDONLY).readAll()
    }

    /// Removes the file (if present) durably.
    public static func remove(_ path: String) throws {
        guard Directory.exists(path) else { return }
        try Directory.remove(path)
        try Directory.syncDirectory(directoryOf(path))
    }

    /// Creates a directory if missing.
    public static func createDirectory(_ path: String) throws { try Directory.create(path) }

    static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
