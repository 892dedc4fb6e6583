import ChorusCore
@testable import ChorusEngine
import Testing

/// The coded history index and inbox entries answer exactly what plain arrays answer, across block
/// boundaries, and refuse coded parts that are not exactly their entries.
@Suite struct VarintBlocksTests {
    /// A deterministic generator (tests must not depend on the run).
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 17
        }
        mutating func below(_ n: UInt64) -> UInt64 { next() % n }
    }

    @Test func theLSNIndexAnswersLikeAnArrayThroughAppendsRewritesAndGaps() {
        var rng = Rng(state: 7)
        var model: [UInt64] = []
        var index = LSNIndex()
        var lsn: UInt64 = 1
        for step in 0..<3_000 {
            switch rng.below(20) {
            case 0 where !model.isEmpty:
                // An earlier seq is set again (a hand-over fills in what it knew).
                let i = Int(rng.below(UInt64(model.count)))
                let v = rng.below(1 << 40)
                model[i] = v
                index.set(i, to: v)
            case 1:
                // A seq past the end: the gap holds 0.
                let i = model.count + Int(rng.below(70))
                model += Array(repeating: 0, count: i - model.count) + [lsn]
                index.set(i, to: lsn)
            default:
                lsn += 1 + rng.below(3_000)
                model.append(lsn)
                index.set(model.count - 1, to: lsn)
            }
            if step % 250 == 0 { #expect(index.array == model) }
        }
        #expect(index.count == model.count && index.array == model)
        for i in 0..<model.count { #expect(index[i] == model[i]) }
        #expect(index[-1] == nil && index[model.count] == nil)
        let parts = index.blocks
        #expect(LSNIndex(bytes: parts.bytes, blockStarts: parts.blockStarts, count: parts.count) == index)
    }

    @Test func risingLSNsCostAboutTwoBytesEach() {
        // 5,000 conversations sharing one log: a conversation's next LSN is about 5,000 later.
        var rng = Rng(state: 3)
        var lsn: UInt64 = 1 << 32
        var lsns: [UInt64] = []
        for _ in 0..<10_000 {
            lsn += 2_500 + rng.below(5_000)
            lsns.append(lsn)
        }
        let index = LSNIndex(lsns)
        let parts = index.blocks
        let bytes = parts.bytes.count + parts.blockStarts.count * 8
        #expect(bytes < 10_000 * 5 / 2, "\(bytes) bytes for 10,000 entries")
        #expect(index.array == lsns)
    }

    @Test func shrinkingGivesBackSpareCapacityAndKeepsTheEntries() {
        var index = LSNIndex()
        for i in 1...1_000 { index.append(UInt64(i) * 3_000) }
        let model = index.array
        let grown = index.blocks.bytes.capacity
        #expect(grown > index.blocks.bytes.count + 8, "appends leave spare room (\(grown) for \(index.blocks.bytes.count))")
        index.shrink()
        #expect(index.blocks.bytes.capacity < grown && index.blocks.bytes.capacity <= index.blocks.bytes.count + 16)
        #expect(index.array == model && index[999] == 3_000_000)
        index.append(1)
        #expect(index.count == 1_001 && index[1_000] == 1)
    }

    @Test func codedPartsThatAreNotExactlyTheirEntriesAreRefused() {
        let index = LSNIndex((1...200).map { UInt64($0) * 1_000 })
        let p = index.blocks
        #expect(LSNIndex(bytes: p.bytes, blockStarts: p.blockStarts, count: p.count) != nil)
        #expect(LSNIndex(bytes: p.bytes, blockStarts: p.blockStarts, count: p.count + 1) == nil)
        #expect(LSNIndex(bytes: p.bytes, blockStarts: p.blockStarts, count: p.count - 1) == nil)
        #expect(LSNIndex(bytes: Array(p.bytes.dropLast()), blockStarts: p.blockStarts, count: p.count) == nil)
        #expect(LSNIndex(bytes: p.bytes + [0], blockStarts: p.blockStarts, count: p.count) == nil)
        #expect(LSNIndex(bytes: p.bytes, blockStarts: p.blockStarts.reversed(), count: p.count) == nil)
        #expect(LSNIndex(bytes: p.bytes, blockStarts: p.blockStarts.map { $0 + 1 }, count: p.count) == nil)
        #expect(LSNIndex(bytes: p.bytes, blockStarts: [], count: p.count) == nil)
        #expect(LSNIndex(bytes: Array(repeating: 0xFF, count: 12), blockStarts: [], count: 1) == nil)
        #expect(LSNIndex(bytes: [], blockStarts: [], count: 0) == LSNIndex())
    }

    func randomEntries(_ n: Int, _ rng: inout Rng) -> [PackedInboxEntry] {
        (0..<n).map { _ in
            let conversation = UInt32(rng.below(rng.below(2) == 0 ? 5 : 3_000_000))
            let seq = rng.below(2) == 0 ? rng.below(100) : rng.below(1 << 50)
            switch rng.below(4) {
            case 0: return .receipt(conversation: conversation, user: UInt32(rng.below(3_000_000)), kind: .read, seq: seq)
            case 1: return .receipt(conversation: conversation, user: UInt32(rng.below(3)), kind: .delivered, seq: seq)
            default: return .message(conversation: conversation, seq: seq)
            }
        }
    }

    @Test func inboxEntriesAnswerLikeAnArrayAcrossBlocks() {
        var rng = Rng(state: 11)
        let model = randomEntries(1_000, &rng)
        let entries = InboxEntries(model)
        #expect(entries.count == model.count && entries.array == model)
        for _ in 0..<300 {
            let a = Int(rng.below(UInt64(model.count + 1)))
            let b = a + Int(rng.below(UInt64(model.count - a + 1)))
            #expect(entries[a..<b] == Array(model[a..<b]))
        }
        for probe in model.prefix(50) + [.message(conversation: 9_999_999, seq: 1)] {
            let found = entries.last { $0 == probe }
            #expect(found?.index == model.lastIndex(of: probe))
            if let found { #expect(found.entry == probe) }
        }
        var core = InboxCore()
        for (i, e) in model.enumerated() { #expect(throws: Never.self) { try core.apply(seq: UInt64(i + 1), e) } }
        #expect(throws: InboxError.outOfOrder(expected: 1_001, got: 1_000)) { try core.apply(seq: 1_000, model[0]) }
        let page = core.entries(after: 60, limit: 10)
        #expect(page.map(\.seq) == Array(61...70) && page.map(\.entry) == Array(model[60..<70]))
        #expect(core.entries(after: 995, limit: 10).map(\.seq) == Array(996...1_000))
        #expect(core.entries(after: 1_000, limit: 10).isEmpty)
    }

    @Test func inboxPartsAreCheckedForShapeAndSymbols() {
        let model: [PackedInboxEntry] = (0..<130).map { .message(conversation: UInt32($0 % 7), seq: UInt64($0)) }
            + [.receipt(conversation: 3, user: 8, kind: .read, seq: 4)]
        let p = InboxEntries(model).blocks
        #expect(InboxEntries(bytes: p.bytes, blockStarts: p.blockStarts, count: p.count, symbols: 9)?.array == model)
        // User 8 (receipt value 9) names the ninth symbol: refused when there are only 8.
        #expect(InboxEntries(bytes: p.bytes, blockStarts: p.blockStarts, count: p.count, symbols: 8) == nil)
        #expect(InboxEntries(bytes: p.bytes, blockStarts: p.blockStarts, count: p.count - 1, symbols: 9) == nil)
        #expect(InboxEntries(bytes: Array(p.bytes.dropLast()), blockStarts: p.blockStarts, count: p.count, symbols: 9) == nil)
    }
}
