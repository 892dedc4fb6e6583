import ChorusMesh
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Synchronization
import Testing

@Suite struct MeshCodecTests {
    let hello = MeshHello(ringSignature: 0x0102_0304_0506_0708, nodeId: "node1")
    let frames = [
        MeshFrame(type: .request, ring: 0x0102_0304_0506_0708, correlation: 7, payload: [0xAA, 0xBB, 0xCC]),
        MeshFrame(type: .heartbeat, ring: 0x0102_0304_0506_0708, correlation: 8),
        MeshFrame(type: .oneWay, ring: 0x0102_0304_0506_0708, correlation: 0, payload: Array(repeating: 0x5A, count: 300)),
    ]

    @Test func encodingIsExactBytes() {
        #expect(hello.encoded() == Array("CHMS".utf8) + [6, 8, 7, 6, 5, 4, 3, 2, 1, 5] + Array("node1".utf8))
        #expect(frames[0].encoded() == [20, 0, 0, 0, 3, 8, 7, 6, 5, 4, 3, 2, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0xAA, 0xBB, 0xCC])
        #expect(frames[1].encoded() == [17, 0, 0, 0, 1, 8, 7, 6, 5, 4, 3, 2, 1, 8, 0, 0, 0, 0, 0, 0, 0])
    }

    var stream: [UInt8] { hello.encoded() + frames.flatMap { $0.encoded() } }
    var expected: [MeshMessage] { [.hello(hello)] + frames.map(MeshMessage.frame) }

    func decodeAll(_ chunks: [ArraySlice<UInt8>], maxFrameBytes: Int = 1 << 20) throws -> [MeshMessage] {
        var d = MeshDecoder(maxFrameBytes: maxFrameBytes)
        var out: [MeshMessage] = []
        for c in chunks {
            d.feed(c)
            while let m = try d.next() { out.append(m) }
        }
        return out
    }

    @Test func everySplitPointAndByteByByteDecodeTheSame() throws {
        let bytes = stream
        for cut in 0...bytes.count {
            #expect(try decodeAll([bytes[..<cut], bytes[cut...]]) == expected, "split at \(cut)")
        }
        #expect(try decodeAll(bytes.map { [$0][...] }) == expected)
    }

    @Test func aTruncatedStreamYieldsOnlyWhatIsComplete() throws {
        let bytes = stream
        let ends = [0] + [hello.encoded().count] + frames.indices.map { i in
            hello.encoded().count + frames[...i].reduce(0) { $0 + $1.encoded().count }
        }
        for cut in 0..<bytes.count {
            let got = try decodeAll([bytes[..<cut]])
            #expect(got == Array(expected.prefix(ends.lastIndex { $0 <= cut }!)), "cut at \(cut)")
        }
    }

    @Test func violationsAreErrorsNotCrashes() {
        #expect(throws: MeshCodecError.badMagic) { try decodeAll([Array("CHMX".utf8)[...]]) }
        #expect(throws: MeshCodecError.badMagic) { try decodeAll([[0x47][...]]) }
        #expect(throws: MeshCodecError.unsupportedVersion(3)) { try decodeAll([(Array("CHMS".utf8) + [3])[...]]) }
        #expect(throws: MeshCodecError.badNodeId(length: 0)) { try decodeAll([(Array("CHMS".utf8) + [MeshWire.version] + Array(repeating: 0, count: 8) + [0])[...]]) }
        #expect(throws: MeshCodecError.badNodeId(length: 65)) { try decodeAll([(Array("CHMS".utf8) + [MeshWire.version] + Array(repeating: 0, count: 8) + [65])[...]]) }
        let h = hello.encoded()
        #expect(throws: MeshCodecError.frameTooShort(length: 16)) { try decodeAll([(h + [16, 0, 0, 0])[...]]) }
        // Refused from the 4 length bytes alone: nothing of the 4 GiB is waited for or buffered.
        #expect(throws: MeshCodecError.frameTooLarge(length: 0xFFFF_FFFF, limit: 1024)) {
            try decodeAll([(h + [0xFF, 0xFF, 0xFF, 0xFF])[...]], maxFrameBytes: 1024)
        }
        #expect(throws: MeshCodecError.unknownFrameType(99)) { try decodeAll([(h + [17, 0, 0, 0, 99])[...]]) }
        // Once failed, the decoder stays failed.
        var d = MeshDecoder()
        d.feed(Array("XXXX".utf8))
        #expect(throws: MeshCodecError.badMagic) { try d.next() }
        d.feed(hello.encoded())
        #expect(throws: MeshCodecError.badMagic) { try d.next() }
    }

    @Test func randomBytesNeverCrash() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            var d = MeshDecoder(maxFrameBytes: 4096)
            // Half the runs start with a valid hello, so frame decoding gets garbage too.
            if Bool.random(using: &rng) { d.feed(hello.encoded()) }
            d.feed((0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            for _ in 0..<8 { _ = try? d.next() }
            #expect(d.bufferedBytes <= 4096 + 64 + 100)
        }
    }

    @Test func theNIODecoderPassesNIOsVerifier() throws {
        // The verifier replays inputs in many splits and merges on fresh and reused decoders, so it
        // gets frames (a connection's hello comes once; the tests above cover it in every split).
        let pairs = frames.map { (ByteBuffer(bytes: $0.encoded()), [MeshMessage.frame($0)]) }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { MeshByteDecoder(expectingHello: false) }
    }
}

