/// A conversation's history index: the LSN of each message by `seq - 1`, so history reads the log
/// directly. Each block's first LSN is a varint, the rest ZigZag deltas from the one before: a
/// conversation's LSNs rise, so an entry costs about 2 bytes instead of 8. Pure.
///
/// Appends (the next seq) cost one varint; setting an earlier seq, or one past the end (the gap
/// holds 0, "unknown"), re-codes one block.
public struct LSNIndex: Sendable, Equatable {
    private(set) var blocks = VarintBlocks()
    /// The newest entry, what the next append is coded against.
    private var last: UInt64 = 0

    public init() {}

    public init(_ lsns: [UInt64]) {
        for l in lsns { append(l) }
    }

    public var count: Int { blocks.count }

    public var isEmpty: Bool { blocks.count == 0 }

    /// Every entry, in order (tests, and snapshots of older formats).
    public var array: [UInt64] {
        var all: [UInt64] = []
        all.reserveCapacity(count)
        for b in 0..<blocks.blockCount { all += decode(block: b) }
        return all
    }

    /// The LSN at `index`, nil outside the index (0 is a gap: not known here).
    public subscript(index: Int) -> UInt64? {
        guard index >= 0, index < count else { return nil }
        if index == count - 1 { return last }
        return blocks.withBlock(index >> VarintBlocks.blockShift) { buffer, first in
            var c = VarintCursor(buffer)
            var value = c.next()
            for _ in first..<index { value = UInt64(bitPattern: Int64(bitPattern: value) &+ c.next().unZigZag) }
            return value
        }
    }

    public mutating func append(_ lsn: UInt64) {
        if blocks.beginRecord() {
            blocks.append(varint: lsn)
        } else {
            blocks.append(varint: (Int64(bitPattern: lsn) &- Int64(bitPattern: last)).zigZag)
        }
        last = lsn
    }

    /// Sets the entry at `index`, growing the index with gaps (0) up to it.
    public mutating func set(_ index: Int, to lsn: UInt64) {
        precondition(index >= 0)
        if index == count { return append(lsn) }
        while count < index { append(0) }
        if index == count { return append(lsn) }
        let b = index >> VarintBlocks.blockShift
        var values = decode(block: b)
        values[index - (b << VarintBlocks.blockShift)] = lsn
        blocks.replaceBlock(b, with: Self.code(values))
        if index == count - 1 { last = lsn }
    }

    /// Gives back spare capacity (an idle conversation's state).
    public mutating func shrink() { blocks.shrink() }

    private func decode(block b: Int) -> [UInt64] {
        blocks.withBlock(b) { buffer, _ in
            var c = VarintCursor(buffer)
            var values = [c.next()]
            while !c.isAtEnd { values.append(UInt64(bitPattern: Int64(bitPattern: values.last!) &+ c.next().unZigZag)) }
            return values
        }
    }

    private static func code(_ values: [UInt64]) -> [UInt8] {
        var one = VarintBlocks()
        for (i, v) in values.enumerated() {
            _ = one.beginRecord()
            one.append(varint: i == 0 ? v : (Int64(bitPattern: v) &- Int64(bitPattern: values[i - 1])).zigZag)
        }
        return one.bytes
    }
}

extension LSNIndex {
    /// Rebuilds an index from a snapshot's parts; nil unless they are exactly `count` well-formed entries.
    init?(bytes: [UInt8], blockStarts: [Int], count: Int) {
        var newest: UInt64 = 0
        let valid = VarintBlocks.validate(bytes: bytes, blockStarts: blockStarts, count: count) { records, buffer in
            var c = VarintCursor(buffer)
            guard var value = c.read() else { return false }
            for _ in 1..<max(records, 1) {
                guard let delta = c.read() else { return false }
                value = UInt64(bitPattern: Int64(bitPattern: value) &+ delta.unZigZag)
            }
            newest = value
            return c.isAtEnd
        }
        guard valid else { return nil }
        blocks = VarintBlocks(bytes: bytes, blockStarts: blockStarts, count: count)
        last = newest
    }
}
