import NIOCore

extension WebSocketServerFraming {
    /// Cuts a client's byte stream into `Message`s: checks each frame header (RFC 6455 5.2-5.5),
    /// unmasks, and reassembles fragmented messages, with control frames allowed between fragments.
    /// Holds bytes only while a frame or message is incomplete, so an idle connection holds none.
    /// Bounds: a frame or message over `maxMessageBytes` or `maxFragments` fails with `.tooBig` as soon
    /// as its header says so, before its payload is buffered.
    public struct Parser {
        public let maxMessageBytes: Int
        public let maxFragments: Int
        private var pending: ByteBuffer?
        private var partial: Partial?

        /// A fragmented message so far: its text (binary payloads are not kept), size and frame count.
        fileprivate struct Partial {
            var isText: Bool
            var bytes: [UInt8]
            var total: Int
            var fragments: Int
        }

        public init(maxMessageBytes: Int, maxFragments: Int = 1024) {
            self.maxMessageBytes = maxMessageBytes
            self.maxFragments = maxFragments
        }

        /// Bytes buffered while a frame is incomplete (zero between frames).
        public var bufferedBytes: Int { pending?.readableBytes ?? 0 }

        /// Adds bytes read from the socket; `next()` then returns what they complete.
        public mutating func append(_ bytes: ByteBuffer) {
            if pending == nil || pending!.readableBytes == 0 {
                pending = bytes
            } else {
                pending!.writeImmutableBuffer(bytes)
            }
        }

        /// The next whole message, or nil until more bytes arrive. After a failure the stream is not
        /// parsed further (the connection closes).
        public mutating func next() throws(Failure) -> Message? {
            while var buffer = pending {
                guard let header = try Header(buffer, partial: partial, limit: maxMessageBytes) else { return nil }
                guard buffer.readableBytes >= header.size + header.length else { return nil }
                buffer.moveReaderIndex(forwardBy: header.size)
                // Payloads kept: text and its continuations, a ping's (echoed), a close's (its code).
                let keep: Bool
                switch header.opcode {
                case WebSocketServerFraming.text, WebSocketServerFraming.ping, WebSocketServerFraming.close: keep = true
                case WebSocketServerFraming.continuation: keep = partial!.isText
                default: keep = false  // binary, pong
                }
                let payload = keep ? Self.unmask(buffer, count: header.length, key: header.maskKey) : []
                buffer.moveReaderIndex(forwardBy: header.length)
                pending = buffer.readableBytes == 0 ? nil : buffer
                if let message = try take(header, payload) { return message }
            }
            return nil
        }

        /// Applies one whole frame; a message when it completes one.
        private mutating func take(_ header: Header, _ payload: [UInt8]) throws(Failure) -> Message? {
            switch header.opcode {
            case WebSocketServerFraming.ping: return .ping(payload)
            case WebSocketServerFraming.pong: return .pong
            case WebSocketServerFraming.close:
                guard payload.count != 1 else { throw .protocolError("close frame with a 1-byte payload") }
                return .close(code: payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil)
            case WebSocketServerFraming.continuation:
                partial!.fragments += 1
                partial!.total += header.length
                guard partial!.fragments <= maxFragments else { throw .tooBig }
                if partial!.isText { partial!.bytes.append(contentsOf: payload) }
                guard header.fin else { return nil }
                let done = partial!
                partial = nil
                return done.isText ? .text(done.bytes) : .binary
            default:  // text or binary, starting a message
                if header.fin { return header.opcode == WebSocketServerFraming.text ? .text(payload) : .binary }
                partial = Partial(isText: header.opcode == WebSocketServerFraming.text, bytes: payload, total: header.length, fragments: 1)
                return nil
            }
        }

        /// The payload's first `count` bytes, unmasked, in one copy.
        private static func unmask(_ buffer: ByteBuffer, count: Int, key: (UInt8, UInt8, UInt8, UInt8)) -> [UInt8] {
            buffer.withUnsafeReadableBytes { raw in
                [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                    withUnsafeBytes(of: key) { k in
                        for i in 0..<count { out[i] = raw[i] ^ k[i & 3] }
                    }
                    initialized = count
                }
            }
        }
    }

    /// A frame header, checked against RFC 6455 and the limits as soon as its bytes are in.
    struct Header {
        var fin: Bool
        var opcode: UInt8
        var length: Int
        var size: Int
        var maskKey: (UInt8, UInt8, UInt8, UInt8)

        /// nil while the header is incomplete.
        fileprivate init?(_ b: ByteBuffer, partial: Parser.Partial?, limit: Int) throws(Failure) {
            let at = b.readerIndex
            guard let b0 = b.getInteger(at: at, as: UInt8.self), let b1 = b.getInteger(at: at + 1, as: UInt8.self) else {
                return nil
            }
            fin = b0 & 0x80 != 0
            opcode = b0 & 0x0F
            guard b0 & 0x70 == 0 else { throw .protocolError("reserved bits set") }
            guard b1 & 0x80 != 0 else { throw .protocolError("client frame not masked") }
            let isControl = opcode & 0x8 != 0
            switch opcode {
            case WebSocketServerFraming.close, WebSocketServerFraming.ping, WebSocketServerFraming.pong:
                guard fin, b1 & 0x7F <= 125 else { throw .protocolError("control frame fragmented or over 125 bytes") }
            case WebSocketServerFraming.continuation:
                guard partial != nil else { throw .protocolError("continuation frame without a message") }
            case WebSocketServerFraming.text, WebSocketServerFraming.binary:
                guard partial == nil else { throw .protocolError("new message before the last one ended") }
            default:
                throw .protocolError("reserved opcode \(opcode)")
            }
            var length = UInt64(b1 & 0x7F)
            size = 2
            if length == 126 {
                guard let l = b.getInteger(at: at + 2, as: UInt16.self) else { return nil }
                length = UInt64(l)
                size = 4
            } else if length == 127 {
                guard let l = b.getInteger(at: at + 2, as: UInt64.self) else { return nil }
                guard l >> 63 == 0 else { throw .protocolError("frame length with the top bit set") }
                length = l
                size = 10
            }
            let soFar = isControl ? 0 : partial?.total ?? 0
            guard length <= UInt64(limit - soFar) else { throw .tooBig }
            self.length = Int(length)
            guard let key = b.getInteger(at: at + size, as: UInt32.self) else { return nil }
            size += 4
            maskKey = withUnsafeBytes(of: key.bigEndian) { ($0[0], $0[1], $0[2], $0[3]) }
        }
    }
}
