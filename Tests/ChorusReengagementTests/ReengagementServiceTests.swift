import ChorusCore
import ChorusReengagement
import ChorusTestKit
import Logging
import Synchronization
import Testing

/// The timer actor and sender with a manual clock (`tick(now:)`), an in-memory log, users in a
/// table and a mailer that answers as scripted: ten days pass in microseconds.
@Suite struct ReengagementServiceTests {
    static let day: Int64 = 86_400_000
    static let t0: Int64 = 1_795_000_000_000

    final class Users: ReengagementDirectory {
        let table: Mutex<[ReengagementUser]>
        init(_ users: [ReengagementUser]) { table = Mutex(users) }
        func allUsers() async -> [ReengagementUser] { table.withLock { $0 } }
        func user(_ index: UInt32) async -> ReengagementUser? { table.withLock { $0.first { $0.index == index } } }
        func user(id: String) async -> ReengagementUser? { table.withLock { $0.first { $0.userId == id } } }
        func login(_ index: UInt32, at: Int64) { table.withLock { t in t[t.firstIndex { $0.index == index }!].lastLoginAt = at } }
    }

    /// Answers with `script` in turn (then `accepted`), recording every message it was given.
    final class ScriptedMailer: Mailer {
        let script: Mutex<[MailOutcome]>
        let received = Mutex<[EmailMessage]>([])
        init(_ script: [MailOutcome] = []) { self.script = Mutex(script) }
        func send(_ message: EmailMessage, to recipient: String) async -> MailOutcome {
            received.withLock { $0.append(message) }
            return script.withLock { $0.isEmpty ? .accepted : $0.removeFirst() }
        }
        var accepted: [EmailMessage] { received.withLock { $0 } }
    }

    static func users(_ n: Int) -> Users {
        Users((0..<n).map { i in ReengagementUser(index: UInt32(i), userId: "u_\(i)", name: "User \(i)", email: "user\(i)@example.com", lastLoginAt: t0) })
    }

    static func service(_ users: Users, _ mailer: any Mailer, journal: InMemoryJournal, perSecond: Int = 50, concurrency: Int = 4, outcomesPerAppend: Int = 64, now: Int64 = t0) -> ReengagementService {
        var outbox = Outbox()
        for r in journal.records { if let e = try? ChorusEvent.decode(kind: r.kind, payload: r.payload) { outbox.apply(e) } }
        var settings = ReengagementSettings(
            policy: ReengagementPolicy(inactivityMs: 10 * day), from: "Chorus <chorus@example.com>", publicURL: "http://chat.example", domain: "chat.example")
        settings.sendPerSecond = perSecond
        settings.concurrency = concurrency
        settings.outcomesPerAppend = outcomesPerAppend
        return ReengagementService(
            settings: settings, outbox: outbox, journal: journal, mailer: mailer, directory: users,
            tokens: UnsubscribeTokens(secret: Array(repeating: 7, count: 32)), nowMs: now, logger: Logger(label: "test"))
    }

    @Test func oneEmailPerUserAtTheDeadlineAndNoneAgainAfterARestart() async throws {
        let journal = InMemoryJournal(), users = Self.users(3), mailer = ScriptedMailer()
        let s = Self.service(users, mailer, journal: journal)
        await s.start()
        #expect(await s.tick(now: Self.t0 + 10 * Self.day - 1) == 0)
        #expect(await s.tick(now: Self.t0 + 10 * Self.day) == 3)
        #expect(Set(mailer.accepted.map(\.to)) == ["user0@example.com", "user1@example.com", "user2@example.com"])
        #expect(mailer.accepted.allSatisfy { $0.messageId.hasPrefix("<reengage.u_") && $0.messageId.hasSuffix("@chat.example>") })
        #expect(await s.tick(now: Self.t0 + 40 * Self.day) == 0, "one per period")

        // A restart: timers rebuilt from the log and the users; nothing is sent twice.
        let again = Self.service(users, mailer, journal: journal, now: Self.t0 + 41 * Self.day)
        await again.start()
        #expect(await again.tick(now: Self.t0 + 60 * Self.day) == 0)
        #expect(mailer.accepted.count == 3)
    }