@Suite struct MeshHandshakeTests {
    let members: Set<String> = ["node1", "node2", "node3"]

    @Test func sameRingMemberIsAcceptedOthersAreRefusedWithAReason() {
        let h = MeshHandshake(selfId: "node1", ringSignature: 42, members: members)
        #expect(h.receive(MeshHello(ringSignature: 42, nodeId: "node2")) == .accept(peer: "node2"))
        #expect(h.receive(MeshHello(ringSignature: 42, nodeId: "node2"), expected: "node2") == .accept(peer: "node2"))
        #expect(h.receive(MeshHello(ringSignature: 43, nodeId: "node2")) == .refuse("ring mismatch: node2 runs ring 2b, this node 2a"))
        #expect(h.receive(MeshHello(ringSignature: 42, nodeId: "node1")) == .refuse("a connection to itself"))
        #expect(h.receive(MeshHello(ringSignature: 42, nodeId: "node9")) == .refuse("node9 is not a member of this ring"))
        #expect(h.receive(MeshHello(ringSignature: 42, nodeId: "node3"), expected: "node2") == .refuse("dialled node2, answered by node3"))
    }

    @Test func duringAMembershipChangeTheOtherRingIsAcceptedTooButStampedWithOurs() {
        let h = MeshHandshake(selfId: "node1", ringSignature: 42, members: members.union(["node4"]), alsoAccepting: [77])
        #expect(h.receive(MeshHello(ringSignature: 77, nodeId: "node4")) == .accept(peer: "node4"))
        #expect(h.receive(MeshHello(ringSignature: 42, nodeId: "node2")) == .accept(peer: "node2"))
        #expect(h.receive(MeshHello(ringSignature: 78, nodeId: "node2")) == .refuse("ring mismatch: node2 runs ring 4e, this node 2a"))
        #expect(h.hello.ringSignature == 42 && h.accepts(ring: 77) && !h.accepts(ring: 78))
    }

    @Test func aVerifiedCertificateMustNameExactlyOneMemberAndTheHelloMustClaimIt() {
        let h = MeshHandshake(selfId: "node1", ringSignature: 42, members: members)
        #expect(h.verify(certificateNames: ["node2"]) == .accept(peer: "node2"))
        #expect(h.verify(certificateNames: ["other.example", "node2"]) == .accept(peer: "node2"))
        #expect(h.verify(certificateNames: ["node9"]) == .refuse("the certificate names no member: [node9]"))
        #expect(h.verify(certificateNames: []) == .refuse("the certificate names no member: []"))
        #expect(h.verify(certificateNames: ["node1"]) == .refuse("the certificate names no member: [node1]"))
        #expect(h.verify(certificateNames: ["node2", "node3"]) == .refuse("the certificate names several members: [\"node2\", \"node3\"]"))
        // Outbound: the certificate must name the node dialled (several names are fine then).
        #expect(h.verify(certificateNames: ["node2", "node3"], expected: "node3") == .accept(peer: "node3"))
        #expect(h.verify(certificateNames: ["node2"], expected: "node3") == .refuse("dialled node3, its certificate names [node2]"))
        // Names that are not node ids never reach a log line as they are.
        #expect(h.verify(certificateNames: ["bad\nline"]) == .refuse("the certificate names no member: [<not a node id>]"))
        // The hello must claim the certificate's id.
        #expect(h.receive(MeshHello(ringSignature: 42, nodeId: "node3"), verified: "node2")
            == .refuse("the certificate of node2 came with a hello from node3"))
        #expect(h.receive(MeshHello(ringSignature: 42, nodeId: "node2"), verified: "node2") == .accept(peer: "node2"))
    }
}

