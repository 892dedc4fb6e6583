/// The mesh's wire format: the hello and the frames that carry `ChorusPeer` payloads. Pure: bytes
/// in, messages out; the NIO shell only frames. Every integer is little-endian.
///
///     hello  = "CHMS" | version u8 | ring signature u64 | node id length u8 | node id (1...64 bytes)
///     frame  = length u32 (of what follows, 17...maxFrameBytes) | type u8 | ring signature u64 |
///              correlation u64 | payload
///
/// Every frame carries its sender's ring signature (not only the hello): a frame of another ring
/// (a peer on an older or newer membership) is refused by `MeshPeerHandler` and the connection closed.
///
/// Each side sends one `hello` first; everything after it is frames. The decoder checks the magic,
/// the version, every length against its bound before buffering anything, and the frame type; any
/// violation is a `MeshCodecError` (the connection is then closed), never a crash.
public enum MeshWire {
    public static let magic: [UInt8] = Array("CHMS".utf8)
    /// 2: the ring signature in every frame. 3: peer payloads are `ChorusPeer`'s vocabulary
    /// (self-describing replies). 4: presence visibility (`sharing`). 5: replication (`fence`,
    /// `append`; PROTOCOL.md section 7). 6: a message's inbox entry names the entry before it
    /// (`previous`, for the owner's gap check). Nodes of different versions
    /// refuse each other at hello.
    public static let version: UInt8 = 6
    public static let frameHeaderBytes = 4 + 1 + 8 + 8
    public static let maxNodeIdBytes = 64
}

public struct MeshHello: Sendable, Equatable {
    public var ringSignature: UInt64
    public var nodeId: String

    public init(ringSignature: UInt64, nodeId: String) {
        self.ringSignature = ringSignature
        self.nodeId = nodeId
    }

    /// Node ids are 1...64 printable ASCII characters without spaces (as `--node-id`): an id read
    /// off the wire or a certificate is checked before it reaches a log line.
    public static func isValidNodeId(_ id: String) -> Bool {
        (1...MeshWire.maxNodeIdBytes).contains(id.utf8.count) && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}

public enum MeshFrameType: UInt8, Sendable, Equatable {
    /// Liveness; answered with `heartbeatAck` (same correlation).
    case heartbeat = 1
    case heartbeatAck = 2
    /// A request whose `response` or `failure` carries the same correlation id.
    case request = 3
    case response = 4
    case failure = 5
    /// Fire-and-forget (deliveries, presence, revocations).
    case oneWay = 6
}

public struct MeshFrame: Sendable, Equatable {
    public var type: MeshFrameType
    /// The sender's ring signature (stamped by `MeshPeerHandler` on the way out).
    public var ring: UInt64
    public var correlation: UInt64
    public var payload: [UInt8]

    public init(type: MeshFrameType, ring: UInt64 = 0, correlation: UInt64, payload: [UInt8] = []) {
        self.type = type
        self.ring = ring
        self.correlation = correlation
        self.payload = payload
    }
}

public enum MeshMessage: Sendable, Equatable {
    case hello(MeshHello)
    case frame(MeshFrame)
}

public enum MeshCodecError: Error, Equatable, Sendable {
    case badMagic
    case unsupportedVersion(UInt8)
    case badNodeId(length: Int)
    case frameTooShort(length: UInt32)
    case frameTooLarge(length: UInt32, limit: Int)
    case unknownFrameType(UInt8)
}

extension MeshHello {
    public func encoded() -> [UInt8] {
        let id = Array(nodeId.utf8)
        precondition((1...MeshWire.maxNodeIdBytes).contains(id.count), "node ids are 1...64 bytes")
        var out = MeshWire.magic
        out.append(MeshWire.version)
        appendLE(ringSignature, to: &out)
        out.append(UInt8(id.count))
        out += id
        return out
    }
}

extension MeshFrame {
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(MeshWire.frameHeaderBytes + payload.count)
        appendLE(UInt32(1 + 8 + 8 + payload.count), to: &out)
        out.append(type.rawValue)
        appendLE(ring, to: &out)
        appendLE(correlation, to: &out)
        out += payload
        return out
    }
}

func appendLE<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
}

/// Incremental decoder: feed bytes as they arrive (any split), take messages as they complete.
/// After an error it stays failed: the connection must be closed.
public struct MeshDecoder: Sendable {
    public let maxFrameBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var helloSeen = false
    private var failure: MeshCodecError?

    /// `expectingHello: false` decodes frames only (a stream whose hello was already taken).
    public init(maxFrameBytes: Int = 1 << 20, expectingHello: Bool = true) {
        precondition(maxFrameBytes >= 17)
        self.maxFrameBytes = maxFrameBytes
        helloSeen = !expectingHello
    }

    /// Bytes buffered and not yet decoded (bounded by one hello or one frame).
    public var bufferedBytes: Int { buffer.count - start }

    public mutating func feed(_ bytes: some Collection<UInt8>) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message, nil if more bytes are needed.
    public mutating func next() throws(MeshCodecError) -> MeshMessage? {
        if let failure { throw failure }
        do {
            let message = try helloSeen ? decodeFrame() : decodeHello()
            // Keep the buffer from growing without bound: drop consumed bytes now and then.
            if start > 64 << 10 && start * 2 > buffer.count {
                buffer.removeFirst(start)
                start = 0
            }
            return message
        } catch {
            failure = error
            throw error
        }
    }

    private func byte(_ i: Int) -> UInt8 { buffer[start + i] }

    private func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v |= T(byte(offset + i)) << (8 * i) }
        return v
    }

    private mutating func decodeHello() throws(MeshCodecError) -> MeshMessage? {
        let available = bufferedBytes
        // Check what has arrived of the magic at once: garbage fails before 14 bytes come.
        for i in 0..<min(available, 4) where byte(i) != MeshWire.magic[i] { throw .badMagic }
        if available >= 5, byte(4) != MeshWire.version { throw .unsupportedVersion(byte(4)) }
        guard available >= 14 else { return nil }
        let idLength = Int(byte(13))
        guard (1...MeshWire.maxNodeIdBytes).contains(idLength) else { throw .badNodeId(length: idLength) }
        guard available >= 14 + idLength else { return nil }
        let signature = readLE(UInt64.self, at: 5)
        let id = String(decoding: buffer[(start + 14)..<(start + 14 + idLength)], as: UTF8.self)
        guard MeshHello.isValidNodeId(id) else { throw .badNodeId(length: idLength) }
        start += 14 + idLength
        helloSeen = true
        return .hello(MeshHello(ringSignature: signature, nodeId: id))
    }

    private mutating func decodeFrame() throws(MeshCodecError) -> MeshMessage? {
        let available = bufferedBytes
        guard available >= 4 else { return nil }
        let length = readLE(UInt32.self, at: 0)
        guard length >= 17 else { throw .frameTooShort(length: length) }
        guard Int(length) <= maxFrameBytes else { throw .frameTooLarge(length: length, limit: maxFrameBytes) }
        if available >= 5, MeshFrameType(rawValue: byte(4)) == nil { throw .unknownFrameType(byte(4)) }
        guard available >= 4 + Int(length) else { return nil }
        let type = MeshFrameType(rawValue: byte(4))!
        let ring = readLE(UInt64.self, at: 5)
        let correlation = readLE(UInt64.self, at: 13)
        let payload = Array(buffer[(start + 21)..<(start + 4 + Int(length))])
        start += 4 + Int(length)
        return .frame(MeshFrame(type: type, ring: ring, correlation: correlation, payload: payload))
    }
}
