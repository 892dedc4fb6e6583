import ChorusCore
import ChorusGateway
import ChorusMesh
import ChorusPeer
import ChorusReplication
import ChorusReengagement
import ChorusWAL
import NIOCore

/// Every decoder that takes bytes from outside, as one fuzz target each: the input is fed as an
/// attacker would send it, and the target checks the bound its decoder promises. A crash, a trap or
/// a broken bound is a finding. Used by libFuzzer (`chorus-fuzz`) and by the seeded mutation
/// harness (`chorus-tools fuzz`); seeds are in `Tests/fuzz-corpus/<target>/`.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case webSocket = "websocket"
    case flatJSON = "flatjson"
    case clientFrame = "client-frame"
    case httpRequest = "http-request"
    case mesh
    case peer
    case walBlock = "wal-block"
    case walEvent = "wal-event"
    case smtp

    public struct BrokenBound: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs one input; throws only for a broken bound (a crash ends the process).
    public func run(_ data: [UInt8]) throws(BrokenBound) {
        switch self {
        case .webSocket: try Self.webSocket(data)
        case .flatJSON: _ = FlatJSON.parse(data)
        case .clientFrame: _ = ClientFrameCodec.decode(data)
        case .httpRequest: Self.httpRequest(data)
        case .mesh: try Self.mesh(data)
        case .peer: Self.peer(data)
        case .walBlock: Self.walBlock(data)
        case .walEvent: Self.walEvent(data)
        case .smtp: Self.smtp(data)
        }
    }

    /// Split at a point the input chooses, so split reads are fuzzed too.
    private static func halves(_ data: [UInt8]) -> (ArraySlice<UInt8>, ArraySlice<UInt8>) {
        let cut = data.isEmpty ? 0 : Int(data[0]) % (data.count + 1)
        return (data[..<cut], data[cut...])
    }

    private static func webSocket(_ data: [UInt8]) throws(BrokenBound) {
        let limit = 4096
        var parser = WebSocketServerFraming.Parser(maxMessageBytes: limit, maxFragments: 16)
        let (a, b) = halves(data)
        for part in [a, b] {
            parser.append(ByteBuffer(bytes: part))
            while true {
                guard let message = try? parser.next() else { break }
                if case .text(let bytes) = message, bytes.count > limit { throw BrokenBound(description: "a text message over the limit") }
            }
        }
        // Incomplete input is held only up to one frame's header plus the limit.
        if parser.bufferedBytes > data.count { throw BrokenBound(description: "buffered more than was fed") }
    }

    private static func httpRequest(_ data: [UInt8]) {
        // The parts of a request head Chorus reads itself: the target, the query, the bearer token,
        // then the body as the JSON object every route takes.
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", maxSplits: 8).map(String.init)
        let uri = lines.first ?? "/"
        let headers = lines.dropFirst().map { line -> (String, String) in
            let parts = line.split(separator: ":", maxSplits: 1).map(String.init)
            return (parts.first ?? "", parts.count > 1 ? parts[1] : "")
        }
        let request = APIRequest(method: "POST", uri: uri, headers: headers, body: data, clientAddress: "203.0.113.1")
        _ = request.bearerToken
        _ = request.query
        _ = try? request.jsonObject()
        _ = APIRoute.match(method: "GET", path: request.path)
        _ = ClientAddress.resolve(peer: "10.0.0.1", forwardedFor: [text], trusted: [CIDR("10.0.0.0/8")!])
        _ = CIDR(text)
    }

    private static func mesh(_ data: [UInt8]) throws(BrokenBound) {
        let limit = 4096
        for expectingHello in [true, false] {
            var decoder = MeshDecoder(maxFrameBytes: limit, expectingHello: expectingHello)
            let (a, b) = halves(data)
            for part in [a, b] {
                decoder.feed(part)
                while true {
                    guard let message = try? decoder.next() else { break }
                    if case .frame(let f) = message, f.payload.count > limit { throw BrokenBound(description: "a frame over the limit") }
                    if case .hello(let h) = message, !MeshHello.isValidNodeId(h.nodeId) { throw BrokenBound(description: "an invalid node id passed") }
                }
                if decoder.bufferedBytes > limit + MeshWire.frameHeaderBytes + 100 { throw BrokenBound(description: "buffered past one frame") }
            }
        }
    }

    private static func peer(_ data: [UInt8]) {
        _ = try? PeerCodec.decodeRequest(data)
        _ = try? PeerCodec.decodeEvent(data)
        _ = try? PeerCodec.decodeAnswer(data)
    }

    private static func walBlock(_ data: [UInt8]) {
        data.withUnsafeBytes { buf in
            _ = BlockCodec.validate(buf, at: 0)
            // Past the checksum as well: the record framing of a header that parses.
            guard case .success(let header) = BlockCodec.parseHeader(buf, at: 0) else { return }
            let start = WALFormat.blockHeaderSize
            guard buf.count - start >= header.storedLength else { return }
            var scratch: [UInt8] = []
            try? BlockCodec.decodeRecords(
                header: header, payload: UnsafeRawBufferPointer(rebasing: buf[start..<(start + header.storedLength)]), scratch: &scratch
            ) { record in _ = try? ChorusEvent.decode(kind: record.kind, payload: record.payload) }
        }
    }

    /// An engine event, or a replication record then replayed (a log record of either owner).
    private static func walEvent(_ data: [UInt8]) {
        guard data.count >= 2 else { return }
        let kind = UInt16(data[0]) | UInt16(data[1]) << 8
        guard ReplicationRecord.owns(kind: kind) else {
            _ = try? ChorusEvent.decode(kind: kind, payload: Array(data[2...]))
            return
        }
        guard let record = try? ReplicationRecord.decode(kind: kind, payload: Array(data[2...])) else { return }
        var replay = PartitionReplay()
        _ = try? replay.replay(record, lsn: 1)
    }

    private static func smtp(_ data: [UInt8]) {
        var parser = SMTPReplyParser(maxLines: 16)
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            guard (try? parser.feed(String(line))) != nil else { return }
        }
    }
}
