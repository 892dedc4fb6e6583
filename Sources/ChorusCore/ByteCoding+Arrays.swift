// Arrays of fixed-size values as one block of memory (snapshots hold tens of millions of them).
// The layout is the host's; Chorus runs on little-endian hosts (x86_64, arm64) and a snapshot is
// read back only where it was written or on a host of the same byte order.

extension ByteWriter {
    /// A varint element count followed by the elements' bytes.
    public mutating func writeArray<T: BitwiseCopyable>(_ values: [T]) {
        writeVarint(UInt64(values.count))
        values.withUnsafeBytes { write(contentsOf: $0) }
    }
}

extension ByteReader {
    /// Reads what `writeArray` wrote: at most `bound` elements, checked before anything is copied.
    public mutating func readArray<T: BitwiseCopyable>(of: T.Type, bound: Int) throws(ByteReaderError) -> [T] {
        let count = try readVarint()
        guard count <= UInt64(bound) else { throw .lengthOverBound(length: count, bound: bound) }
        let raw = try readBytes(Int(count) * MemoryLayout<T>.stride)
        return [T](unsafeUninitializedCapacity: Int(count)) { buffer, initialized in
            raw.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: src)
            }
            initialized = Int(count)
        }
    }
}
