import ChorusCore
@testable import ChorusGateway
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

/// A client frame as a browser sends it: masked with `key`.
func clientFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D], rsv: UInt8 = 0) -> [UInt8] {
    var out: [UInt8] = [(fin ? 0x80 : 0) | rsv | opcode]
    if payload.count < 126 {
        out.append(0x80 | UInt8(payload.count))
    } else if payload.count <= 0xFFFF {
        out += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
    } else {
        out.append(0x80 | 127)
        out += (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> (8 * $0)) }
    }
    return out + key + payload.enumerated().map { $1 ^ key[$0 & 3] }
}

@Suite struct WebSocketServerParserTests {
    /// Every kind of frame, with a ping between the fragments of a text message.
    static let stream: [UInt8] = clientFrame(WebSocketServerFraming.text, Array("hello".utf8))
        + clientFrame(WebSocketServerFraming.text, Array(repeating: 0x61, count: 300))
        + clientFrame(WebSocketServerFraming.text, Array("ab".utf8), fin: false)
        + clientFrame(WebSocketServerFraming.ping, [1, 2, 3])
        + clientFrame(WebSocketServerFraming.continuation, Array("cd".utf8), fin: false)
        + clientFrame(WebSocketServerFraming.continuation, Array("ef".utf8))
        + clientFrame(WebSocketServerFraming.binary, [9, 9])
        + clientFrame(WebSocketServerFraming.pong, [])
        + clientFrame(WebSocketServerFraming.close, [0x03, 0xE8] + Array("bye".utf8))
        + clientFrame(WebSocketServerFraming.close, [])
    static let messages: [WebSocketServerFraming.Message] = [
        .text(Array("hello".utf8)), .text(Array(repeating: 0x61, count: 300)), .ping([1, 2, 3]),
        .text(Array("abcdef".utf8)), .binary, .pong, .close(code: 1000), .close(code: nil),
    ]

    /// Feeds `chunks` one read at a time; every message that came out, and what is still buffered.
    func parse(_ chunks: [[UInt8]], limit: Int = 65_536) throws(WebSocketServerFraming.Failure) -> ([WebSocketServerFraming.Message], Int) {
        var parser = WebSocketServerFraming.Parser(maxMessageBytes: limit)
        var out: [WebSocketServerFraming.Message] = []
        for chunk in chunks {
            parser.append(ByteBuffer(bytes: chunk))
            while let m = try parser.next() { out.append(m) }
        }
        return (out, parser.bufferedBytes)
    }

    @Test func wholeByteByByteAndEverySplit() throws {
        let s = Self.stream
        #expect(try parse([s]) == (Self.messages, 0))
        #expect(try parse(s.map { [$0] }) == (Self.messages, 0))
        for cut in 1..<s.count {
            #expect(try parse([Array(s[..<cut]), Array(s[cut...])]) == (Self.messages, 0), "cut at \(cut)")
        }
    }

    @Test func sixtyFourBitLengthsAndTheLimit() throws {
        let big = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let wire = clientFrame(WebSocketServerFraming.text, big)
        let chunks = stride(from: 0, to: wire.count, by: 999).map { Array(wire[$0..<min($0 + 999, wire.count)]) }
        #expect(try parse(chunks, limit: 70_000) == ([.text(big)], 0))
        #expect(throws: WebSocketServerFraming.Failure.tooBig) { try parse(chunks, limit: 69_999) }
    }

    @Test func anOversizedFrameFailsOnItsHeaderAlone() {
        let header = Array(clientFrame(WebSocketServerFraming.text, Array(repeating: 0, count: 70_000)).prefix(14))
        #expect(throws: WebSocketServerFraming.Failure.tooBig) { try parse([header]) }
    }

