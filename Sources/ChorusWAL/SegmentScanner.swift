/// Where a valid block sits in a segment.
public struct BlockLocation: Equatable, Sendable {
    public var offset: Int
    public var header: BlockHeader
}

/// What a scan found after the last valid block of a segment.
public enum ScanEnd: Equatable, Sendable {
    /// Only zeros from `offset` to the end of the file: the preallocated free space.
    case clean(offset: Int)
    /// Bytes at `offset` are not a valid block. `garbageEnd` is one past the last non-zero byte;
    /// `nextValidBlock` is the offset of a valid block found further on, if any (damage, not a torn write).
    case bad(offset: Int, reason: BlockError, garbageEnd: Int, nextValidBlock: Int?)
    /// A block that passed its checksum but does not continue the LSN sequence.
    case lsnGap(offset: Int, expected: UInt64, found: UInt64)
}

/// Why a segment header is unusable.
public enum SegmentHeaderError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(size: Int)
    case badMagic
    case badVersion(UInt8)
    case checksumMismatch

    public var description: String {
        switch self {
        case .truncated(let n): "segment header cut short (\(n) bytes)"
        case .badMagic: "bad segment magic"
        case .badVersion(let v): "unsupported segment format version \(v)"
        case .checksumMismatch: "segment header CRC32C mismatch"
        }
    }
}

/// The result of scanning one segment file's bytes.
public struct SegmentScan: Equatable, Sendable {
    public var firstLSN: UInt64
    public var blocks: [BlockLocation]
    public var end: ScanEnd

    /// LSN after the last valid block.
    public var nextLSN: UInt64 { blocks.last?.header.nextLSN ?? firstLSN }
    /// Offset after the last valid block: where the next block goes.
    public var validEnd: Int { blocks.last.map { $0.offset + $0.header.totalSize } ?? WALFormat.segmentHeaderSize }
    /// Records in valid blocks.
    public var recordCount: Int { blocks.reduce(0) { $0 + $1.header.recordCount } }
}

/// Segment header encoding and the block-by-block scan. Pure: a buffer in, a description out.
public enum SegmentScanner {
    /// Segment header flag: the segment is sealed and was rewritten with the cold compression level.
    public static let flagCompacted: UInt8 = 1

    /// The 32-byte header that opens every segment file:
    /// magic u32 | version u8 | flags u8 | 0 u16 | first LSN u64 | 12 zero bytes | CRC32C u32.
    public static func encodeHeader(firstLSN: UInt64, flags: UInt8 = 0) -> [UInt8] {
        var h: [UInt8] = []
        h.reserveCapacity(WALFormat.segmentHeaderSize)
        h.appendLE(WALFormat.segmentMagic)
        h.append(WALFormat.version)
        h.append(contentsOf: [flags, 0, 0])
        h.appendLE(firstLSN)
        h.append(contentsOf: repeatElement(0, count: 12))
        h.appendLE(CRC32C.checksum(h))
        return h
    }

    /// Decodes a segment header; returns the segment's first LSN.
    public static func decodeHeader(_ buf: UnsafeRawBufferPointer) -> Result<UInt64, SegmentHeaderError> {
        guard buf.count >= WALFormat.segmentHeaderSize else { return .failure(.truncated(size: buf.count)) }
        guard buf.le(0, as: UInt32.self) == WALFormat.segmentMagic else { return .failure(.badMagic) }
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buf[0..<28]))
        guard crc == buf.le(28, as: UInt32.self) else { return .failure(.checksumMismatch) }
        guard buf[4] == WALFormat.version else { return .failure(.badVersion(buf[4])) }
        return .success(buf.le(8, as: UInt64.self))
    }

    /// The header's flags (meaningful once `decodeHeader` succeeded).
    public static func headerFlags(_ buf: UnsafeRawBufferPointer) -> UInt8 { buf.count > 5 ? buf[5] : 0 }

    /// Scans blocks from just after the header until the first byte that is not a valid block.
    /// Never decompresses and never trusts a length before the header's bounds check.
    public static func scan(_ buf: UnsafeRawBufferPointer, firstLSN: UInt64) -> SegmentScan {
        var blocks: [BlockLocation] = []
        var offset = WALFormat.segmentHeaderSize
        var expected = firstLSN
        while true {
            if buf.count - offset < WALFormat.blockHeaderSize, buf.isZero(offset..<buf.count) {
                return SegmentScan(firstLSN: firstLSN, blocks: blocks, end: .clean(offset: offset))
            }
            switch BlockCodec.validate(buf, at: offset) {
            case .success(let header):
                guard header.firstLSN == expected else {
                    return SegmentScan(
                        firstLSN: firstLSN, blocks: blocks,
                        end: .lsnGap(offset: offset, expected: expected, found: header.firstLSN))
                }
                blocks.append(BlockLocation(offset: offset, header: header))
                expected = header.nextLSN
                offset += header.totalSize
            case .failure(.zeroHeader) where buf.isZero(offset..<buf.count):
                return SegmentScan(firstLSN: firstLSN, blocks: blocks, end: .clean(offset: offset))
            case .failure(let reason):
                let end = ScanEnd.bad(
                    offset: offset, reason: reason, garbageEnd: buf.endOfNonZero(from: offset),
                    nextValidBlock: findValidBlock(buf, after: offset))
                return SegmentScan(firstLSN: firstLSN, blocks: blocks, end: end)
            }
        }
    }

    /// The first aligned offset after `offset` holding a block that passes validation, if any.
    /// This is what tells damage (valid data after a bad block) from a torn tail (nothing after it).
    public static func findValidBlock(_ buf: UnsafeRawBufferPointer, after offset: Int) -> Int? {
        var o = offset + WALFormat.alignment
        let last = buf.count - WALFormat.blockHeaderSize
        while o <= last {
            if buf.le(o, as: UInt32.self) == WALFormat.blockMagic, case .success = BlockCodec.validate(buf, at: o) {
                return o
            }
            o += WALFormat.alignment
        }
        return nil
    }
}
