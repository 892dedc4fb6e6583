/// A user's inbox entries in order, each as three varints (conversation symbol, receipt, seq): 4-7
/// bytes an entry instead of 16, in blocks of 64 (`VarintBlocks`). Append-only. Pure.
public struct InboxEntries: Sendable, Equatable {
    private(set) var blocks = VarintBlocks()

    public init() {}

    public init(_ entries: [PackedInboxEntry]) {
        for e in entries { append(e) }
    }

    public var count: Int { blocks.count }

    public mutating func append(_ e: PackedInboxEntry) {
        _ = blocks.beginRecord()
        blocks.append(varint: UInt64(e.conversation))
        blocks.append(varint: UInt64(e.receipt))
        blocks.append(varint: e.seq)
    }

    /// Entries `range` (0-based), in order.
    public subscript(range: Range<Int>) -> [PackedInboxEntry] {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        var out: [PackedInboxEntry] = []
        out.reserveCapacity(range.count)
        guard !range.isEmpty else { return out }
        for b in (range.lowerBound >> VarintBlocks.blockShift)...((range.upperBound - 1) >> VarintBlocks.blockShift) {
            blocks.withBlock(b) { buffer, first in
                var c = VarintCursor(buffer)
                var i = first
                while !c.isAtEnd && i < range.upperBound {
                    let e = Self.next(&c)
                    if i >= range.lowerBound { out.append(e) }
                    i += 1
                }
            }
        }
        return out
    }

    /// Every entry (tests).
    public var array: [PackedInboxEntry] { self[0..<count] }

    /// The newest entry that satisfies `match` and its index: blocks are searched newest first.
    public func last(where match: (PackedInboxEntry) -> Bool) -> (index: Int, entry: PackedInboxEntry)? {
        var b = blocks.blockCount - 1
        while b >= 0 {
            let found: (Int, PackedInboxEntry)? = blocks.withBlock(b) { buffer, first in
                var c = VarintCursor(buffer)
                var i = first
                var hit: (Int, PackedInboxEntry)?
                while !c.isAtEnd {
                    let e = Self.next(&c)
                    if match(e) { hit = (i, e) }
                    i += 1
                }
                return hit
            }
            if let found { return found }
            b -= 1
        }
        return nil
    }

    private static func next(_ c: inout VarintCursor) -> PackedInboxEntry {
        PackedInboxEntry(conversation: UInt32(truncatingIfNeeded: c.next()), receipt: UInt32(truncatingIfNeeded: c.next()), seq: c.next())
    }
}

extension InboxEntries {
    /// Rebuilds entries from a snapshot's parts; nil unless they are exactly `count` well-formed
    /// entries whose symbol numbers are below `symbols` (a bad one would trap later, on a live read).
    init?(bytes: [UInt8], blockStarts: [Int], count: Int, symbols: UInt32) {
        let valid = VarintBlocks.validate(bytes: bytes, blockStarts: blockStarts, count: count) { records, buffer in
            var c = VarintCursor(buffer)
            for _ in 0..<records {
                guard let conversation = c.read(), let receipt = c.read(), c.read() != nil,
                    conversation < UInt64(symbols), receipt <= UInt64(UInt32.max), (receipt & 0x7FFF_FFFF) <= UInt64(symbols)
                else { return false }
            }
            return c.isAtEnd
        }
        guard valid else { return nil }
        blocks = VarintBlocks(bytes: bytes, blockStarts: blockStarts, count: count)
    }
}
