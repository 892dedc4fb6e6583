import ChorusCore
import ChorusReplication

/// The binary form of the peer vocabulary, carried as the payload of a mesh frame (`MeshFrame`,
/// at most `--mesh` frame size). Pure: no I/O.
///
///     request = kind u8 | fields            (PeerRequest; kinds in `PeerKind`)
///     event   = kind u8 | fields            (PeerEvent; kinds disjoint from requests')
///     answer  = 0 u8 | reply tag u8 | fields  /  1 u8 | error code string | parameter string
///
/// Integers are little-endian, counts and lengths LEB128 varints, strings UTF-8 with a varint
/// length. Every count and length is checked against its bound (`PeerBounds`) before anything is
/// read; unknown kinds, truncation, oversize and trailing bytes are refused with a
/// `PeerDecodingError`, never a trap.
public enum PeerCodec {
    public static func encode(_ request: PeerRequest) -> [UInt8] {
        var w = ByteWriter(capacity: request.encodedSizeHint)
        write(request, to: &w)
        return w.bytes
    }

    public static func decodeRequest(_ bytes: [UInt8]) throws(PeerDecodingError) -> PeerRequest {
        var r = PeerReader(bytes)
        let request = try readRequest(&r)
        try r.finish()
        return request
    }

    public static func encode(_ event: PeerEvent) -> [UInt8] {
        var w = ByteWriter(capacity: event.encodedSizeHint)
        write(event, to: &w)
        return w.bytes
    }

    public static func decodeEvent(_ bytes: [UInt8]) throws(PeerDecodingError) -> PeerEvent {
        var r = PeerReader(bytes)
        let event = try readEvent(&r)
        try r.finish()
        return event
    }

    public static func encode(_ answer: Result<PeerReply, ChatError>) -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        switch answer {
        case .success(let reply):
            w.write(UInt8(0))
            write(reply, to: &w)
        case .failure(let error):
            w.write(UInt8(1))
            error.write(to: &w)
        }
        return w.bytes
    }

    public static func decodeAnswer(_ bytes: [UInt8]) throws(PeerDecodingError) -> Result<PeerReply, ChatError> {
        var r = PeerReader(bytes)
        let answer: Result<PeerReply, ChatError>
        switch try r.u8() {
        case 0: answer = .success(try readReply(&r))
        case 1: answer = .failure(try r.wrap { (b: inout ByteReader) throws(ByteReaderError) in try ChatError.read(from: &b) })
        case let other: throw .unknownKind(other)
        }
        try r.finish()
        return answer
    }
}

/// Why peer bytes were refused.
public enum PeerDecodingError: Error, Equatable, Sendable {
    /// The first byte names no message of this protocol version.
    case unknownKind(UInt8)
    /// Truncated, over a bound, a bad varint or bad UTF-8.
    case malformed(ByteReaderError)
    /// A field out of its range (an unknown conversation kind, a log record that does not decode).
    case invalid(String)
    /// Bytes left after a whole message.
    case trailingBytes(Int)
}

/// Every bound the peer codec checks. A message past one is refused whole.
public enum PeerBounds {
    /// User, conversation and node ids.
    public static let id = 256
    public static let token = 1024
    public static let clientMsgId = 1024
    public static let body = 1 << 20
    public static let title = 4096
    /// A message record in its log encoding (body plus fields).
    public static let record = 2 << 20
    public static let closeReason = 1024
    public static let errorText = 4096
    public static let seqsAsked = 4096
    public static let usersAsked = 1000
    public static let inboxItems = 100_000
    public static let highsAsked = 20_000
    public static let members = 100_000
    public static let pushUsers = 100_000
    public static let framesPerPush = 4096
    public static let frame = 1 << 20
    public static let headers = 256
    public static let headerText = 16_384
    public static let method = 16
    public static let uri = 16_384
    public static let address = 256
    public static let handoverEvents = 1_000_000
    public static let replyNumbers = 100_000
    /// Records in one replication append (the leader batches at most this many per frame).
    public static let replicatedRecords = 4096
    /// Runs of an epoch history in a mismatch reply.
    public static let epochRuns = EpochHistory.maxRuns
}

/// A `ByteReader` whose errors are `PeerDecodingError`s.
struct PeerReader {
    var base: ByteReader

    init(_ bytes: [UInt8]) { base = ByteReader(bytes) }

    mutating func wrap<T>(_ body: (inout ByteReader) throws(ByteReaderError) -> T) throws(PeerDecodingError) -> T {
        do { return try body(&base) } catch { throw .malformed(error) }
    }

    mutating func u8() throws(PeerDecodingError) -> UInt8 { try wrap { (b: inout ByteReader) throws(ByteReaderError) in try b.readUInt8() } }
    mutating func u16() throws(PeerDecodingError) -> UInt16 { try wrap { (b: inout ByteReader) throws(ByteReaderError) in try b.readUInt16() } }
    mutating func u64() throws(PeerDecodingError) -> UInt64 { try wrap { (b: inout ByteReader) throws(ByteReaderError) in try b.readUInt64() } }
    mutating func i64() throws(PeerDecodingError) -> Int64 { try wrap { (b: inout ByteReader) throws(ByteReaderError) in try b.readInt64() } }
    mutating func bool() throws(PeerDecodingError) -> Bool { try wrap { (b: inout ByteReader) throws(ByteReaderError) in try b.readBool() } }
    mutating func varint() throws(PeerDecodingError) -> UInt64 { try wrap { (b: inout ByteReader) throws(ByteReaderError) in try b.readVarint() } }

    mutating func string(_ bound: Int) throws(PeerDecodingError) -> String {
        try wrap { (b: inout ByteReader) throws(ByteReaderError) in try b.readString(bound: bound) }
    }

    mutating func bytes(_ bound: Int) throws(PeerDecodingError) -> [UInt8] {
        Array(try wrap { (b: inout ByteReader) throws(ByteReaderError) in try b.readLengthPrefixed(bound: bound) })
    }

    /// A count, checked against `bound` before anything it counts is read.
    mutating func count(_ bound: Int) throws(PeerDecodingError) -> Int {
        let n = try varint()
        guard n <= UInt64(bound) else { throw .malformed(.lengthOverBound(length: n, bound: bound)) }
        return Int(n)
    }

    mutating func list<T>(_ bound: Int, _ element: (inout PeerReader) throws(PeerDecodingError) -> T) throws(PeerDecodingError) -> [T] {
        let n = try count(bound)
        var out: [T] = []
        out.reserveCapacity(min(n, base.remaining))
        for _ in 0..<n { out.append(try element(&self)) }
        return out
    }

    func finish() throws(PeerDecodingError) {
        guard base.isAtEnd else { throw .trailingBytes(base.remaining) }
    }
}

extension ByteWriter {
    mutating func writeList<T>(_ items: [T], _ element: (inout ByteWriter, T) -> Void) {
        writeVarint(UInt64(items.count))
        for item in items { element(&self, item) }
    }
}
