import ChorusCore

extension VarintBlocks {
    /// The count, the coded bytes, then the block starts: as many as the count implies, so a
    /// sequence of at most 64 records writes none.
    func encode(into w: inout ByteWriter) {
        w.writeVarint(UInt64(count))
        w.writeArray(bytes)
        blockStarts.withUnsafeBytes { w.write(contentsOf: $0) }
    }

    /// Reads what `encode` wrote, bounds checked but not yet validated (`validate` does that).
    static func readParts(from r: inout ByteReader, bound: Int) throws -> (bytes: [UInt8], blockStarts: [Int], count: Int) {
        let count = try r.readVarint()
        guard count <= UInt64(bound) else { throw EngineSnapshotError.invalid("\(count) coded entries") }
        let bytes = try r.readArray(of: UInt8.self, bound: bound)
        let starts = max(0, (Int(count) + blockSize - 1) >> blockShift - 1)
        guard starts > 0 else { return (bytes, [], Int(count)) }
        let raw = try r.readBytes(starts * MemoryLayout<Int>.stride)
        let blockStarts = [Int](unsafeUninitializedCapacity: starts) { buffer, initialized in
            raw.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }
            initialized = starts
        }
        return (bytes, blockStarts, Int(count))
    }
}
