import ChorusCore
@testable import ChorusEngine
import Testing

@Suite struct ConversationCoreTests {
    let limits = ChatLimits()

    func message(_ c: ConversationCore, seq: UInt64, from: String = "a", client: String) -> MessageRecord {
        MessageRecord(conversationId: c.id, seq: seq, from: from, body: "hi", ts: Int64(seq), clientMsgId: client)
    }

    @Test func aGroupsOwnerIsItsLongestStandingMemberAndOnlyItRemovesOthers() {
        var g = ConversationCore(id: "g", kind: .group, title: "", members: ["ann", "bob", "cid"], createdAt: 0)
        #expect(g.owner == "ann")
        #expect(g.mayRemove("cid", by: "ann") && g.mayRemove("bob", by: "bob"))
        #expect(!g.mayRemove("cid", by: "bob"))
        g.addMember("dan", at: 1)
        g.removeMember("ann", at: 2)
        #expect(g.owner == "bob", "the owner left: the longest-standing member owns the group")
        #expect(g.mayRemove("dan", by: "bob") && !g.mayRemove("bob", by: "dan"))
        #expect(ConversationCore(id: "d", kind: .direct, title: "", members: ["a", "b"], createdAt: 0).owner == nil)
    }

    @Test func seqStartsAtOneAndRisesByOne() {
        var c = ConversationCore(id: "c", kind: .direct, title: "", members: ["a", "b"], createdAt: 0)
        for i in 1...5 {
            let d = c.decideSend(from: i % 2 == 0 ? "a" : "b", clientMsgId: "m\(i)", body: "x", limits: limits)
            #expect(d == .append(seq: UInt64(i)))
            c.apply(message(c, seq: UInt64(i), client: "m\(i)"), lsn: UInt64(100 + i))
        }
        #expect(c.lastSeq == 5 && c.lsnIndex.array == [101, 102, 103, 104, 105])
    }

    @Test func concurrentSendsReserveDistinctSeqs() {
        var c = ConversationCore(id: "c", kind: .group, title: "t", members: ["a", "b"], createdAt: 0)
        #expect(c.decideSend(from: "a", clientMsgId: "1", body: "x", limits: limits) == .append(seq: 1))
        #expect(c.decideSend(from: "b", clientMsgId: "2", body: "x", limits: limits) == .append(seq: 2))
        #expect(c.decideSend(from: "a", clientMsgId: "1", body: "x", limits: limits) == .inFlight(seq: 1))
        c.apply(message(c, seq: 1, client: "1"), lsn: 1)
        #expect(c.decideSend(from: "a", clientMsgId: "1", body: "changed", limits: limits) == .duplicate(seq: 1))
    }

    @Test func aFailedAppendGivesItsSeqBack() {
        var c = ConversationCore(id: "c", kind: .direct, title: "", members: ["a", "b"], createdAt: 0)
        #expect(c.decideSend(from: "a", clientMsgId: "1", body: "x", limits: limits) == .append(seq: 1))
        c.sendFailed(clientMsgId: "1", seq: 1)
        #expect(c.decideSend(from: "a", clientMsgId: "1", body: "x", limits: limits) == .append(seq: 1))
    }

    @Test func refusals() {
        var c = ConversationCore(id: "c", kind: .direct, title: "", members: ["a", "b"], createdAt: 0)
        #expect(c.decideSend(from: "z", clientMsgId: "1", body: "x", limits: limits) == .refused(.notMember))
        #expect(c.decideSend(from: "a", clientMsgId: "1", body: "", limits: limits) == .refused(.emptyBody))
        #expect(c.decideSend(from: "a", clientMsgId: "1", body: String(repeating: "é", count: 2049), limits: limits) == .refused(.bodyTooLarge(limit: 4096)))
        #expect(c.decideSend(from: "a", clientMsgId: "1", body: String(repeating: "é", count: 2048), limits: limits) == .append(seq: 1))
        if case .refused(let e) = c.decideSend(from: "a", clientMsgId: "", body: "x", limits: limits) { #expect(e.code == "bad_request") } else {
            Issue.record("empty clientMsgId accepted")
        }
        c.removeMember("b", at: 1)
        #expect(c.decideSend(from: "b", clientMsgId: "2", body: "x", limits: limits) == .refused(.notMember))
    }

