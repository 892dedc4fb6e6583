@testable import ChorusEngine
import Testing

@Suite struct InboxCoreTests {
    @Test func seqsStartAtOneAndRiseByOne() throws {
        var inbox = InboxCore()
        #expect(inbox.lastSeq == 0 && inbox.nextSeq == 1)
        try inbox.apply(seq: 1, .message(conversation: 0, seq: 1))
        try inbox.apply(seq: 2, .receipt(conversation: 0, user: 1, kind: .read, seq: 1))
        #expect(throws: InboxError.outOfOrder(expected: 3, got: 4)) { try inbox.apply(seq: 4, .message(conversation: 0, seq: 2)) }
        #expect(throws: InboxError.outOfOrder(expected: 3, got: 2)) { try inbox.apply(seq: 2, .message(conversation: 0, seq: 2)) }
        #expect(inbox.lastSeq == 2)
    }

    @Test func syncReturnsEverythingAfterNInOrder() throws {
        var inbox = InboxCore()
        for i in 1...10 { try inbox.apply(seq: UInt64(i), .message(conversation: 0, seq: UInt64(i))) }
        #expect(inbox.entries(after: 7, limit: 100).map(\.seq) == [8, 9, 10])
        #expect(inbox.entries(after: 0, limit: 3).map(\.seq) == [1, 2, 3])
        #expect(inbox.entries(after: 10, limit: 3).isEmpty)
        #expect(inbox.entries(after: 99, limit: 3).isEmpty)
    }

    @Test func packedEntriesRoundTripThroughTheSymbolTable() {
        let symbols = SymbolTable()
        let entries: [InboxEntry] = [
            .message(conversationId: "c1", seq: 7),
            .receipt(conversationId: "c1", userId: "u2", kind: .read, seq: 7),
            .receipt(conversationId: "c2", userId: "u3", kind: .delivered, seq: 1),
        ]
        let packed = entries.map(symbols.pack)
        #expect(MemoryLayout<PackedInboxEntry>.stride == 16)
        #expect(symbols.strings == ["c1", "u2", "c2", "u3"])
        #expect(symbols.unpack(packed.enumerated().map { (UInt64($0.offset + 1), $0.element) }).map(\.entry) == entries)
        #expect(SymbolTable(strings: symbols.strings).intern("c2") == 2)
    }
}
