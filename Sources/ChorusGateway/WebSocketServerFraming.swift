import NIOCore

/// The server's side of RFC 6455 framing: client frames in (masked, section 5.1), reassembled into
/// whole messages; unmasked server frames out, header and payload in one buffer. In place of NIO's
/// decoder, encoder, protocol-error handler and aggregator (four handlers and contexts a connection).
public enum WebSocketServerFraming {
    public static let continuation: UInt8 = 0x0
    public static let text: UInt8 = 0x1
    public static let binary: UInt8 = 0x2
    public static let close: UInt8 = 0x8
    public static let ping: UInt8 = 0x9
    public static let pong: UInt8 = 0xA

    /// One whole client message or control frame, unmasked.
    public enum Message: Equatable, Sendable {
        case text([UInt8])
        /// A binary message: its payload is dropped (the protocol has none).
        case binary
        case ping([UInt8])
        case pong
        /// A close frame; nil when it carried no status code.
        case close(code: UInt16?)
    }

    /// Why the client's bytes are not a WebSocket stream this server accepts; the connection is closed
    /// with `closeCode`.
    public enum Failure: Error, Equatable, Sendable {
        /// RFC 6455 framing broken (reserved bits or opcode, unmasked, bad control frame, bad
        /// continuation): 1002.
        case protocolError(String)
        /// A frame or a reassembled message over the limit: 1009.
        case tooBig

        public var closeCode: UInt16 {
            switch self {
            case .protocolError: CloseCode.protocolError
            case .tooBig: CloseCode.tooBig
            }
        }

        public var reason: String {
            switch self {
            case .protocolError(let why): why
            case .tooBig: "message over the frame limit"
            }
        }
    }

    /// Appends one unmasked server frame (FIN set) carrying `payload`.
    public static func writeFrame(opcode: UInt8, payload: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        out.writeInteger(0x80 | opcode)
        if payload.count < 126 {
            out.writeInteger(UInt8(payload.count))
        } else if payload.count <= Int(UInt16.max) {
            out.writeInteger(UInt8(126))
            out.writeInteger(UInt16(payload.count))
        } else {
            out.writeInteger(UInt8(127))
            out.writeInteger(UInt64(payload.count))
        }
        out.writeBytes(payload)
    }

    /// One server frame in a buffer of its own.
    public static func frame(opcode: UInt8, payload: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: payload.count + 10)
        payload.withUnsafeBytes { writeFrame(opcode: opcode, payload: $0, into: &out) }
        return out
    }

    /// A close frame: `code`, then `reason` cut to the 123 bytes a control frame has room for, at a
    /// character boundary (a client fails a connection whose close reason is not UTF-8).
    public static func closeFrame(code: UInt16, reason: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var text = Array(reason.utf8)
        if text.count > 123 {
            var cut = 123
            while text[cut] & 0xC0 == 0x80 { cut -= 1 }  // text[cut] starts the first character left out
            text.removeSubrange(cut...)
        }
        return frame(opcode: close, payload: withUnsafeBytes(of: code.bigEndian) { Array($0) } + text, allocator: allocator)
    }
}
