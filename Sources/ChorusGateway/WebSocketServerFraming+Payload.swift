import ChorusCore
import NIOCore

/// Server frames written straight into the buffer that is sent: the payload goes in after room for
/// the header, and the header is put in front once the payload's length is known. One allocation a
/// frame (the buffer), no copy. Sessions pass whole frames (`frameText` done) to their outlet.
extension WebSocketServerFraming {
    /// Room kept in front of a payload: a header is 2 bytes below 126 bytes of payload, 4 below 64 KiB.
    static let headerRoom = 4

    /// An empty payload buffer with room for `capacity` bytes and a header.
    public static func payloadBuffer(capacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var b = allocator.buffer(capacity: capacity + headerRoom)
        b.moveWriterIndex(forwardBy: headerRoom)
        b.moveReaderIndex(forwardBy: headerRoom)
        return b
    }

    /// A text frame whose payload `write` puts straight into the buffer's memory. `capacity` is the
    /// expected payload size; a payload that does not fit it (strings full of escapes) is written
    /// again into twice the room, until it fits. `write` must write the same bytes every time.
    public static func textFrame(capacity: Int, allocator: ByteBufferAllocator, _ write: (inout BoundedByteSink) -> Void) -> ByteBuffer {
        var room = max(capacity, 16)
        while true {
            var frame = payloadBuffer(capacity: room, allocator: allocator)
            var fits = true
            frame.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { raw in
                var sink = BoundedByteSink(UnsafeMutableRawBufferPointer(rebasing: raw[..<room]))
                write(&sink)
                fits = !sink.overflowed
                return fits ? sink.count : 0
            }
            if fits {
                frameText(&frame)
                return frame
            }
            room *= 2
        }
    }

    /// Makes a payload from `payloadBuffer` a text frame (FIN set): the header goes into its room,
    /// in place (the buffer must not be shared, or NIO copies it). A payload of 64 KiB or more (none
    /// of the server's own frames) is copied behind a long header.
    public static func frameText(_ buffer: inout ByteBuffer) {
        let n = buffer.readableBytes
        let start = buffer.readerIndex
        if n < 126, start >= 2 {
            buffer.setInteger(0x80 | text, at: start - 2)
            buffer.setInteger(UInt8(n), at: start - 1)
            buffer.moveReaderIndex(to: start - 2)
        } else if n <= Int(UInt16.max), start >= 4 {
            buffer.setInteger(0x80 | text, at: start - 4)
            buffer.setInteger(UInt8(126), at: start - 3)
            buffer.setInteger(UInt16(n), at: start - 2)
            buffer.moveReaderIndex(to: start - 4)
        } else {
            var out = ByteBufferAllocator().buffer(capacity: n + 10)
            buffer.withUnsafeReadableBytes { writeFrame(opcode: text, payload: $0, into: &out) }
            buffer = out
        }
    }

    /// The payload of an unmasked server frame (its header skipped).
    public static func payload(ofFrame frame: ByteBuffer) -> ByteBuffer {
        var f = frame
        guard let lengthByte = f.getInteger(at: f.readerIndex + 1, as: UInt8.self) else { return f }
        let header = switch lengthByte & 0x7F {
        case 126: 4
        case 127: 10
        default: 2
        }
        f.moveReaderIndex(forwardBy: min(header, f.readableBytes))
        return f
    }
}
