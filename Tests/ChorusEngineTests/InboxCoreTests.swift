@testable import ChorusEngine
import Testing

@Suite struct InboxCoreTests {
    @Test func seqsStartAtOneAndRiseByOne() throws {
        var inbox = InboxCore()
        #expect(inbox.lastSeq == 0 && inbox.nextSeq == 1)
        try inbox.apply(seq: 1, .message(conversationId: "c", seq: 1))
        try inbox.apply(seq: 2, .receipt(conversationId: "c", userId: "b", kind: .read, seq: 1))
        #expect(throws: InboxError.outOfOrder(expected: 3, got: 4)) { try inbox.apply(seq: 4, .message(conversationId: "c", seq: 2)) }
        #expect(throws: InboxError.outOfOrder(expected: 3, got: 2)) { try inbox.apply(seq: 2, .message(conversationId: "c", seq: 2)) }
        #expect(inbox.lastSeq == 2)
    }

    @Test func syncReturnsEverythingAfterNInOrder() throws {
        var inbox = InboxCore()
        for i in 1...10 { try inbox.apply(seq: UInt64(i), .message(conversationId: "c", seq: UInt64(i))) }
        #expect(inbox.entries(after: 7, limit: 100).map(\.seq) == [8, 9, 10])
        #expect(inbox.entries(after: 0, limit: 3).map(\.seq) == [1, 2, 3])
        #expect(inbox.entries(after: 10, limit: 3).isEmpty)
        #expect(inbox.entries(after: 99, limit: 3).isEmpty)
    }
}
