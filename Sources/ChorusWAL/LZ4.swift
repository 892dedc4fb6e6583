import CLZ4

/// Thin wrapper over liblz4's block API. Callers only hand it bytes that passed their checksum.
enum LZ4 {
    /// Worst-case compressed size for `count` input bytes (0 if `count` is beyond LZ4's limit).
    static func compressBound(_ count: Int) -> Int { Int(LZ4_compressBound(Int32(clamping: count))) }

    /// Compresses `source` into `destination` (capacity at least `compressBound`); returns the size
    /// written, or nil if liblz4 refused.
    static func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int? {
        guard source.count <= Int(LZ4_MAX_INPUT_SIZE), let src = source.baseAddress, let dst = destination.baseAddress
        else { return nil }
        let n = LZ4_compress_default(
            src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
            Int32(source.count), Int32(clamping: destination.count))
        return n > 0 ? Int(n) : nil
    }

    /// Decompresses `source` into exactly `destination.count` bytes; false if the input is malformed
    /// or produces any other size.
    static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        guard let src = source.baseAddress, let dst = destination.baseAddress else {
            return source.isEmpty && destination.isEmpty
        }
        let n = LZ4_decompress_safe(
            src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
            Int32(clamping: source.count), Int32(clamping: destination.count))
        return n >= 0 && Int(n) == destination.count
    }
}

/// Block compression with a reusable liblz4 state. Level 0 is LZ4's fast mode; 3...12 are LZ4HC
/// levels (slower, smaller). Not thread-safe: one per writer.
public final class BlockCompressor {
    public let level: Int
    private let state: UnsafeMutableRawPointer?
    /// Output buffer, grown to the largest block seen.
    var output: [UInt8] = []

    public init(level: Int = 0) {
        self.level = level
        state = level >= Int(LZ4HC_CLEVEL_MIN)
            ? UnsafeMutableRawPointer.allocate(byteCount: Int(LZ4_sizeofStateHC()), alignment: 16) : nil
    }

    deinit { state?.deallocate() }

    /// Compresses `source` into `output`; returns the compressed size, or nil if liblz4 refused.
    func compress(_ source: UnsafeRawBufferPointer) -> Int? {
        let bound = LZ4.compressBound(source.count)
        if output.count < bound { output = [UInt8](repeating: 0, count: bound) }
        guard let state else {
            return output.withUnsafeMutableBytes { LZ4.compress(source, into: $0) }
        }
        guard source.count <= Int(LZ4_MAX_INPUT_SIZE), let src = source.baseAddress else { return nil }
        let n = output.withUnsafeMutableBytes { dst in
            LZ4_compress_HC_extStateHC(
                state, src.assumingMemoryBound(to: CChar.self), dst.baseAddress!.assumingMemoryBound(to: CChar.self),
                Int32(source.count), Int32(clamping: dst.count), Int32(level))
        }
        return n > 0 ? Int(n) : nil
    }
}
