import NIOCore

/// The generator's side of RFC 6455 framing, as plain functions over `ByteBuffer`: server frames in
/// (never masked, section 5.1), masked client frames out. One decoder and one encoder in place of
/// NIO's `WebSocketFrameDecoder`/`WebSocketFrameEncoder` pair: no frame object, no header buffer
/// and no pipeline hop per frame, which at 10,000 messages/s was a sizeable share of the
/// generator's CPU on the machine it shares with the server.
public enum WebSocketClientFraming {
    /// One frame read from the server. `payload` is a slice of the read buffer (no copy).
    public struct Frame: Equatable, Sendable {
        public var fin: Bool
        public var opcode: UInt8
        public var payload: ByteBuffer
    }

    public enum Failure: Error, Equatable, Sendable {
        /// The server masked a frame (RFC 6455 5.1: the client must close).
        case maskedServerFrame
        /// A frame longer than the generator accepts.
        case tooLong(UInt64)
        /// Reserved bits set (no extension was negotiated).
        case reservedBits
        /// A text frame began while a fragmented message was unfinished.
        case interleavedMessage
    }

    public static let text: UInt8 = 0x1
    public static let continuation: UInt8 = 0x0
    public static let close: UInt8 = 0x8
    public static let ping: UInt8 = 0x9
    public static let pong: UInt8 = 0xA

    /// Takes the next whole frame off the front of `buffer`; nil (and `buffer` untouched) while it is
    /// incomplete. Frames longer than `maxPayload` throw.
    public static func nextFrame(_ buffer: inout ByteBuffer, maxPayload: Int) throws(Failure) -> Frame? {
        guard buffer.readableBytes >= 2, let b0 = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let b1 = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
        else { return nil }
        guard b0 & 0x70 == 0 else { throw .reservedBits }
        guard b1 & 0x80 == 0 else { throw .maskedServerFrame }
        var header = 2
        var length = UInt64(b1 & 0x7F)
        if length == 126 {
            guard let l = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) else { return nil }
            length = UInt64(l)
            header = 4
        } else if length == 127 {
            guard let l = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt64.self) else { return nil }
            length = l
            header = 10
        }
        guard length <= UInt64(maxPayload) else { throw .tooLong(length) }
        guard buffer.readableBytes >= header + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: header)
        let payload = buffer.readSlice(length: Int(length))!
        return Frame(fin: b0 & 0x80 != 0, opcode: b0 & 0x0F, payload: payload)
    }

    /// Appends one masked client frame (FIN set) carrying `payload`.
    public static func writeFrame(opcode: UInt8, payload: UnsafeRawBufferPointer, maskKey: UInt32, into out: inout ByteBuffer) {
        out.writeInteger(0x80 | opcode)
        if payload.count < 126 {
            out.writeInteger(UInt8(0x80 | payload.count))
        } else if payload.count <= Int(UInt16.max) {
            out.writeInteger(UInt8(0x80 | 126))
            out.writeInteger(UInt16(payload.count))
        } else {
            out.writeInteger(UInt8(0x80 | 127))
            out.writeInteger(UInt64(payload.count))
        }
        out.writeInteger(maskKey)
        withUnsafeBytes(of: maskKey.bigEndian) { key in
            _ = out.writeWithUnsafeMutableBytes(minimumWritableBytes: payload.count) { dst in
                for i in 0..<payload.count { dst[i] = payload[i] ^ key[i & 3] }
                return payload.count
            }
        }
    }

    /// The bytes a frame's payload had before masking (for tests and for reading our own frames).
    public static func unmask(_ masked: [UInt8], key: UInt32) -> [UInt8] {
        masked.enumerated().map { i, b in b ^ UInt8(truncatingIfNeeded: key >> (24 - 8 * (i & 3))) }
    }
}
