import ChorusCore
import Synchronization
import Testing

@testable import ChorusEngine

/// The owner's repeat detection while entries are still being logged (completions held).
@Suite struct RemoteInboxWriterTests {
    /// A log whose completions wait until `release` (records get LSNs at once, in order).
    final class HeldJournal: Journal {
        private let state = Mutex<(records: Int, held: [(Result<UInt64, any Error>, @Sendable (Result<UInt64, any Error>) -> Void)])>((0, []))

        var appended: Int { state.withLock { $0.records } }

        func append(batch records: [(kind: UInt16, payload: [UInt8])], completion: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
            state.withLock { s in
                s.records += records.count
                s.held.append((.success(UInt64(s.records)), completion))
            }
        }

        struct Refused: Error {}

        /// Completes the first `count` held (all by default), in order; those whose position `fails`
        /// are refused.
        func release(count: Int = .max, fails: (Int) -> Bool = { _ in false }) {
            let held = state.withLock { s in
                let n = min(count, s.held.count)
                defer { s.held.removeFirst(n) }
                return Array(s.held.prefix(n))
            }
            for (k, (result, completion)) in held.enumerated() { completion(fails(k) ? .failure(Refused()) : result) }
        }

        func append(kind: UInt16, payload: [UInt8]) async throws -> UInt64 { fatalError("not used") }
        func append(batch records: [(kind: UInt16, payload: [UInt8])]) async throws -> ClosedRange<UInt64> { fatalError("not used") }
        func read(from lsn: UInt64, limit: Int) throws -> [JournalRecord] { [] }
        var isHealthy: Bool { true }
    }

    static func item(_ user: String, _ seq: UInt64) -> RemoteInboxItem {
        RemoteInboxItem(userId: user, message: MessageRecord(conversationId: "c_one", seq: seq, from: "u_a", body: "m", ts: 1, clientMsgId: "k\(seq)"), origin: 0)
    }

    @Test func aRetryOfAnEntryStillBeingLoggedIsARepeatAfterTheHighsAreRefreshed() async {
        let journal = HeldJournal()
        let inboxes = InboxDirectory()
        let writer = RemoteInboxWriter(journal: journal, inboxes: inboxes)
        writer.append([Self.item("u_b", 1)]) { _ in }
        #expect(journal.appended == 1)
        // The node starts to lead another partition meanwhile; the sender, which timed out, retries.
        writer.refreshHighs()
        let answered = Mutex<[Result<[UInt64], ChatError>]>([])
        writer.append([Self.item("u_b", 1)]) { r in answered.withLock { $0.append(r) } }
        #expect(journal.appended == 1, "not logged twice")
        #expect(answered.withLock { $0 } == [.success([0])], "a repeat still being logged")
        journal.release()
        #expect(inboxes.inbox("u_b").lastSeq == 1)
        // Entries another node logged into the inbox meanwhile count after a refresh.
        inboxes.inbox("u_b").append(.message(conversationId: "c_one", seq: 5))
        writer.append([Self.item("u_b", 5)]) { _ in }
        #expect(journal.appended == 2, "without a refresh the remembered high (1) is trusted")
        journal.release()
        writer.refreshHighs()
        writer.append([Self.item("u_b", 5)]) { _ in }
        #expect(journal.appended == 2, "after it, the inbox's 5 counts")
    }

    @Test func aRefusedBatchIsForgottenForItsUsersOnly() async {
        let journal = HeldJournal()
        let inboxes = InboxDirectory()
        let writer = RemoteInboxWriter(journal: journal, inboxes: inboxes)
        writer.append([Self.item("u_b", 1)]) { _ in }
        writer.append([Self.item("u_c", 1)]) { _ in }
        // u_b's batch is refused (its partition moved away); u_c's is still being logged.
        journal.release(count: 1, fails: { $0 == 0 })
        #expect(inboxes.inbox("u_b").lastSeq == 0)
        writer.append([Self.item("u_b", 1)]) { _ in }
        #expect(journal.appended == 3, "u_b's entry was never logged: taken again")
        writer.append([Self.item("u_c", 1)]) { _ in }
        #expect(journal.appended == 3, "u_c's is a repeat, logged once")
    }
}
