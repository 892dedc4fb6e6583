/// Where encoders append bytes: a `[UInt8]`, or in the gateway the NIO buffer that goes to the
/// socket, so a server frame is written once, into the buffer that is sent.
public protocol ByteSink {
    mutating func appendByte(_ byte: UInt8)
    mutating func appendBytes(_ bytes: UnsafeRawBufferPointer)
}

extension Array: ByteSink where Element == UInt8 {
    @inlinable public mutating func appendByte(_ byte: UInt8) { append(byte) }
    @inlinable public mutating func appendBytes(_ bytes: UnsafeRawBufferPointer) { append(contentsOf: bytes) }
}

/// A sink over memory of fixed size (a socket buffer's free space): writes past the end are dropped
/// and `overflowed` is set, so the caller can start again with room enough. Per byte a bounds check
/// and a store, nothing else.
public struct BoundedByteSink: ByteSink {
    @usableFromInline let base: UnsafeMutableRawBufferPointer
    @usableFromInline var written = 0
    @usableFromInline var full = false
    /// Bytes written.
    public var count: Int { written }
    /// Whether a write did not fit (what was written is incomplete).
    public var overflowed: Bool { full }

    @inlinable public init(_ base: UnsafeMutableRawBufferPointer) { self.base = base }

    @inlinable public mutating func appendByte(_ byte: UInt8) {
        guard written < base.count else {
            full = true
            return
        }
        base[written] = byte
        written += 1
    }

    @inlinable public mutating func appendBytes(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count <= base.count - written else {
            full = true
            return
        }
        if let from = bytes.baseAddress { (base.baseAddress! + written).copyMemory(from: from, byteCount: bytes.count) }
        written += bytes.count
    }
}
