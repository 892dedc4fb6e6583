import ChorusCore
import ChorusTestKit
import Synchronization
import Testing

@testable import ChorusEngine

/// The cluster's fan-out, without sockets: `InboxFanout` with a scripted transport, and
/// `RemoteInboxWriter` on an in-memory log, replayed into a fresh state.
@Suite struct FanoutTests {
    static func message(_ seq: UInt64, in c: String = "c_one") -> MessageRecord {
        MessageRecord(conversationId: c, seq: seq, from: "u_a", body: "m\(seq)", ts: 1, clientMsgId: "k\(seq)")
    }

    /// A transport that fails the first `failures` requests, then answers every item with 100 + its
    /// position; it records each batch it was given.
    final class Script: Sendable {
        let batches = Mutex<[[UInt64]]>([])
        let failuresLeft: Mutex<Int>
        init(failures: Int) { failuresLeft = Mutex(failures) }

        func send(_ items: [RemoteInboxItem], _ node: String, _ reply: @escaping @Sendable (Result<[UInt64], ChatError>) -> Void) {
            batches.withLock { $0.append(items.map(\.seq)) }
            let fail = failuresLeft.withLock { f -> Bool in
                defer { f -= 1 }
                return f > 0
            }
            if fail { reply(.failure(.unavailable("down"))) } else { reply(.success(items.indices.map { UInt64(100 + $0) })) }
        }
    }

    @Test func batchesGoInOrderAndAFailedBatchIsRetriedWholeAfterItsWaitersHear() async throws {
        let script = Script(failures: 2)
        let sleeps = Mutex<[Int64]>([])
        let fanout = InboxFanout(maxBatch: 3, send: script.send, sleep: { ms in sleeps.withLock { $0.append(ms) } })
        let heard = Mutex<[Result<UInt64, ChatError>]>([])
        var items: [(RemoteInboxItem, (@Sendable (Result<UInt64, ChatError>) -> Void)?)] = []
        let listen: @Sendable (Result<UInt64, ChatError>) -> Void = { r in heard.withLock { $0.append(r) } }
        for seq: UInt64 in 1...5 {
            items.append((RemoteInboxItem(userId: "u_b", message: Self.message(seq), origin: 0), seq == 1 ? listen : nil))
        }
        fanout.enqueue(items, to: "n2")
        // Two failures with backoff, then 1-3 and 4-5; each retry resends the same head, in order.
        while fanout.queued(for: "n2") > 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(script.batches.withLock { $0 } == [[1, 2, 3], [1, 2, 3], [1, 2, 3], [4, 5]])
        #expect(sleeps.withLock { $0 } == [100, 200], "exponential backoff from 50 ms")
        // The waiter heard the first attempt's failure once, and never again.
        #expect(heard.withLock { $0 } == [.failure(.unavailable("down"))])
    }

    @Test func pastTheBoundItemsAreDroppedAndCounted() {
        let fanout = InboxFanout(maxQueued: 2, send: { _, _, _ in }, sleep: { _ in })
        let refused = Mutex(0)
        fanout.enqueue((1...4).map { seq in (RemoteInboxItem(userId: "u_b", message: Self.message(UInt64(seq)), origin: 0), { _ in refused.withLock { $0 += 1 } }) }, to: "n2")
        #expect(fanout.queued(for: "n2") == 2)
        #expect(fanout.droppedItems == 2)
        #expect(refused.withLock { $0 } == 2)
    }

    @Test func reconciliationPutsWhatIsMissingInFrontOfWhatIsQueued() async throws {
        // The node is down: 8...10 wait in the queue (the first attempt failed); the member's inbox
        // has up to 5 (6 and 7 were lost with a restart of this node).
        let sent = Mutex<[[UInt64]]>([])
        let down = Mutex(true)
        let fanout = InboxFanout(
            send: { items, _, reply in
                sent.withLock { $0.append(items.map(\.seq)) }
                if down.withLock({ $0 }) { reply(.failure(.unavailable("down"))) } else { reply(.success(items.map { _ in 1 })) }
            },
            sleep: { _ in try? await Task.sleep(for: .milliseconds(1)) })
        fanout.enqueue((8...10).map { (RemoteInboxItem(userId: "u_b", message: Self.message(UInt64($0)), origin: 0), nil) }, to: "n2")
        down.withLock { $0 = false }
        try await fanout.reconcile(
            "n2", members: [RemoteMember(userId: "u_b", conversationId: "c_one", lastSeq: 10)],
            ask: { _ in [5] }, load: { _, seqs in seqs.map { Self.message($0) } })
        while fanout.queued(for: "n2") > 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(sent.withLock { $0 }.last == [6, 7, 8, 9, 10], "in seq order, the missing first")
    }

