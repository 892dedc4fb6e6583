import ChorusCore

/// The fixed header of a block, as decoded and bounds-checked.
public struct BlockHeader: Equatable, Sendable {
    public var flags: UInt8
    public var rawLength: Int
    public var storedLength: Int
    public var firstLSN: UInt64
    public var recordCount: Int
    public var checksum: UInt32

    /// Header, stored payload and padding.
    public var totalSize: Int { WALFormat.aligned(WALFormat.blockHeaderSize + storedLength) }
    public var isCompressed: Bool { flags & WALFormat.flagLZ4 != 0 }
    /// The LSN after this block's last record.
    public var nextLSN: UInt64 { firstLSN &+ UInt64(recordCount) }
}

/// Why bytes at an offset are not a valid block. Nothing past the header is trusted until the
/// checksum has matched.
public enum BlockError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncatedHeader
    case zeroHeader
    case badMagic(UInt32)
    case badVersion(UInt8)
    case badFlags(UInt8)
    case lengthOverBound(field: String, value: Int, bound: Int)
    case extendsPastEnd(needed: Int, available: Int)
    case checksumMismatch(stored: UInt32, computed: UInt32)
    case paddingNotZero
    case decompressionFailed
    case recordFraming(String)

    public var description: String {
        switch self {
        case .truncatedHeader: "block header cut short"
        case .zeroHeader: "zero bytes where a block header should be, followed by non-zero bytes"
        case .badMagic(let m): "bad block magic 0x\(String(m, radix: 16))"
        case .badVersion(let v): "unsupported block format version \(v)"
        case .badFlags(let f): "unknown block flags 0x\(String(f, radix: 16))"
        case .lengthOverBound(let field, let value, let bound): "\(field) \(value) over bound \(bound)"
        case .extendsPastEnd(let needed, let available): "block needs \(needed) bytes, \(available) remain"
        case .checksumMismatch(let s, let c):
            "CRC32C mismatch (stored 0x\(String(s, radix: 16)), computed 0x\(String(c, radix: 16)))"
        case .paddingNotZero: "non-zero padding after block"
        case .decompressionFailed: "LZ4 payload does not decompress to its declared size"
        case .recordFraming(let why): "record framing: \(why)"
        }
    }
}

/// Encodes and decodes blocks. Pure: bytes in, bytes or errors out.
public enum BlockCodec {
    /// Appends one record's framing and payload to a block's raw (uncompressed) bytes.
    @inline(__always)
    public static func appendRecord(kind: UInt16, payload: [UInt8], to raw: inout [UInt8]) {
        raw.appendLE(kind)
        raw.appendLE(UInt32(payload.count))
        raw.append(contentsOf: payload)
    }

    /// Appends a complete block (header, stored payload, padding) holding `recordCount` records
    /// framed in `raw` to `out`. Compresses with LZ4 unless storing raw is smaller.
    public static func encodeBlock(
        firstLSN: UInt64, recordCount: Int, raw: [UInt8], into out: inout [UInt8], compressor: BlockCompressor
    ) {
        precondition(raw.count <= WALFormat.maxBlockRawBytes, "block over the hard bound")
        let compressed = raw.withUnsafeBytes { compressor.compress($0) }
        let useLZ4 = compressed.map { $0 < raw.count } ?? false
        let storedLength = useLZ4 ? compressed! : raw.count

        let start = out.count
        out.appendLE(WALFormat.blockMagic)
        out.append(WALFormat.version)
        out.append(useLZ4 ? WALFormat.flagLZ4 : 0)
        out.appendLE(UInt16(0))
        out.appendLE(UInt32(raw.count))
        out.appendLE(UInt32(storedLength))
        out.appendLE(firstLSN)
        out.appendLE(UInt32(recordCount))
        out.appendLE(UInt32(0))  // checksum, patched below
        if useLZ4 { out.append(contentsOf: compressor.output[0..<storedLength]) } else { out.append(contentsOf: raw) }
        let crc = out.withUnsafeBytes { all -> UInt32 in
            let head = UnsafeRawBufferPointer(rebasing: all[start..<(start + 28)])
            let body = UnsafeRawBufferPointer(rebasing: all[(start + 32)...])
            return CRC32C.checksum(body, continuing: CRC32C.checksum(head))
        }
        out.storeLE(crc, at: start + 28)
        let padding = WALFormat.aligned(out.count - start) - (out.count - start)
        out.append(contentsOf: repeatElement(0, count: padding))
    }