    @Test func fragmentsCountTowardsTheLimits() throws {
        let three = clientFrame(WebSocketServerFraming.binary, [1, 2, 3], fin: false) + clientFrame(WebSocketServerFraming.continuation, [4, 5, 6], fin: false)
        #expect(throws: WebSocketServerFraming.Failure.tooBig) { try parse([three + clientFrame(WebSocketServerFraming.continuation, [7])], limit: 6) }
        #expect(try parse([three + clientFrame(WebSocketServerFraming.continuation, [])], limit: 6) == ([.binary], 0))
        var parser = WebSocketServerFraming.Parser(maxMessageBytes: 100, maxFragments: 2)
        parser.append(ByteBuffer(bytes: three + clientFrame(WebSocketServerFraming.continuation, [])))
        #expect(throws: WebSocketServerFraming.Failure.tooBig) { try parser.next() }
    }

    @Test func holdsBytesOnlyWhileAFrameIsIncomplete() throws {
        let frame = clientFrame(WebSocketServerFraming.text, Array("hi".utf8))
        #expect(try parse([Array(frame.dropLast())]) == ([], frame.count - 1))
        #expect(try parse([frame + frame.prefix(3)]) == ([.text(Array("hi".utf8))], 3))
    }

    @Test(arguments: [
        (clientFrame(WebSocketServerFraming.text, [1], rsv: 0x40), "reserved bits set"),
        (Array(clientFrame(WebSocketServerFraming.text, [1]).enumerated().map { $0 == 1 ? $1 & 0x7F : $1 }.prefix(2)) + [1], "client frame not masked"),
        (clientFrame(WebSocketServerFraming.ping, Array(repeating: 0, count: 126)), "control frame fragmented or over 125 bytes"),
        (clientFrame(WebSocketServerFraming.ping, [], fin: false), "control frame fragmented or over 125 bytes"),
        (clientFrame(WebSocketServerFraming.continuation, [1]), "continuation frame without a message"),
        (clientFrame(WebSocketServerFraming.text, [1], fin: false) + clientFrame(WebSocketServerFraming.text, [2]), "new message before the last one ended"),
        (clientFrame(0x3, []), "reserved opcode 3"),
        ([0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1], "frame length with the top bit set"),
        (clientFrame(WebSocketServerFraming.close, [3]), "close frame with a 1-byte payload"),
    ])
    func protocolErrors(wire: [UInt8], why: String) {
        #expect(throws: WebSocketServerFraming.Failure.protocolError(why)) { try parse([wire]) }
        #expect(WebSocketServerFraming.Failure.protocolError(why).closeCode == 1002)
    }
}

