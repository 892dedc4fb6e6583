import Foundation

/// The built executables, found beside the test bundle (or at $CHORUS_BIN and $CHORUS_TOOLS_BIN).
enum ChorusBinary {
    static let path = find("chorus", variable: "CHORUS_BIN")
    /// `chorus-tools` (crash-test writers and benchmarks).
    static let tools = find("chorus-tools", variable: "CHORUS_TOOLS_BIN")

    static func find(_ name: String, variable: String) -> String {
        if let env = ProcessInfo.processInfo.environment[variable] { return env }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test binary lives in .build/<triple>/debug/ or inside an .xctest bundle there.
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        fatalError("\(name) not found near \(exe); run `swift build` first or set \(variable)")
    }
}

/// A child process whose stdout is read line by line and whose stderr is collected.
final class Child {
    let process = Process()
    private let out = Pipe()
    private let err = Pipe()
    /// When set, stderr goes to this file instead of a pipe (for long-running servers that log).
    private let stderrPath: String?
    private var buffer: [UInt8] = []
    private var eof = false

    init(
        _ arguments: [String], executable: String = ChorusBinary.path, prefix: [String] = [], stderrPath: String? = nil,
        environment: [String: String] = [:]
    ) throws {
        self.stderrPath = stderrPath
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if prefix.isEmpty {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: prefix[0])
            process.arguments = Array(prefix.dropFirst()) + [executable] + arguments
        }
        process.standardOutput = out
        if let stderrPath {
            FileManager.default.createFile(atPath: stderrPath, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: stderrPath)
        } else {
            process.standardError = err
        }
        try process.run()
        // Keep only the read ends here, so EOF arrives when the child dies.
        try out.fileHandleForWriting.close()
        try err.fileHandleForWriting.close()
    }

    /// A `chorus-tools` child.
    convenience init(tool arguments: [String], prefix: [String] = []) throws {
        try self.init(arguments, executable: ChorusBinary.tools, prefix: prefix)
    }

    var pid: Int32 { process.processIdentifier }

    /// The next stdout line, or nil at EOF. Blocks until a line or EOF arrives.
    func readLine() -> String? {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            if eof { return nil }
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { eof = true } else { buffer.append(contentsOf: chunk) }
        }
    }

    func kill(_ signal: Int32 = SIGKILL) { Foundation.kill(pid, signal) }

    /// Waits for exit; returns the status and everything written to stderr.
    func wait() -> (status: Int32, stderr: String) {
        if let stderrPath {
            process.waitUntilExit()
            return (process.terminationStatus, (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")
        }
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, errText)
    }
}

/// A fresh directory, removed by `cleanup()`.
struct ScratchDir {
    let path: String

    init(_ label: String) {
        path = NSTemporaryDirectory() + "chorus-\(label)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}