    /// Parses and bounds-checks the header at `offset`. Checks nothing the checksum covers beyond it.
    public static func parseHeader(_ buf: UnsafeRawBufferPointer, at offset: Int) -> Result<BlockHeader, BlockError> {
        guard offset >= 0, buf.count - offset >= WALFormat.blockHeaderSize else { return .failure(.truncatedHeader) }
        let magic = buf.le(offset, as: UInt32.self)
        guard magic == WALFormat.blockMagic else {
            return .failure(magic == 0 && buf.isZero(offset..<(offset + 32)) ? .zeroHeader : .badMagic(magic))
        }
        let version = buf[offset + 4]
        guard version == WALFormat.version else { return .failure(.badVersion(version)) }
        let flags = buf[offset + 5]
        guard flags & ~WALFormat.flagLZ4 == 0, buf.le(offset + 6, as: UInt16.self) == 0 else {
            return .failure(.badFlags(flags))
        }
        let raw = Int(buf.le(offset + 8, as: UInt32.self))
        let stored = Int(buf.le(offset + 12, as: UInt32.self))
        let count = Int(buf.le(offset + 24, as: UInt32.self))
        guard raw <= WALFormat.maxBlockRawBytes else {
            return .failure(.lengthOverBound(field: "raw length", value: raw, bound: WALFormat.maxBlockRawBytes))
        }
        let storedBound = flags & WALFormat.flagLZ4 != 0 ? LZ4.compressBound(raw) : raw
        guard stored <= storedBound, flags & WALFormat.flagLZ4 != 0 || stored == raw else {
            return .failure(.lengthOverBound(field: "stored length", value: stored, bound: storedBound))
        }
        let countBound = raw / WALFormat.recordHeaderSize
        guard count >= 1, count <= countBound else {
            return .failure(.lengthOverBound(field: "record count", value: count, bound: countBound))
        }
        return .success(BlockHeader(
            flags: flags, rawLength: raw, storedLength: stored, firstLSN: buf.le(offset + 16, as: UInt64.self),
            recordCount: count, checksum: buf.le(offset + 28, as: UInt32.self)))
    }

    /// Fully validates the block at `offset`: header bounds, extent, checksum and zero padding.
    public static func validate(_ buf: UnsafeRawBufferPointer, at offset: Int) -> Result<BlockHeader, BlockError> {
        let header: BlockHeader
        switch parseHeader(buf, at: offset) {
        case .failure(let e): return .failure(e)
        case .success(let h): header = h
        }
        let available = buf.count - offset
        guard header.totalSize <= available else {
            return .failure(.extendsPastEnd(needed: header.totalSize, available: available))
        }
        let head = UnsafeRawBufferPointer(rebasing: buf[offset..<(offset + 28)])
        let bodyStart = offset + WALFormat.blockHeaderSize
        let body = UnsafeRawBufferPointer(rebasing: buf[bodyStart..<(bodyStart + header.storedLength)])
        let crc = CRC32C.checksum(body, continuing: CRC32C.checksum(head))
        guard crc == header.checksum else { return .failure(.checksumMismatch(stored: header.checksum, computed: crc)) }
        guard buf.isZero((bodyStart + header.storedLength)..<(offset + header.totalSize)) else {
            return .failure(.paddingNotZero)
        }
        return .success(header)
    }

    /// Decodes the records of a block that passed `validate`. `payload` is the stored payload.
    /// Calls `body` once per record in LSN order.
    public static func decodeRecords(
        header: BlockHeader, payload: UnsafeRawBufferPointer, scratch: inout [UInt8],
        _ body: (JournalRecord) throws -> Void
    ) throws {
        if header.isCompressed {
            if scratch.count < header.rawLength { scratch = [UInt8](repeating: 0, count: header.rawLength) }
            let ok = scratch.withUnsafeMutableBytes { dst in
                LZ4.decompress(payload, into: UnsafeMutableRawBufferPointer(rebasing: dst[0..<header.rawLength]))
            }
            guard ok else { throw BlockError.decompressionFailed }
            try scratch.withUnsafeBytes { raw in
                try decodeRaw(header: header, raw: UnsafeRawBufferPointer(rebasing: raw[0..<header.rawLength]), body)
            }
        } else {
            try decodeRaw(header: header, raw: payload, body)
        }
    }

    private static func decodeRaw(
        header: BlockHeader, raw: UnsafeRawBufferPointer, _ body: (JournalRecord) throws -> Void
    ) throws {
        var offset = 0
        for i in 0..<header.recordCount {
            guard raw.count - offset >= WALFormat.recordHeaderSize else { throw BlockError.recordFraming("record \(i) header cut short") }
            let kind = raw.le(offset, as: UInt16.self)
            let length = Int(raw.le(offset + 2, as: UInt32.self))
            offset += WALFormat.recordHeaderSize
            guard length <= WALFormat.maxRecordPayloadBytes, length <= raw.count - offset else {
                throw BlockError.recordFraming("record \(i) length \(length) out of bounds")
            }
            let payload = [UInt8](UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
            offset += length
            try body(JournalRecord(lsn: header.firstLSN &+ UInt64(i), kind: kind, payload: payload))
        }
        guard offset == raw.count else { throw BlockError.recordFraming("\(raw.count - offset) trailing bytes") }
    }
}