    @Test func nothingIsSentWhileAReconciliationRunsEvenIfResumedAndEachSenderHearsOnce() async throws {
        // A change of leaders resumes the queue while a reconciliation still waits for its answer,
        // and a send arrives meanwhile. Were a batch let go then, the missing entries would be put
        // in front of a request in flight: its answer would take them off the queue instead, one
        // would never be sent and the new item would be sent, and its sender told, twice.
        let sent = Mutex<[[UInt64]]>([])
        let held = Mutex<[@Sendable () -> Void]>([])
        let fanout = InboxFanout(
            send: { items, _, reply in
                sent.withLock { $0.append(items.map(\.seq)) }
                let answer: @Sendable () -> Void = { reply(.success(items.map { _ in 1 })) }
                if items.contains(where: { $0.seq == 11 }) { held.withLock { $0.append(answer) } } else { answer() }
            },
            sleep: { _ in try? await Task.sleep(for: .milliseconds(1)) })
        let heard = Mutex(0)
        let listen: @Sendable (Result<UInt64, ChatError>) -> Void = { _ in heard.withLock { $0 += 1 } }
        try await fanout.reconcile(
            "n2", members: [RemoteMember(userId: "u_b", conversationId: "c_one", lastSeq: 10)],
            ask: { _ in
                fanout.enqueue([(RemoteInboxItem(userId: "u_b", message: Self.message(11), origin: 0), listen)], to: "n2")
                fanout.resume(node: "n2")
                return [5]
            }, load: { _, seqs in seqs.map { Self.message($0) } })
        while fanout.queued(for: "n2") > 0 {
            for answer in held.withLock({ h in defer { h = [] }; return h }) { answer() }
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(sent.withLock { $0 } == [[6, 7, 8, 9, 10, 11]], "the missing first, then the new one, each sent once")
        #expect(heard.withLock { $0 } == 1)
    }

    @Test func aMembershipChangeHoldsTheQueueAndMovesNothingStuckAtAnOldOwnerAhead() async throws {
        // n2 refuses (frozen); u_moved's items wait in its queue, next to u_stays' items.
        let sent = Mutex<[(String, [UInt64])]>([])
        let refusing = Mutex(true)
        let fanout = InboxFanout(
            send: { items, node, reply in
                sent.withLock { $0.append((node, items.map(\.seq))) }
                if refusing.withLock({ $0 }) { reply(.failure(.unavailable("frozen"))) } else { reply(.success(items.map { _ in 1 })) }
            },
            sleep: { _ in try? await Task.sleep(for: .milliseconds(1)) })
        let heard = Mutex<[Result<UInt64, ChatError>]>([])
        let listen: @Sendable (Result<UInt64, ChatError>) -> Void = { r in heard.withLock { $0.append(r) } }
        fanout.enqueue([
            (RemoteInboxItem(userId: "u_stays", message: Self.message(1), origin: 0), nil),
            (RemoteInboxItem(userId: "u_moved", message: Self.message(2), origin: 0), listen),
            (RemoteInboxItem(userId: "u_stays", message: Self.message(3), origin: 0), nil),
        ], to: "n2")
        while sent.withLock({ $0.count }) < 2 { try await Task.sleep(for: .milliseconds(1)) }
        // The switch: n3 held back, the moved user's items purged from n2's queue, and whatever is
        // in the request in flight left alone (its node answers it).
        fanout.pause(nodes: ["n2", "n3"])
        while fanout.isSending("n2") { try await Task.sleep(for: .milliseconds(1)) }
        #expect(fanout.purge(misplaced: { user, node in user == "u_moved" && node == "n2" }) == 1)
        #expect(heard.withLock { $0 } == [.failure(.unavailable("frozen"))], "its sender heard the first attempt, once")
        fanout.enqueue([(RemoteInboxItem(userId: "u_moved", message: Self.message(4), origin: 0), nil)], to: "n3")
        #expect(fanout.queued(for: "n3") == 1 && fanout.queued(for: "n2") == 2)
        let before = sent.withLock { $0.count }
        try await Task.sleep(for: .milliseconds(20))
        #expect(sent.withLock { $0.count } == before, "paused queues send nothing")
        refusing.withLock { $0 = false }
        fanout.resume(node: "n2")
        fanout.resume(node: "n3")
        while fanout.queuedTotal > 0 { try await Task.sleep(for: .milliseconds(1)) }
        let last = sent.withLock { $0 }.suffix(2)
        #expect(Set(last.map(\.0)) == ["n2", "n3"])
        #expect(last.first { $0.0 == "n2" }?.1 == [1, 3] && last.first { $0.0 == "n3" }?.1 == [4])
    }

    func append(_ writer: RemoteInboxWriter, _ items: [RemoteInboxItem]) async throws -> [UInt64] {
        try await withCheckedThrowingContinuation { c in writer.append(items) { c.resume(with: $0) } }
    }

    @Test func theOwnerTakesEachEntryOnceAndReplayAgrees() async throws {
        let journal = InMemoryJournal()
        let inboxes = InboxDirectory()
        let writer = RemoteInboxWriter(journal: journal, inboxes: inboxes)
        let first = try await append(writer, [
            RemoteInboxItem(userId: "u_b", message: Self.message(1), origin: 0),
            RemoteInboxItem(userId: "u_c", message: Self.message(1), origin: 0),
            RemoteInboxItem(userId: "u_b", message: Self.message(2), origin: 0),
        ])
        #expect(first == [1, 1, 2])
        // A retried batch (the answer was lost): nothing new, the same inboxSeqs.
        let again = try await append(writer, [
            RemoteInboxItem(userId: "u_b", message: Self.message(1), origin: 0),
            RemoteInboxItem(userId: "u_b", message: Self.message(2), origin: 0),
            RemoteInboxItem(userId: "u_b", entry: .receipt(conversationId: "c_one", from: "u_c", kind: .read, seq: 2)),
        ])
        #expect(again == [1, 2, 3])
        let receiptAgain = try await append(writer, [RemoteInboxItem(userId: "u_b", entry: .receipt(conversationId: "c_one", from: "u_c", kind: .read, seq: 2))])
        #expect(receiptAgain == [3])
        #expect(journal.records.count == 4, "three messages' entries and one receipt, each logged once")

        // Replay of the log rebuilds the same inboxes; a writer over them (after a restart) still
        // recognises the repeats.
        var state = EngineState()
        let replayed = InboxDirectory()
        for r in journal.records { try state.apply(kind: r.kind, payload: r.payload, lsn: r.lsn, inboxes: replayed) }
        #expect(replayed.inbox("u_b").entries(after: 0, limit: 10).map(\.entry) == inboxes.inbox("u_b").entries(after: 0, limit: 10).map(\.entry))
        let restarted = RemoteInboxWriter(journal: journal, inboxes: replayed)
        #expect(try await append(restarted, [RemoteInboxItem(userId: "u_b", message: Self.message(2), origin: 0)]) == [2])
        #expect(journal.records.count == 4)
    }

    @Test func theOwnerAnswersGapRatherThanTakeAnEntryPastAMissingOne() async throws {
        let journal = InMemoryJournal()
        let inboxes = InboxDirectory()
        let writer = RemoteInboxWriter(journal: journal, inboxes: inboxes)
        func m(_ seq: UInt64, previous: UInt64) -> RemoteInboxItem { RemoteInboxItem(userId: "u_b", message: Self.message(seq), origin: 0, previous: previous) }
        #expect(try await append(writer, [m(1, previous: 0), m(2, previous: 1)]) == [1, 2])
        // 3 went astray: 4 and 5 are not taken (5 would be, past 4, were the check per batch only);
        // u_c's entry in the same batch is.
        let answered = try await append(writer, [m(4, previous: 3), RemoteInboxItem(userId: "u_c", message: Self.message(4), origin: 0, previous: 0), m(5, previous: 4)])
        #expect(answered == [RemoteInboxItem.gap, 1, RemoteInboxItem.gap])
        #expect(inboxes.inbox("u_b").lastSeq == 2 && journal.records.count == 3)
        // The repair (unchecked), then the same entries again: taken, in seq order.
        #expect(try await append(writer, [m(3, previous: 0), m(4, previous: 3), m(5, previous: 4)]) == [3, 4, 5])
        #expect(inboxes.inbox("u_b").entries(after: 0, limit: 10).map(\.entry) == (1...5).map { .message(conversationId: "c_one", seq: $0) })
        // A repeat is a repeat, whatever its `previous` says.
        #expect(try await append(writer, [m(2, previous: 1)]) == [2])
    }

    @Test func entriesAnsweredGapWaitUntilWhatPrecedesThemIsPutFirst() async throws {
        // The owner holds u_b's 1...5 and u_c's 1...7; 8 and 9 are sent to both. u_b's 6 and 7
        // went astray (a leader change): its 8 and 9 are answered `gap`, u_c's are taken.
        let held = Mutex<[String: UInt64]>(["u_b": 5, "u_c": 7])
        let sent = Mutex<[[String]]>([])
        let heard = Mutex<[Result<UInt64, ChatError>]>([])
        let fanout = InboxFanout(
            send: { items, _, reply in
                sent.withLock { $0.append(items.map { "\($0.userId):\($0.seq)" }) }
                reply(.success(held.withLock { h in
                    items.map { item in
                        let known = h[item.userId] ?? 0
                        if item.seq <= known { return 1 }
                        if item.previous > known { return RemoteInboxItem.gap }
                        h[item.userId] = item.seq
                        return 1
                    }
                }))
            },
            sleep: { _ in try? await Task.sleep(for: .milliseconds(1)) })
        let asked = Mutex<[RemoteMember]>([])
        fanout.onGap { node, members in
            asked.withLock { $0 += members }
            do {
                try await fanout.reconcile(
                    node, members: members, ask: { m in held.withLock { h in m.map { h[$0.userId] ?? 0 } } },
                    load: { _, seqs in seqs.map { Self.message($0) } })
                return true
            } catch {
                return false
            }
        }
        let listen: @Sendable (Result<UInt64, ChatError>) -> Void = { r in heard.withLock { $0.append(r) } }
        fanout.enqueue([
            (RemoteInboxItem(userId: "u_b", message: Self.message(8), origin: 0, previous: 7), listen),
            (RemoteInboxItem(userId: "u_c", message: Self.message(8), origin: 0, previous: 7), nil),
            (RemoteInboxItem(userId: "u_b", message: Self.message(9), origin: 0, previous: 8), nil),
            (RemoteInboxItem(userId: "u_c", message: Self.message(9), origin: 0, previous: 8), nil),
        ], to: "n2")
        while fanout.queued(for: "n2") > 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(asked.withLock { $0 } == [RemoteMember(userId: "u_b", conversationId: "c_one", lastSeq: 7)], "one repair, up to the entry before the first gap")
        #expect(sent.withLock { $0 } == [["u_b:8", "u_c:8", "u_b:9", "u_c:9"], ["u_b:6", "u_b:7", "u_b:8", "u_b:9"]])
        #expect(held.withLock { $0 } == ["u_b": 9, "u_c": 9])
        #expect(heard.withLock { $0 } == [.success(1)], "the sender waiting on u_b's 8 heard once, when it was taken")
    }

    @Test func aRepairThatFailsIsTriedAgainAfterABackoffAndTheEntryWaitsUntilThen() async throws {
        // The owner holds up to 5 and is sent 8; the first repair cannot ask it (unreachable).
        let held = Mutex<UInt64>(5)
        let sent = Mutex<[[UInt64]]>([])
        let sleeps = Mutex<[Int64]>([])
        let fanout = InboxFanout(
            send: { items, _, reply in
                sent.withLock { $0.append(items.map(\.seq)) }
                reply(.success(held.withLock { h in
                    items.map { item in
                        if item.seq <= h { return 1 }
                        if item.previous > h { return RemoteInboxItem.gap }
                        h = item.seq
                        return 1
                    }
                }))
            },
            sleep: { ms in sleeps.withLock { $0.append(ms) } })
        let attempts = Mutex(0)
        fanout.onGap { node, members in
            guard attempts.withLock({ a in defer { a += 1 }; return a }) > 0 else { return false }
            try? await fanout.reconcile(
                node, members: members, ask: { _ in [held.withLock { $0 }] }, load: { _, seqs in seqs.map { Self.message($0) } })
            return true
        }
        fanout.enqueue([(RemoteInboxItem(userId: "u_b", message: Self.message(8), origin: 0, previous: 7), nil)], to: "n2")
        while fanout.queued(for: "n2") > 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(attempts.withLock { $0 } == 2)
        #expect(sleeps.withLock { $0 } == [100], "one backoff, after the failed repair")
        #expect(sent.withLock { $0 } == [[8], [8], [6, 7, 8]], "sent again (gap again) before the repair that worked")
        #expect(held.withLock { $0 } == 8)
    }

    @Test func aMessageNamesThePreviousSeqOnlyWhenEveryMemberWasOneForIt() {
        var core = ConversationCore(id: "c_one", kind: .group, title: "", members: ["u_a", "u_b"], createdAt: 1)
        #expect(core.previous(before: 1) == 0 && core.previous(before: 2) == 1)
        for seq: UInt64 in 1...3 { core.apply(Self.message(seq), lsn: seq) }
        core.addMember("u_c", at: 2)
        #expect(core.previous(before: 4) == 0, "u_c never got 3")
        #expect(core.previous(before: 5) == 4)
        core.apply(Self.message(4), lsn: 4)
        core.removeMember("u_b", at: 3)
        #expect(core.previous(before: 5) == 0 && core.previous(before: 6) == 5)
    }

    @Test func replayKeepsOnlyThisNodesUsersInboxesForMessages() throws {
        var state = EngineState()
        state.sharesInbox = { u, _ in u == "u_a" }
        let inboxes = InboxDirectory()
        state.apply(.conversationCreated(conversationId: "c_one", kind: .direct, title: "", members: ["u_a", "u_b"], createdAt: 1), lsn: 1, inboxes: inboxes)
        state.apply(.messageAppended(Self.message(1)), lsn: 2, inboxes: inboxes)
        #expect(inboxes.inbox("u_a").lastSeq == 1)
        #expect(inboxes.inbox("u_b").lastSeq == 0, "u_b's entry is logged on its owner")
    }
}
