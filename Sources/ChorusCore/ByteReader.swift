/// Why a binary decoding failed. Decoders never trap on input; they throw one of these.
public enum ByteReaderError: Error, Equatable, Sendable {
    /// Fewer bytes remain than the field needs.
    case truncated(needed: Int, remaining: Int)
    /// A varint runs past 10 bytes or overflows 64 bits.
    case malformedVarint
    /// A length prefix is larger than the bound the caller allows.
    case lengthOverBound(length: UInt64, bound: Int)
    /// A string field is not valid UTF-8.
    case invalidUTF8
}

/// Reads little-endian integers and length-prefixed fields from a byte array, checking every bound.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    public mutating func readUInt8() throws(ByteReaderError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readUInt16() throws(ByteReaderError) -> UInt16 { try readLittleEndian() }
    public mutating func readUInt32() throws(ByteReaderError) -> UInt32 { try readLittleEndian() }
    public mutating func readUInt64() throws(ByteReaderError) -> UInt64 { try readLittleEndian() }
    public mutating func readInt64() throws(ByteReaderError) -> Int64 { Int64(bitPattern: try readLittleEndian()) }

    public mutating func readBool() throws(ByteReaderError) -> Bool { try readUInt8() != 0 }

    public mutating func readVarint() throws(ByteReaderError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for _ in 0..<10 {
            let byte = try readUInt8()
            let low = UInt64(byte & 0x7F)
            if shift == 63 && low > 1 { throw .malformedVarint }
            result |= low << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw .malformedVarint
    }

    /// Reads exactly `count` raw bytes.
    public mutating func readBytes(_ count: Int) throws(ByteReaderError) -> ArraySlice<UInt8> {
        try need(count)
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    /// Reads a varint length (checked against `bound` before anything is copied) and that many bytes.
    public mutating func readLengthPrefixed(bound: Int) throws(ByteReaderError) -> ArraySlice<UInt8> {
        let length = try readVarint()
        guard length <= UInt64(bound) else { throw .lengthOverBound(length: length, bound: bound) }
        return try readBytes(Int(length))
    }

    /// Reads a length-prefixed UTF-8 string of at most `bound` bytes.
    public mutating func readString(bound: Int) throws(ByteReaderError) -> String {
        let raw = try readLengthPrefixed(bound: bound)
        guard let s = String(validating: raw, as: UTF8.self) else { throw .invalidUTF8 }
        return s
    }

    private func need(_ count: Int) throws(ByteReaderError) {
        guard count >= 0, count <= remaining else { throw .truncated(needed: count, remaining: remaining) }
    }

    private mutating func readLittleEndian<T: FixedWidthInteger>() throws(ByteReaderError) -> T {
        let size = MemoryLayout<T>.size
        try need(size)
        var value: T = 0
        for i in 0..<size { value |= T(bytes[offset + i]) << (8 * i) }
        offset += size
        return value
    }
}