@Suite struct WebSocketServerEncoderTests {
    /// NIO's own decoder reads our server frames back: every length encoding, unmasked, FIN set.
    @Test(arguments: [0, 1, 125, 126, 65_535, 65_536, 70_000])
    func nioDecodesOurFrames(count: Int) throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)))
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 * 13) }
        try channel.writeInbound(WebSocketServerFraming.frame(opcode: WebSocketServerFraming.text, payload: payload, allocator: channel.allocator))
        let frame = try #require(try channel.readInbound(as: WebSocketFrame.self))
        #expect(frame.fin && frame.opcode == .text && frame.maskKey == nil)
        #expect(Array(frame.data.readableBytesView) == payload)
        #expect(try channel.readInbound(as: WebSocketFrame.self) == nil)
    }

    /// A payload written after the header room and framed in place is byte for byte the frame
    /// `WebSocketServerFraming.frame` builds, with no copy below 64 KiB; `payload(ofFrame:)` gives the payload back.
    @Test(arguments: [0, 1, 125, 126, 65_535, 65_536, 70_000])
    func framingInPlaceMatchesTheCopyingEncoder(count: Int) {
        let allocator = ByteBufferAllocator()
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var buffer = WebSocketServerFraming.payloadBuffer(capacity: count, allocator: allocator)
        buffer.writeBytes(payload)
        let storageBefore = buffer.withUnsafeReadableBytes { $0.baseAddress }
        WebSocketServerFraming.frameText(&buffer)
        #expect(buffer == WebSocketServerFraming.frame(opcode: WebSocketServerFraming.text, payload: payload, allocator: allocator))
        let headerLength = count < 126 ? 2 : count <= 65_535 ? 4 : 10
        if count <= 65_535 {
            #expect(buffer.withUnsafeReadableBytes { $0.baseAddress } == storageBefore.map { $0 - headerLength })
        }
        #expect(Array(WebSocketServerFraming.payload(ofFrame: buffer).readableBytesView) == payload)
    }

    /// A frame written in place is the copying encoder's frame. One that does not fit its capacity (a
    /// body full of escapes) is written again into more room, never cut short.
    @Test(arguments: [
        (body: "say \"hi\"\n", capacity: 300, fits: true),
        (body: "say \"hi\"\n", capacity: 40, fits: false),
        (body: String(repeating: "\u{01}", count: 100), capacity: 300, fits: false),  // 6 bytes each escaped
    ])
    func aTextFrameIsWrittenInPlaceOrAgainWithMoreRoom(body: String, capacity: Int, fits: Bool) {
        let m = MessageRecord(conversationId: "c_1", seq: 9, from: "u_1", body: body, ts: 1_700_000_000_000, clientMsgId: "m1")
        var calls = 0
        let frame = WebSocketServerFraming.textFrame(capacity: capacity, allocator: ByteBufferAllocator()) {
            calls += 1
            ServerFrame.message(m, inboxSeq: 4, into: &$0)
        }
        #expect(fits ? calls == 1 : calls > 1)
        #expect(frame == WebSocketServerFraming.frame(opcode: WebSocketServerFraming.text, payload: ServerFrame.message(m, inboxSeq: 4), allocator: ByteBufferAllocator()))
    }

    @Test func closeFrameCarriesTheCodeAndAShortEnoughReason() {
        let frame = WebSocketServerFraming.closeFrame(code: 1009, reason: String(repeating: "x", count: 200), allocator: ByteBufferAllocator())
        #expect(Array(frame.readableBytesView.prefix(4)) == [0x88, 125, 0x03, 0xF1])
        #expect(frame.readableBytes == 2 + 125)
    }

    @Test func aLongReasonIsCutAtACharacterBoundary() throws {
        // 122 ASCII bytes, then two-byte characters: byte 123 would split the first of them.
        let frame = WebSocketServerFraming.closeFrame(code: 1000, reason: String(repeating: "x", count: 122) + "éééé", allocator: ByteBufferAllocator())
        let reason = Array(frame.readableBytesView.dropFirst(4))
        #expect(reason == Array(String(repeating: "x", count: 122).utf8))
        #expect(String(validating: reason, as: UTF8.self) != nil)
    }

    @Test func handshakeAcceptIsRFC6455sExample() {
        #expect(WebSocketUpgrader.accept(key: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }
}

@Suite struct WebSocketCodecHandlerTests {
    final class Recorder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = WebSocketServerFraming.Message
        var messages: [WebSocketServerFraming.Message] = []
        var errors: [WebSocketServerFraming.Failure] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { messages.append(unwrapInboundIn(data)) }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append(error as! WebSocketServerFraming.Failure) }
    }

    @Test func passesMessagesOnThenReportsOneFailureAndReadsNothingMore() throws {
        let recorder = Recorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([WebSocketCodecHandler(maxMessageBytes: 16), recorder])
        let ok = clientFrame(WebSocketServerFraming.text, Array("hi".utf8))
        try channel.writeInbound(ByteBuffer(bytes: ok + ok.prefix(3)))
        try channel.writeInbound(ByteBuffer(bytes: ok.dropFirst(3) + clientFrame(WebSocketServerFraming.text, Array(repeating: 1, count: 17)) + ok))
        try channel.writeInbound(ByteBuffer(bytes: ok))
        #expect(recorder.messages == [.text(Array("hi".utf8)), .text(Array("hi".utf8))])
        #expect(recorder.errors == [.tooBig])
    }
}
