import ArgumentParser
import ChorusCore
import ChorusEngine
import ChorusWAL
import Foundation
import Logging

extension WALToolsCommand {
    /// Writes a log of realistic engine events (accounts, direct conversations, messages) until it
    /// holds `--bytes` of blocks, so restart time can be measured on a big log. Not for production data.
    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate-chat",
            abstract: "Fill a data directory with chat events (for restart-time measurements).",
            shouldDisplay: false)

        @Argument(help: "A data directory (the log goes to its wal/).") var data: String
        @Option(help: "Stop once the log's blocks hold this many bytes.") var bytes = 1 << 30
        @Option var users = 10_000
        @Option(help: "The accounts' registration time, ms since the epoch (their inactivity period starts there).")
        var createdAt: Int64 = 1_795_000_000_000

        func run() async throws {
            var options = WALOptions()
            options.syncMode = .never
            let (log, _) = try WriteAheadLog.open(directory: data + "/wal", options: options, logger: Logger(label: "generate")) { _ in
                throw ValidationError("generate-chat needs an empty directory")
            }
            let hash = try PasswordHasher(iterations: PasswordHasher.insecureFastIterations).hash("password1")
            var batch: [(kind: UInt16, payload: [UInt8])] = []
            func flush() async throws {
                guard !batch.isEmpty else { return }
                _ = try await log.append(batch: batch)
                batch.removeAll(keepingCapacity: true)
            }
            func add(_ e: ChorusEvent) async throws {
                batch.append((e.kind, e.encode()))
                if batch.count == 200 { try await flush() }
            }
            let now = createdAt
            for u in 0..<users {
                try await add(.userRegistered(UserRecord(
                    userId: "u_\(u)", username: "user\(u)", email: "user\(u)@example.com", displayName: "User \(u)",
                    passwordHash: hash, createdAt: now)))
            }
            let pairs = users / 2
            for p in 0..<pairs {
                try await add(.conversationCreated(
                    conversationId: "c_\(p)", kind: .direct, title: "", members: ["u_\(2 * p)", "u_\(2 * p + 1)"], createdAt: now))
            }
            try await flush()
            var seqs = [UInt64](repeating: 0, count: pairs)
            var n = 0
            var rng = SystemRandomNumberGenerator()
            let words = ["see", "you", "at", "the", "meeting", "tomorrow", "lunch", "ok", "thanks", "sounds", "good", "on", "my", "way",
                         "running", "late", "did", "ship", "build", "review", "please", "haha", "coffee", "later", "call", "me"]
            while log.stats.storedBytes < bytes {
                let p = Int(rng.next(upperBound: UInt32(pairs)))
                seqs[p] += 1
                let body = (0..<(3 + Int(rng.next(upperBound: UInt32(25))))).map { _ in words[Int(rng.next(upperBound: UInt32(words.count)))] }
                    .joined(separator: " ")
                let from = "u_\(2 * p + Int(rng.next(upperBound: UInt32(2))))"
                try await add(.messageAppended(MessageRecord(
                    conversationId: "c_\(p)", seq: seqs[p], from: from, body: body,
                    ts: now + Int64(n), clientMsgId: UUID().uuidString)))
                n += 1
            }
            try await flush()
            try log.close()
            print("wrote \(users) users, \(pairs) conversations, \(n) messages; \(log.stats.storedBytes) bytes of blocks, \(log.lastLSN) records")
        }
    }
}
