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

    /// Every entry, in order (tests).
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
            for _ in first..<index { value = Self.after(value, delta: c.next()) }
            return value
        }
    }

    public mutating func append(_ lsn: UInt64) {
        blocks.append(varint: blocks.beginRecord() ? lsn : (Int64(bitPattern: lsn) &- Int64(bitPattern: last)).zigZag)
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
        blocks.replaceBlock(b, with: LSNIndex(values).blocks.bytes)  // at most 64 values: one block
        if index == count - 1 { last = lsn }
    }

    /// Gives back spare capacity (an idle conversation's state).
    public mutating func shrink() { blocks.shrink() }

    private func decode(block b: Int) -> [UInt64] {
        blocks.withBlock(b) { buffer, _ in
            var c = VarintCursor(buffer)
            var values = [c.next()]
            while !c.isAtEnd { values.append(Self.after(values.last!, delta: c.next())) }
            return values
        }
    }

    /// The entry after `value`, given the ZigZag delta coded for it.
    static func after(_ value: UInt64, delta: UInt64) -> UInt64 {
        UInt64(bitPattern: Int64(bitPattern: value) &+ delta.unZigZag)
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
                value = Self.after(value, delta: delta)
            }
            newest = value
            return c.isAtEnd
        }
        guard valid else { return nil }
        blocks = VarintBlocks(bytes: bytes, blockStarts: blockStarts, count: count)
        last = newest
    }
}
