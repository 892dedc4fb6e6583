import ArgumentParser
import ChorusCLI
import ChorusCore
import ChorusEngine
import ChorusLoad
import ChorusWAL
import Foundation
import Logging
import Synchronization

/// `chorus-tools simulate-users`: the engine's memory per connected user, without sockets. Builds N users
/// as replay leaves them (account, password hash, a live token, last login), gives each an inbox with
/// one listening session and presence, pairs them in direct conversations through the real engine and
/// the real log (fsync off), delivers two messages per pair live, then reports resident memory per user,
/// and again once every conversation has gone idle (caches and actors released).
struct SimulateUsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate-users", abstract: "Measure engine memory per simulated connected user.", shouldDisplay: false)

    @Option(help: "Simulated connected users (even).") var users = 1_000_000
    @Option(help: "An empty directory for the log.") var data: String

    /// What a WebSocket session is to the engine: an inbox listener. Counts what it is given.
    final class SimulatedSession: InboxListener, @unchecked Sendable {
        let sessionId: String
        var delivered = 0  // touched under the inbox's lock only
        init(sessionId: String) { self.sessionId = sessionId }
        func deliver(inboxSeq: UInt64, entry: InboxEntry, message: MessageRecord?) { delivered += 1 }
    }

    func run() async throws {
        guard users >= 2, users % 2 == 0 else { throw ValidationError("--users must be even") }
        let pid = getpid()
        let base = residentSetBytes(pid: pid) ?? 0
        var options = WALOptions()
        options.syncMode = .never
        let (log, _) = try WriteAheadLog.open(directory: data + "/wal", options: options, logger: Logger(label: "simulate")) { _ in
            throw ValidationError("simulate-users needs an empty directory")
        }
        let hash = try PasswordHasher(iterations: PasswordHasher.insecureFastIterations).hash("password1")
        var state = EngineState()
        var ids: [String] = []
        ids.reserveCapacity(users)
        let now = SystemWallClock().nowMs()
        for i in 0..<users {
            let id = Accounts.newID(prefix: "u")
            ids.append(id)
            // Each user's own hash string (salts differ), exactly its bytes, as registration and
            // replay leave it (`+` would leave the spare capacity of a grown string).
            let suffix = String(i, radix: 36).padding(toLength: 6, withPad: "0", startingAt: 0)
            let own = String(decoding: Array(hash.utf8.dropLast(6)) + Array(suffix.utf8), as: UTF8.self)
            state.accounts.apply(.userRegistered(UserRecord(
                userId: id, username: "user\(i)", email: "user\(i)@example.com", displayName: "User \(i)", passwordHash: own,
                createdAt: now)))
            state.accounts.apply(.tokenIssued(tokenHash: (0..<32).map { _ in UInt8.random(in: 0...255) }, userId: id, expiresAt: now + 86_400_000))
            state.accounts.apply(.loggedIn(userId: id, at: now))
        }
        let afterAccounts = residentSetBytes(pid: pid) ?? 0
        let inboxes = InboxDirectory()
        var presence = PresenceCore()
        var sessions: [SimulatedSession] = []
        sessions.reserveCapacity(users)
        for id in ids {
            let s = SimulatedSession(sessionId: Accounts.newID(prefix: "s"))
            _ = inboxes.inbox(id).attach(s)
            _ = presence.opened(id, now: now)
            sessions.append(s)
        }
        let afterSessions = residentSetBytes(pid: pid) ?? 0
        let clock = SystemWallClock()
        var config = Accounts.Configuration()
        config.hasher = PasswordHasher(iterations: PasswordHasher.insecureFastIterations)
        let accounts = Accounts(state: state.accounts, journal: log, clock: clock, configuration: config)
        let conversations = Conversations(state: state, accounts: accounts, journal: log, inboxes: inboxes, clock: clock, limits: ChatLimits())
        let pairs = users / 2
        let width = 64
        let userIds = ids
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<width {
                group.addTask {
                    for p in stride(from: lane, to: pairs, by: width) {
                        let a = userIds[2 * p], b = userIds[2 * p + 1]
                        let (core, _) = try await conversations.create(by: a, members: [b], title: nil)
                        let actor = try conversations.conversation(core.id)
                        _ = try await actor.send(from: a, clientMsgId: "hello", body: "hello, how are you?")
                        _ = try await actor.send(from: b, clientMsgId: "fine", body: "fine, thanks - and you?")
                    }
                }
            }
            try await group.waitForAll()
        }
        // The log at rest: a segment compaction still running holds a segment and its rewrite
        // (transient, per segment, not per user), so it finishes before memory is read.
        log.compactSealedSegments()
        let after = residentSetBytes(pid: pid) ?? 0
        // What the engine holds, without the freed memory glibc keeps (the server returns it after
        // each snapshot, Checkpointer): 64 lanes on two threads leave a varying amount behind.
        ProcessMemory.trimMalloc()
        let held = residentSetBytes(pid: pid) ?? 0
        // Then an hour of silence: every conversation drops its caches and its actor (CacheSweeper).
        let sweep = await conversations.trimIdle(now: clock.nowMs() + 3_600_000, idleMs: 600_000)
        ProcessMemory.trimMalloc()
        let idle = residentSetBytes(pid: pid) ?? 0
        let delivered = sessions.reduce(0) { $0 + $1.delivered }
        try log.close()
        let report: [String: Any] = [
            "users": users, "conversations": pairs, "messages": pairs * 2, "liveDeliveries": delivered,
            "onlineUsers": ids.prefix(3).allSatisfy { presence.status($0, now: now).online } ? users : -1,
            "rssBeforeBytes": base, "rssAfterBytes": after, "bytesPerUser": (after - base) / users,
            "rssAfterTrimBytes": held, "bytesPerUserAfterTrim": (held - base) / users,
            "idleSweep": ["trimmed": sweep.trimmed, "released": sweep.released, "liveAfter": conversations.liveCount],
            "rssIdleBytes": idle, "bytesPerUserIdle": (idle - base) / users,
            "bytesPerUserByPart": [
                "accountsAndTokens": (afterAccounts - base) / users, "inboxSessionPresence": (afterSessions - afterAccounts) / users,
                "conversationsAndMessages": (after - afterSessions) / users,
            ],
        ]
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: json, as: UTF8.self))
        withExtendedLifetime((sessions, conversations, accounts, inboxes)) {}
    }
}
