import Glibc

/// A file descriptor with throwing, EINTR-safe wrappers. Every failure names the operation and path.
/// Closed when the last reference goes. pread/pwrite need no shared offset, so it is safe to share.
final class PosixFile: Sendable {
    let fd: Int32
    let path: String

    /// Files Chorus creates are private to its user (0600), and a create never follows a symlink
    /// planted where the file should be.
    init(path: String, flags: Int32, mode: mode_t = 0o600) throws {
        let fd = Glibc.open(path, flags | O_CLOEXEC | (flags & O_CREAT != 0 ? O_NOFOLLOW : 0), mode)
        guard fd >= 0 else { throw WALError.io(operation: "open", path: path, errno: errno) }
        self.fd = fd
        self.path = path
    }

    deinit { _ = Glibc.close(fd) }

    /// Size of the file in bytes.
    func size() throws -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw WALError.io(operation: "fstat", path: path, errno: errno) }
        return Int(st.st_size)
    }

    /// Writes all of `bytes` at `offset`.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw WALError.io(operation: "write", path: path, errno: errno)
            }
            if n == 0 { throw WALError.io(operation: "write", path: path, errno: EIO) }
            done += n
        }
    }

    /// Reads exactly `buffer.count` bytes at `offset`, or fewer at end of file; returns the count.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw WALError.io(operation: "read", path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Reads the whole file.
    func readAll() throws -> [UInt8] {
        let n = try size()
        var out = [UInt8](repeating: 0, count: n)
        let got = try out.withUnsafeMutableBytes { (b) -> Int in try read(into: b, at: 0) }
        if got < n { out.removeLast(n - got) }
        return out
    }

    /// fdatasync: the data and the metadata needed to read it back. Never retried on failure.
    func syncData() throws {
        guard fdatasync(fd) == 0 else { throw WALError.io(operation: "fdatasync", path: path, errno: errno) }
    }

    /// fsync: data and all metadata.
    func sync() throws {
        guard fsync(fd) == 0 else { throw WALError.io(operation: "fsync", path: path, errno: errno) }
    }

    /// Reserves `bytes` of disk for the file so later writes neither allocate nor change its size.
    func preallocate(_ bytes: Int) throws {
        let rc = posix_fallocate(fd, 0, off_t(bytes))
        guard rc == 0 else { throw WALError.io(operation: "preallocate", path: path, errno: rc) }
    }

    /// Sets the file size (used to cut a torn tail before re-preallocating).
    func truncate(to bytes: Int) throws {
        guard ftruncate(fd, off_t(bytes)) == 0 else { throw WALError.io(operation: "truncate", path: path, errno: errno) }
    }
}

/// Directory operations the log needs, each followed by the caller's directory fsync where it matters.
enum Directory {
    static func syncDirectory(_ path: String) throws {
        let dir = try PosixFile(path: path, flags: O_RDONLY | O_DIRECTORY)
        try dir.sync()
    }

    /// Directories Chorus creates are private to its user (0700).
    static func create(_ path: String) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw WALError.io(operation: "mkdir", path: path, errno: errno) }
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// Names of the entries of a directory (no "." or "..").
    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw WALError.io(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw WALError.io(operation: "rename", path: from, errno: errno) }
    }

    static func remove(_ path: String) throws {
        guard unlink(path) == 0 else { throw WALError.io(operation: "unlink", path: path, errno: errno) }
    }
}

extension PosixFile {
    /// Takes an exclusive advisory lock (flock) without waiting; false if another holder has it.
    func tryLock() throws -> Bool {
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
        if errno == EWOULDBLOCK { return false }
        throw WALError.io(operation: "flock", path: path, errno: errno)
    }
}
