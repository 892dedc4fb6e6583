import ChorusCore
import ChorusWAL
import Foundation
import Testing

/// A small tmpfs the test mounts itself (root only); nil where mounting is not permitted.
struct Tmpfs {
    let path: String

    static let canMount: Bool = {
        guard getuid() == 0, let probe = Tmpfs(options: "size=64k") else { return false }
        probe.unmount()
        return true
    }()

    init?(options: String) {
        path = NSTemporaryDirectory() + "chorus-tmpfs-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard run("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", path]) == 0 else {
            try? FileManager.default.removeItem(atPath: path)
            return nil
        }
    }

    func unmount() {
        _ = run("/bin/umount", [path])
        try? FileManager.default.removeItem(atPath: path)
    }
}

@discardableResult
func run(_ tool: String, _ args: [String]) -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = args
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return -1 }
    p.waitUntilExit()
    return p.terminationStatus
}

/// Real failing storage: a file-size limit, a full disk, a directory the process may not write.
@Suite(.serialized) struct WALFailurePathTests {
    @Test func fileSizeLimitGivesAClearErrorNotACrash() throws {
        let dir = ScratchDir("fsize")
        defer { dir.cleanup() }
        let child = try Child(tool: [
            "wal", "torture", dir.path, "--records", "10", "--segment-bytes", "\(64 << 10)",
            "--block-target-bytes", "\(8 << 10)", "--file-size-limit", "\(16 << 10)",
        ])
        while child.readLine() != nil {}
        let (status, stderr) = child.wait()
        #expect(status == 3, "exits with an error status, not a signal")
        #expect(stderr.contains("preallocate") && stderr.contains("File too large"), "\(stderr)")
    }

    @Test func unwritableDirectoryGivesAClearError() throws {
        let dir = ScratchDir("readonly")
        defer { dir.cleanup() }
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: dir.path)
        // Root ignores permissions, so drop to nobody for the child when running as root.
        let prefix = getuid() == 0 ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : []
        let child = try Child(tool: ["wal", "torture", dir.path + "/wal", "--records", "10"], prefix: prefix)
        while child.readLine() != nil {}
        let (status, stderr) = child.wait()
        #expect(status == 3, "\(stderr)")
        #expect(stderr.contains("Permission denied"), "\(stderr)")
    }

    @Test(.enabled(if: Tmpfs.canMount, "needs root to mount a tmpfs"))
    func readOnlyFilesystemGivesAClearError() throws {
        let fs = try #require(Tmpfs(options: "ro,size=1m"))
        defer { fs.unmount() }
        let child = try Child(tool: ["wal", "torture", fs.path, "--records", "10"])
        while child.readLine() != nil {}
        let (status, stderr) = child.wait()
        #expect(status == 3 && stderr.contains("Read-only file system"), "\(stderr)")
    }

    @Test(.enabled(if: Tmpfs.canMount, "needs root to mount a tmpfs"))
    func fullDiskStopsAcksLoudlyAndKeepsWhatWasAcked() throws {
        let fs = try #require(Tmpfs(options: "size=300k"))
        defer { fs.unmount() }
        let child = try Child(tool: [
            "wal", "torture", fs.path, "--appenders", "4", "--record-bytes", "300",
            "--segment-bytes", "\(64 << 10)", "--block-target-bytes", "\(8 << 10)",
        ])
        var acked: [UInt64] = []
        while let line = child.readLine() {
            let parts = line.split(separator: " ")
            if parts.count == 4, let lsn = UInt64(parts[1]) { acked.append(lsn) }
        }
        let (status, stderr) = child.wait()
        #expect(status == 3, "the appender exits with an error once the log stops")
        #expect(stderr.contains("No space left on device"), "\(stderr)")
        #expect(acked.count > 100)
        var replayed: Set<UInt64> = []
        let (log, _) = try WriteAheadLog.open(directory: fs.path) { r in
            if TorturePayload.check(r.payload) != nil { replayed.insert(r.lsn) }
        }
        try? log.close()
        #expect(Set(acked).isSubset(of: replayed), "every acknowledged record survived the full disk")
    }

    @Test func verifyExitsOneOnDamageWithTheLocation() async throws {
        let dir = ScratchDir("verify")
        defer { dir.cleanup() }
        let writer = try Child(tool: ["wal", "torture", dir.path, "--records", "400", "--segment-bytes", "\(64 << 10)",
                                "--block-target-bytes", "\(4 << 10)"])
        while writer.readLine() != nil {}
        #expect(writer.wait().status == 0)

        let clean = try Child(["wal", "verify", dir.path])
        var cleanOut: [String] = []
        while let l = clean.readLine() { cleanOut.append(l) }
        #expect(clean.wait().status == 0)
        #expect(cleanOut.last == "clean")

        let inspect = try Child(["wal", "inspect", dir.path])
        var inspectOut = ""
        while let l = inspect.readLine() { inspectOut += l + "\n" }
        #expect(inspect.wait().status == 0)
        #expect(inspectOut.contains("records: 400") && inspectOut.contains("LSN range: 1...400"))
        #expect(inspectOut.contains("compression ratio: "))

        let first = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".wal") }.sorted()[0]
        let url = URL(fileURLWithPath: dir.path + "/" + first)
        var bytes = try [UInt8](Data(contentsOf: url))
        bytes[100] ^= 0x80
        try Data(bytes).write(to: url)
        let damaged = try Child(["wal", "verify", dir.path])
        var out: [String] = []
        while let l = damaged.readLine() { out.append(l) }
        #expect(damaged.wait().status == 1)
        #expect(out.last?.hasPrefix("DAMAGED: \(first) at offset 32") == true, "\(out)")
    }
}
