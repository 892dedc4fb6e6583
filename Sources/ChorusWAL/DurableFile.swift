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

    /// Creates a directory (0700) if missing.
    public static func createDirectory(_ path: String) throws { try Directory.create(path) }

    /// Makes an existing directory private to its owner (0700) when group or others may read, write
    /// or enter it; answers the mode it had, or nil when it was private already or does not exist.
    public static func makePrivate(_ path: String) throws -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let mode = st.st_mode & 0o7777
        guard mode & 0o077 != 0 else { return nil }
        guard chmod(path, mode & 0o700 | 0o700) == 0 else { throw WALError.io(operation: "chmod", path: path, errno: errno) }
        return mode
    }

    static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