    @Test func dedupWindowIsBounded() {
        var c = ConversationCore(id: "c", kind: .direct, title: "", members: ["a"], createdAt: 0, dedupWindow: 3)
        for i in 1...4 {
            _ = c.decideSend(from: "a", clientMsgId: "m\(i)", body: "x", limits: limits)
            c.apply(message(c, seq: UInt64(i), client: "m\(i)"), lsn: UInt64(i))
        }
        #expect(c.decideSend(from: "a", clientMsgId: "m4", body: "x", limits: limits) == .duplicate(seq: 4))
        #expect(c.decideSend(from: "a", clientMsgId: "m2", body: "x", limits: limits) == .duplicate(seq: 2))
        // m1 fell out of the window of 3: it is a new message now (documented bound).
        #expect(c.decideSend(from: "a", clientMsgId: "m1", body: "x", limits: limits) == .append(seq: 5))
    }

    @Test func historyPagesFollowTheContract() {
        var c = ConversationCore(id: "c", kind: .direct, title: "", members: ["a"], createdAt: 0)
        for i in 1...10 {
            _ = c.decideSend(from: "a", clientMsgId: "m\(i)", body: "x", limits: limits)
            c.apply(message(c, seq: UInt64(i), client: "m\(i)"), lsn: UInt64(i))
        }
        #expect(c.historyPage(before: nil, after: nil, limit: 3) == (8...10, true))
        #expect(c.historyPage(before: nil, after: nil, limit: 50) == (1...10, false))
        #expect(c.historyPage(before: 8, after: nil, limit: 3) == (5...7, true))
        #expect(c.historyPage(before: 3, after: nil, limit: 3) == (1...2, false))
        #expect(c.historyPage(before: 1, after: nil, limit: 3).seqs == nil)
        #expect(c.historyPage(before: 100, after: nil, limit: 2) == (9...10, true))
        #expect(c.historyPage(before: nil, after: 0, limit: 4) == (1...4, true))
        #expect(c.historyPage(before: nil, after: 6, limit: 4) == (7...10, false))
        #expect(c.historyPage(before: nil, after: 10, limit: 4).seqs == nil)
    }

    @Test func readsMoveForwardOnlyAndClampToTheNewest() {
        var c = ConversationCore(id: "c", kind: .direct, title: "", members: ["a", "b"], createdAt: 0)
        for i in 1...3 {
            _ = c.decideSend(from: "a", clientMsgId: "m\(i)", body: "x", limits: limits)
            c.apply(message(c, seq: UInt64(i), client: "m\(i)"), lsn: UInt64(i))
        }
        #expect(c.unread(for: "b") == 3 && c.unread(for: "a") == 0, "sending counts as reading")
        #expect(c.decideRead(by: "b", upTo: 99) == .success(3))
        c.applyRead(by: "b", upTo: 2)
        #expect(c.decideRead(by: "b", upTo: 1) == .success(nil))
        #expect(c.unread(for: "b") == 1)
        #expect(c.decideRead(by: "z", upTo: 1) == .failure(.notMember))
    }
}

@Suite struct DedupIndexTests {
    func message(_ c: ConversationCore, seq: UInt64, client: String) -> MessageRecord {
        MessageRecord(conversationId: c.id, seq: seq, from: "a", body: "b", ts: 0, clientMsgId: client)
    }

    @Test func indexBuiltAfterReplayFindsRecentIdsAndForgetsOldOnes() {
        var c = ConversationCore(id: "c", kind: .direct, title: "", members: ["a", "b"], createdAt: 0, dedupWindow: 4)
        for i in 1...6 { c.apply(message(c, seq: UInt64(i), client: "m\(i)"), lsn: UInt64(i)) }
        // Built lazily on this first decision, from the last 4 messages only.
        #expect(c.decideSend(from: "a", clientMsgId: "m3", body: "x", limits: ChatLimits()) == .duplicate(seq: 3))
        #expect(c.decideSend(from: "a", clientMsgId: "m2", body: "x", limits: ChatLimits()) == .append(seq: 7))
        // Kept up to date once built: m7 enters, m3 leaves.
        c.apply(message(c, seq: 7, client: "m2"), lsn: 7)
        #expect(c.decideSend(from: "a", clientMsgId: "m2", body: "x", limits: ChatLimits()) == .duplicate(seq: 7))
        #expect(c.decideSend(from: "a", clientMsgId: "m3", body: "x", limits: ChatLimits()) == .append(seq: 8))
    }

