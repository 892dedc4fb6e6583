/// Appends little-endian integers and length-prefixed fields to a byte array.
///
/// The building block of every binary encoding in Chorus (log records, snapshots, later the mesh).
/// Encodings are versioned by their owners; this type only lays out bytes.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    public mutating func write(_ value: UInt8) { bytes.append(value) }

    public mutating func write(_ value: UInt16) { appendLittleEndian(value) }

    public mutating func write(_ value: UInt32) { appendLittleEndian(value) }

    public mutating func write(_ value: UInt64) { appendLittleEndian(value) }

    public mutating func write(_ value: Int64) { appendLittleEndian(UInt64(bitPattern: value)) }

    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }

    /// LEB128 unsigned varint: 1 byte below 128, at most 10 bytes.
    public mutating func writeVarint(_ value: UInt64) { bytes.appendVarint(value) }

    /// Raw bytes with no length prefix.
    public mutating func write<C: Collection>(contentsOf raw: C) where C.Element == UInt8 {
        bytes.append(contentsOf: raw)
    }

    /// A varint length followed by the bytes.
    public mutating func writeLengthPrefixed<C: Collection>(_ raw: C) where C.Element == UInt8 {
        writeVarint(UInt64(raw.count))
        bytes.append(contentsOf: raw)
    }

    /// A varint length followed by the UTF-8 bytes of `string`.
    public mutating func writeString(_ string: String) {
        var s = string
        s.withUTF8 { writeLengthPrefixed($0) }
    }

    /// A varint length followed by `text`, an ASCII `separator` and `number` in decimal (a message
    /// id, `conversationId:seq`), written without building the string.
    public mutating func writeString(_ text: String, _ separator: UInt8, _ number: UInt64) {
        var s = text
        s.withUTF8 { utf8 in
            writeVarint(UInt64(utf8.count + 1 + DecimalDigits.digitCount(number)))
            bytes.append(contentsOf: utf8)
        }
        bytes.append(separator)
        DecimalDigits.append(number, to: &bytes)
    }

    /// Overwrites four bytes at `offset` (used to patch lengths and checksums).
    public mutating func patch(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= bytes.count, "patch out of range")
        withUnsafeBytes(of: value.littleEndian) { raw in
            for i in 0..<4 { bytes[offset + i] = raw[i] }
        }
    }

    private mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

extension [UInt8] {
    /// Appends `value` as an LEB128 unsigned varint (what `ByteWriter.writeVarint` writes).
    public mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        append(UInt8(v))
    }
}
