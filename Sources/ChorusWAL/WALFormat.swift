/// On-disk constants of the log. Changing any of them changes the format version.
///
/// Segment file: a 32-byte segment header, then 8-byte-aligned blocks, then zeros (preallocated).
/// Block: a 32-byte header, the stored payload (LZ4 or raw), zero padding to 8 bytes.
/// Block payload (before compression): records back to back, each `kind u16 | length u32 | bytes`;
/// the LSN of a record is the block's first LSN plus its position.
public enum WALFormat {
    /// "CHWL" read as little-endian bytes.
    public static let blockMagic: UInt32 = 0x4C57_4843
    /// "CHWS" read as little-endian bytes.
    public static let segmentMagic: UInt32 = 0x5357_4843
    /// "CHSN" read as little-endian bytes.
    public static let snapshotMagic: UInt32 = 0x4E53_4843
    public static let version: UInt8 = 1

    public static let blockHeaderSize = 32
    public static let segmentHeaderSize = 32
    public static let snapshotHeaderSize = 40
    public static let recordHeaderSize = 6
    /// Blocks start at multiples of this, so a scan can look for headers at aligned offsets only.
    public static let alignment = 8

    /// Block flag: the payload is LZ4-compressed (otherwise stored raw).
    public static let flagLZ4: UInt8 = 1

    /// Hard bound on one record's payload. Appends above it are refused; decoding refuses it too.
    public static let maxRecordPayloadBytes = 1 << 20
    /// Hard bound on a block's uncompressed size, checked before any allocation on read.
    public static let maxBlockRawBytes = 8 << 20

    /// Rounds `n` up to the block alignment.
    @inline(__always)
    static func aligned(_ n: Int) -> Int { (n + alignment - 1) & ~(alignment - 1) }

    /// Segment file name for a segment whose first record is `lsn`: 20 zero-padded decimal digits.
    public static func segmentName(firstLSN lsn: UInt64) -> String {
        let digits = String(lsn)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".wal"
    }

    /// The first LSN named by a segment file name, or nil if the name is not a segment's.
    public static func parseSegmentName(_ name: String) -> UInt64? {
        guard name.hasSuffix(".wal") else { return nil }
        let stem = name.dropLast(4)
        guard stem.count == 20, stem.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return UInt64(stem)
    }
}

/// Little-endian loads and stores on raw buffers, bounds checked by the callers.
extension UnsafeRawBufferPointer {
    @inline(__always)
    func le<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// True when every byte in `range` is zero.
    func isZero(_ range: Range<Int>) -> Bool {
        var i = range.lowerBound
        let end = range.upperBound
        while i + 8 <= end {
            if loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
            i += 8
        }
        while i < end {
            if self[i] != 0 { return false }
            i += 1
        }
        return true
    }

    /// One past the last non-zero byte at or after `start`, or `start` if there is none.
    func endOfNonZero(from start: Int) -> Int {
        var i = count
        while i > start {
            if i - 8 >= start, loadUnaligned(fromByteOffset: i - 8, as: UInt64.self) == 0 {
                i -= 8
                continue
            }
            if self[i - 1] != 0 { return i }
            i -= 1
        }
        return start
    }
}

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { raw in
            for i in 0..<raw.count { self[offset + i] = raw[i] }
        }
    }
}
