import ArgumentParser
import ChorusCLI
import ChorusWAL

/// `chorus wal ...`: look at a write-ahead log directory.
struct WALCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal",
        abstract: "Inspect and verify a write-ahead log directory.",
        subcommands: [Inspect.self, Verify.self]
    )

    /// Accepts a `--data` directory (uses its `wal/`) or the log directory itself.
    static func logDirectory(_ path: String) -> String {
        let nested = path + "/wal"
        var isDir = false
        return fileExists(nested, isDirectory: &isDir) && isDir ? nested : path
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print segments, blocks, records, LSN range, compression ratio and any damage.")

        @Argument(help: "A data directory (its wal/ is used) or a log directory.")
        var directory: String

        func run() throws {
            let inspection = try WALInspection.inspect(directory: WALCommand.logDirectory(directory))
            print(InspectionText.render(inspection, verbose: true))
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Exit 0 if the log is clean (a torn tail is reported, not damage), 1 if damaged.")

        @Argument(help: "A data directory (its wal/ is used) or a log directory.")
        var directory: String

        func run() throws {
            let inspection = try WALInspection.inspect(directory: WALCommand.logDirectory(directory))
            print(InspectionText.render(inspection, verbose: false))
            if inspection.isDamaged { throw ExitCode(1) }
        }
    }
}