    @Test func aLoginStartsANewPeriod() async throws {
        let journal = InMemoryJournal(), users = Self.users(1), mailer = ScriptedMailer()
        let s = Self.service(users, mailer, journal: journal)
        await s.start()
        users.login(0, at: Self.t0 + 3 * Self.day)  // before the deadline: the timer re-arms when it fires
        #expect(await s.tick(now: Self.t0 + 10 * Self.day) == 0)
        #expect(await s.tick(now: Self.t0 + 13 * Self.day) == 1)
        users.login(0, at: Self.t0 + 20 * Self.day)  // after the email: a new period, a new timer
        await s.loggedIn(0)
        #expect(await s.tick(now: Self.t0 + 30 * Self.day - 1) == 0)
        #expect(await s.tick(now: Self.t0 + 30 * Self.day) == 1)
        #expect(Set(mailer.accepted.map(\.messageId)).count == 2)
    }

    @Test func temporaryFailuresAreRetriedUntilOneDeliveryAndRefusalsSuppress() async throws {
        let journal = InMemoryJournal(), users = Self.users(2), mailer = ScriptedMailer([.retryLater("451 try later"), .retryLater("451 try later"), .refused("550 no such user")])
        let s = Self.service(users, mailer, journal: journal)
        await s.start()
        var now = Self.t0 + 10 * Self.day
        await s.tick(now: now)  // two attempts: 451 and 451
        for _ in 0..<40 {
            now += 10_000
            await s.tick(now: now)
        }
        let outbox = await s.outbox
        let statuses = outbox.emails.values.map(\.status)
        #expect(statuses.filter { if case .sent = $0 { true } else { false } }.count == 1, "delivered once after the 451s")
        #expect(statuses.filter { if case .failed = $0 { true } else { false } }.count == 1, "refused: failed, not retried")
        #expect(outbox.suppressed.count == 1 && outbox.pending.isEmpty)
        #expect(mailer.accepted.count == 4, "451, 451, 550, then the accepted retry")
    }

    @Test func unsubscribingStopsLaterEmailsAndForgedTokensAreRefused() async throws {
        let journal = InMemoryJournal(), users = Self.users(1), mailer = ScriptedMailer()
        let s = Self.service(users, mailer, journal: journal)
        await s.start()
        await s.tick(now: Self.t0 + 10 * Self.day)
        let link = try #require(mailer.accepted.first?.unsubscribeURL)
        let token = String(link.split(separator: "=", maxSplits: 1)[1])
        #expect(try await s.unsubscribe(token: token + "x", now: 1) == false)
        #expect(try await s.unsubscribe(token: "u_1." + token.split(separator: ".")[1], now: 1) == false, "another user's id")
        #expect(try await s.unsubscribe(token: token, now: Self.t0 + 11 * Self.day) == true)
        #expect(try await s.unsubscribe(token: token, now: Self.t0 + 11 * Self.day) == true, "idempotent")
        #expect(journal.records.filter { $0.kind == ChorusEvent.unsubscribed(userId: "", at: 0).kind }.count == 1)
        users.login(0, at: Self.t0 + 12 * Self.day)
        await s.loggedIn(0)
        #expect(await s.tick(now: Self.t0 + 100 * Self.day) == 0)
    }

    @Test func theSendRateIsBounded() async throws {
        let journal = InMemoryJournal(), users = Self.users(5), mailer = ScriptedMailer()
        let s = Self.service(users, mailer, journal: journal, perSecond: 2)
        await s.start()
        let due = Self.t0 + 10 * Self.day
        #expect(await s.tick(now: due) == 2)
        #expect(await s.tick(now: due + 1_000) == 2)
        #expect(await s.tick(now: due + 2_000) == 1)
    }

