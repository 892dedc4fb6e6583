import ArgumentParser
import ChorusWAL
import ChorusCLI
import Glibc
import Logging

extension WALToolsCommand {
    /// Crash-test child: concurrent appenders write self-checking records and print one line per
    /// acknowledged record (`ack LSN APPENDER SEQ`) the moment its append returns. A test kills it
    /// with SIGKILL and checks that every printed record survived.
    struct Torture: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Append self-checking records and print each acknowledged LSN (for crash tests).",
            shouldDisplay: false)

        @Argument var directory: String
        @Option var appenders = 8
        @Option var records = 0
        @Option var recordBytes = 200
        @Option var segmentBytes = 256 << 10
        @Option var blockTargetBytes = 16 << 10
        @Option(help: "Start appender ids here, so runs on one directory never repeat (appender, seq).")
        var appenderBase = 0
        @Option(help: "always, never or batch:MS") var sync = "always"
        @Option(help: "RLIMIT_FSIZE in bytes, to make writes fail (EFBIG)") var fileSizeLimit: Int?

        func run() async throws {
            if let limit = fileSizeLimit {
                signal(SIGXFSZ, SIG_IGN)
                var rl = rlimit(rlim_cur: rlim_t(limit), rlim_max: rlim_t(limit))
                setrlimit(Int32(RLIMIT_FSIZE.rawValue), &rl)
            }
            var options = WALOptions()
            options.segmentBytes = segmentBytes
            options.blockTargetBytes = blockTargetBytes
            options.maxRecordBytes = max(recordBytes, 16)
            options.syncMode = try SyncModeArgument.parse(sync)
            let log: WriteAheadLog
            do {
                (log, _) = try WriteAheadLog.open(
                    directory: directory, options: options, logger: Logger(label: "torture")) { _ in }
            } catch {
                Output.line("error open: \(error)", fd: 2)
                throw ExitCode(3)
            }
            let perAppender = records == 0 ? Int.max : max(1, records / appenders)
            let base = appenderBase
            let size = recordBytes
            let failed = await withTaskGroup(of: Bool.self) { group in
                for a in 0..<appenders {
                    group.addTask {
                        let appender = UInt32(base + a)
                        for seq in 0..<UInt64(perAppender) {
                            let payload = TorturePayload.make(appender: appender, seq: seq, size: size)
                            do {
                                let lsn = try await log.append(kind: TorturePayload.kind, payload: payload)
                                Output.line("ack \(lsn) \(appender) \(seq)")
                            } catch {
                                Output.line("error append: \(error)", fd: 2)
                                return true
                            }
                        }
                        return false
                    }
                }
                return await group.contains(true)
            }
            try? log.close()
            if failed { throw ExitCode(3) }
        }
    }
}