    @Test func pastAFewDozenMessagesAnIndexAnswersTheSame() {
        // 70 hashes (under the trim at twice the window), so the first decision builds an index.
        var c = ConversationCore(id: "c", kind: .direct, title: "", members: ["a", "b"], createdAt: 0, dedupWindow: 40)
        for i in 1...70 { c.apply(message(c, seq: UInt64(i), client: "m\(i)"), lsn: UInt64(i)) }
        #expect(c.decideSend(from: "a", clientMsgId: "m31", body: "x", limits: ChatLimits()) == .duplicate(seq: 31))
        #expect(c.hasDedupIndex)
        #expect(c.decideSend(from: "a", clientMsgId: "m30", body: "x", limits: ChatLimits()) == .append(seq: 71))
        c.apply(message(c, seq: 71, client: "m30"), lsn: 71)
        #expect(c.decideSend(from: "a", clientMsgId: "m31", body: "x", limits: ChatLimits()) == .append(seq: 72), "m31 left the window")
        #expect(c.decideSend(from: "a", clientMsgId: "m30", body: "x", limits: ChatLimits()) == .duplicate(seq: 71))
    }

    @Test func hashesAreKeptForTheWindowOnlyAndDedupStillAnswersAcrossATrim() {
        // Window 40: past 80 hashes the oldest 41 go (at seqs 81, 122, ..., 286), and past 64 an index answers.
        var c = ConversationCore(id: "c", kind: .direct, title: "", members: ["a", "b"], createdAt: 0, dedupWindow: 40)
        for i in 1...320 {
            #expect(c.decideSend(from: "a", clientMsgId: "m\(i)", body: "x", limits: ChatLimits()) == .append(seq: UInt64(i)))
            c.apply(message(c, seq: UInt64(i), client: "m\(i)"), lsn: UInt64(i))
            #expect(c.clientIdHashBySeq.count <= 80 && c.clientIdHashBase + UInt64(c.clientIdHashBySeq.count) == UInt64(i))
            if i > 40 {
                #expect(c.decideSend(from: "a", clientMsgId: "m\(i - 39)", body: "x", limits: ChatLimits()) == .duplicate(seq: UInt64(i - 39)))
            }
        }
        #expect(c.clientIdHashBase == 246 && c.clientIdHashBySeq.count == 74, "memory does not grow with history")
        #expect(c.hasDedupIndex)
        #expect(c.decideSend(from: "a", clientMsgId: "m281", body: "x", limits: ChatLimits()) == .duplicate(seq: 281))
        #expect(c.decideSend(from: "a", clientMsgId: "m280", body: "x", limits: ChatLimits()) == .append(seq: 321), "m280 left the window")
        // Built afresh from the kept hashes (an idle conversation drops its index): the same answers.
        c.dropCaches()
        #expect(c.decideSend(from: "a", clientMsgId: "m320", body: "x", limits: ChatLimits()) == .duplicate(seq: 320))
        #expect(c.hasDedupIndex)
        #expect(c.decideSend(from: "a", clientMsgId: "m281", body: "x", limits: ChatLimits()) == .duplicate(seq: 281))
        #expect(c.decideSend(from: "a", clientMsgId: "m260", body: "x", limits: ChatLimits()) == .append(seq: 322))
    }

    @Test func aHashHitCanBeOverruled() {
        var c = ConversationCore(id: "c", kind: .direct, title: "", members: ["a", "b"], createdAt: 0)
        c.apply(message(c, seq: 1, client: "m1"), lsn: 1)
        // The actor overrules a hit whose stored message has another id (a 64-bit collision).
        #expect(c.decideSend(from: "a", clientMsgId: "m1", body: "x", limits: ChatLimits(), ignoringDedupHit: true) == .append(seq: 2))
    }

    @Test func stableHashIsFNV1a() {
        #expect(StableHash.fnv1a64("") == 0xcbf2_9ce4_8422_2325)
        #expect(StableHash.fnv1a64("a") == 0xaf63_dc4c_8601_ec8c)
        #expect(StableHash.fnv1a64("foobar") == 0x8594_4171_f739_67e8)
        #expect(StableHash.fnv1a64(bytes: Array("foobar".utf8)) == StableHash.fnv1a64("foobar"))
    }
}
