import ChorusCore

/// Records coded as LEB128 varints, in blocks of 64: one record is found by decoding at most one
/// block. The history index and the inboxes keep every entry in memory (DESIGN.md: state lives in
/// memory), so their entries are stored this way: 2-6 bytes each instead of 8-16. Pure.
///
/// Invariant: block `b` holds records `64b ..< 64(b+1)` and starts at byte `start(ofBlock: b)`;
/// block 0 starts at 0, so a sequence of at most 64 records needs no table (one allocation).
struct VarintBlocks: Sendable, Equatable {
    static let blockShift = 6
    static let blockSize = 1 << blockShift

    private(set) var bytes: [UInt8] = []
    /// Byte offset of block `i + 1`.
    private(set) var blockStarts: [Int] = []
    private(set) var count = 0

    init() {}

    /// Trusted parts (a decoder checks them with `validate` first).
    init(bytes: [UInt8], blockStarts: [Int], count: Int) {
        self.bytes = bytes
        self.blockStarts = blockStarts
        self.count = count
    }

    var blockCount: Int { (count + Self.blockSize - 1) >> Self.blockShift }

    func start(ofBlock b: Int) -> Int { b == 0 ? 0 : blockStarts[b - 1] }

    func end(ofBlock b: Int) -> Int { b + 1 < blockCount ? blockStarts[b] : bytes.count }

    /// Counts a new record and returns whether it opens a block; then append its varints.
    mutating func beginRecord() -> Bool {
        let opens = count & (Self.blockSize - 1) == 0
        if opens && count > 0 { blockStarts.append(bytes.count) }
        // Room for a few records at once: growing from 1 byte would allocate two or three times for
        // the first two entries (most inboxes and conversations are that small).
        if count == 0 && bytes.capacity == 0 { bytes.reserveCapacity(16) }
        count += 1
        return opens
    }

    mutating func append(varint value: UInt64) { bytes.appendVarint(value) }

    /// Replaces block `b`'s bytes (same record count) and moves the blocks after it.
    mutating func replaceBlock(_ b: Int, with coded: [UInt8]) {
        let range = start(ofBlock: b)..<end(ofBlock: b)
        let shift = coded.count - range.count
        bytes.replaceSubrange(range, with: coded)
        if shift != 0 { for i in b..<blockStarts.count { blockStarts[i] += shift } }
    }

    /// Calls `body` with block `b`'s bytes and the index of its first record.
    func withBlock<R>(_ b: Int, _ body: (UnsafeBufferPointer<UInt8>, Int) -> R) -> R {
        let range = start(ofBlock: b)..<end(ofBlock: b)
        return bytes.withUnsafeBufferPointer { all in
            body(UnsafeBufferPointer(rebasing: all[range]), b << Self.blockShift)
        }
    }

    /// Gives back spare capacity (state kept while idle). `Array(bytes)` would share the old
    /// storage, capacity and all: only a fresh array of the right size lets it go.
    mutating func shrink() {
        if bytes.capacity > bytes.count { bytes = Self.exactCopy(bytes) }
        if blockStarts.capacity > blockStarts.count { blockStarts = Self.exactCopy(blockStarts) }
    }

    private static func exactCopy<T>(_ values: [T]) -> [T] {
        var copy: [T] = []
        copy.reserveCapacity(values.count)
        copy.append(contentsOf: values)
        return copy
    }

    /// Checks decoded parts: every block starts inside the bytes, in order, and `decodeBlock`
    /// (records in block, the block's bytes) returns false for bytes that are not exactly its records.
    static func validate(
        bytes: [UInt8], blockStarts: [Int], count: Int, decodeBlock: (Int, UnsafeBufferPointer<UInt8>) -> Bool
    ) -> Bool {
        guard count >= 0, blockStarts.count == max(0, (count + blockSize - 1) >> blockShift - 1) else { return false }
        var previous = 0
        for s in blockStarts {
            guard s > previous, s < bytes.count else { return false }
            previous = s
        }
        guard count > 0 || bytes.isEmpty else { return false }
        let blocks = VarintBlocks(bytes: bytes, blockStarts: blockStarts, count: count)
        for b in 0..<blocks.blockCount {
            let records = min(blockSize, count - (b << blockShift))
            guard blocks.withBlock(b, { buffer, _ in decodeBlock(records, buffer) }) else { return false }
        }
        return true
    }
}

/// A cursor over one block's varints. Reads past the end return nil (only checked input may use
/// `next()`'s force-unwrapped form).
struct VarintCursor {
    let buffer: UnsafeBufferPointer<UInt8>
    var offset = 0

    init(_ buffer: UnsafeBufferPointer<UInt8>) { self.buffer = buffer }

    var isAtEnd: Bool { offset == buffer.count }

    mutating func read() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < buffer.count, shift < 64 {
            let byte = buffer[offset]
            offset += 1
            if shift == 63 && byte > 1 { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        return nil
    }

    /// `read()` on bytes this process wrote or `VarintBlocks.validate` accepted.
    mutating func next() -> UInt64 { read()! }
}

extension Int64 {
    /// ZigZag: small magnitudes of either sign become small unsigned numbers.
    var zigZag: UInt64 { UInt64(bitPattern: (self << 1) ^ (self >> 63)) }
}

extension UInt64 {
    var unZigZag: Int64 { Int64(bitPattern: self >> 1) ^ -Int64(bitPattern: self & 1) }
}