    /// Notes, at each send, how many emails the log already records as sent.
    final class LoggingWatcher: Mailer {
        let journal: InMemoryJournal
        let answer: MailOutcome
        let seen = Mutex<[Int]>([])
        init(_ journal: InMemoryJournal, answer: MailOutcome) { (self.journal, self.answer) = (journal, answer) }
        func send(_ message: EmailMessage, to recipient: String) async -> MailOutcome {
            let sent = journal.records.filter { $0.kind == ChorusEvent.emailSent(messageId: "", at: 0).kind }.count
            seen.withLock { $0.append(sent) }
            return answer
        }
    }

    @Test func sendsGoInRoundsLoggedBeforeTheNextAndADownServerGetsOneRoundATick() async throws {
        let round = 512, n = 1_200
        // Accepting: a round ends once all its outcomes are logged, so every round's first send
        // finds the rounds before it in the log, and no send finds more than was answered before it.
        let journal = InMemoryJournal(), accepting = LoggingWatcher(journal, answer: .accepted)
        let sender = Self.service(Self.users(n), accepting, journal: journal, perSecond: 10_000)
        await sender.start()
        #expect(await sender.tick(now: Self.t0 + 10 * Self.day) == n)
        let seen = accepting.seen.withLock { $0 }
        #expect(seen.count == n)
        for (k, logged) in seen.enumerated() {
            #expect(logged <= k, "send \(k)")
            if k % round == 0 { #expect(logged == k, "first send of a round: \(k)") }
        }

        // A mail server that is down: one round is tried, not every pending email.
        let downJournal = InMemoryJournal(), down = LoggingWatcher(downJournal, answer: .retryLater("connection refused"))
        let stalled = Self.service(Self.users(n), down, journal: downJournal, perSecond: 10_000)
        await stalled.start()
        #expect(await stalled.tick(now: Self.t0 + 10 * Self.day) == round)
        #expect(down.seen.withLock { $0.count } == round)
    }

    /// One email at a time; the k-th send waits until the log holds the outcomes of the whole
    /// appends' worth (`per`) answered before it.
    final class WaitsForTheRecordBefore: Mailer {
        let journal: InMemoryJournal
        let queued: Int, per: Int
        let sends = Mutex(0)
        let sawPredecessorLogged = Mutex(0)
        init(_ journal: InMemoryJournal, queued: Int, per: Int) { (self.journal, self.queued, self.per) = (journal, queued, per) }
        func send(_ message: EmailMessage, to recipient: String) async -> MailOutcome {
            let k = sends.withLock { n in defer { n += 1 }; return n }
            if await journal.waitForRecords(queued + k / per * per) { sawPredecessorLogged.withLock { $0 += 1 } }
            return k == 1 ? .refused("550 no such user") : .accepted
        }
    }

    /// Outcomes are logged every `outcomesPerAppend` answers, not at the end of the round: a crash
    /// after a mail server's 250 resends about that many, not a round. (Logging at the round's end
    /// instead would leave the third send waiting: the time limit.)
    @Test(.timeLimit(.minutes(1))) func outcomesAreLoggedEveryFewAnswersNotAtTheRoundsEnd() async throws {
        let n = 5, journal = InMemoryJournal(), mailer = WaitsForTheRecordBefore(journal, queued: 5, per: 2)
        let sender = Self.service(Self.users(n), mailer, journal: journal, perSecond: 100, concurrency: 1, outcomesPerAppend: 2)
        await sender.start()
        #expect(await sender.tick(now: Self.t0 + 10 * Self.day) == n)
        #expect(mailer.sawPredecessorLogged.withLock { $0 } == n)
        let kinds = journal.records.map(\.kind)
        let (sent, failed) = (ChorusEvent.emailSent(messageId: "", at: 0).kind, ChorusEvent.emailFailed(messageId: "", at: 0, reason: "").kind)
        #expect(kinds.filter { $0 == sent }.count == 4 && kinds.filter { $0 == failed }.count == 1)
        #expect(await sender.outbox.pending.isEmpty)
    }
}