@Suite struct MeshPeerHandlerTests {
    @Test func withTLSNothingIsSentBeforeTheHandshakeAndAHelloBeforeItIsRefused() throws {
        let refusals = Mutex<[String]>([])
        let handshake = MeshHandshake(selfId: "node1", ringSignature: 42, members: ["node1", "node2"])
        let handler = MeshPeerHandler(cell: HandshakeCell(handshake), verifiesCertificate: true) { r in refusals.withLock { $0.append(r) } }
        let channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(try channel.readOutbound(as: MeshMessage.self) == nil)
        try? channel.writeInbound(MeshMessage.hello(MeshHello(ringSignature: 42, nodeId: "node2")))
        #expect(refusals.withLock { $0 } == ["a hello before the certificate was verified"])
        #expect(!channel.isActive)
    }

    @Test func aConnectionWithoutAHandshakeIsClosedAtTheTimeout() throws {
        let refusals = Mutex<[String]>([])
        let handshake = MeshHandshake(selfId: "node1", ringSignature: 42, members: ["node1", "node2"])
        let handler = MeshPeerHandler(cell: HandshakeCell(handshake), verifiesCertificate: true, handshakeTimeout: .seconds(5)) { r in
            refusals.withLock { $0.append(r) }
        }
        let channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(4_999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
        #expect(refusals.withLock { $0 } == ["no handshake within 5000 ms"])
    }

    @Test func aFrameOfAnotherRingIsRefusedAndTheConnectionClosed() throws {
        let refusals = Mutex<[String]>([])
        let handshake = MeshHandshake(selfId: "node1", ringSignature: 42, members: ["node1", "node2"])
        let channel = EmbeddedChannel(handler: MeshPeerHandler(handshake: handshake) { r in refusals.withLock { $0.append(r) } })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try channel.readOutbound(as: MeshMessage.self)  // our hello
        try channel.writeInbound(MeshMessage.hello(MeshHello(ringSignature: 42, nodeId: "node2")))
        try channel.writeInbound(MeshMessage.frame(MeshFrame(type: .oneWay, ring: 42, correlation: 0, payload: [1])))
        #expect(try channel.readInbound(as: MeshFrame.self)?.payload == [1])
        // Frames going out carry this node's ring.
        try channel.writeOutbound(MeshFrame(type: .oneWay, correlation: 0, payload: [2]))
        guard case .frame(let out)? = try channel.readOutbound(as: MeshMessage.self) else { Issue.record("no frame out"); return }
        #expect(out.ring == 42)
        // A frame of another ring: refused, logged, closed; nothing passed on.
        try? channel.writeInbound(MeshMessage.frame(MeshFrame(type: .oneWay, ring: 43, correlation: 0, payload: [3])))
        #expect(try channel.readInbound(as: MeshFrame.self) == nil)
        #expect(refusals.withLock { $0 } == ["ring mismatch in a frame from node2: 2b, this node 2a"])
        #expect(!channel.isActive)
    }
}

@Suite struct MeshEncoderTests {
    @Test func encoderWritesTheCodecsBytes() throws {
        let frame = MeshFrame(type: .response, correlation: 99, payload: [1, 2, 3])
        var out = ByteBuffer()
        try MeshEncoder().encode(data: .frame(frame), out: &out)
        #expect(Array(out.readableBytesView) == frame.encoded())
        var hello = ByteBuffer()
        try MeshEncoder().encode(data: .hello(MeshHello(ringSignature: 1, nodeId: "n")), out: &hello)
        #expect(Array(hello.readableBytesView) == MeshHello(ringSignature: 1, nodeId: "n").encoded())
    }
}
