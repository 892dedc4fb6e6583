import ChorusLoad
import NIOCore
import Testing

@Suite struct WebSocketClientFramingTests {
    func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    /// Every frame in `bytes`, fed to the decoder in pieces cut at `cuts` as a read loop would.
    func frames(_ bytes: [UInt8], cuts: [Int]) throws -> [WebSocketClientFraming.Frame] {
        var out: [WebSocketClientFraming.Frame] = []
        var pending = ByteBuffer()
        var from = 0
        for to in cuts + [bytes.count] where to >= from {
            pending.writeBytes(bytes[from..<to])
            from = to
            while let f = try WebSocketClientFraming.nextFrame(&pending, maxPayload: 1 << 20) { out.append(f) }
            pending.discardReadBytes()
        }
        #expect(pending.readableBytes == 0)
        return out
    }

    // RFC 6455 section 5.7's unmasked examples: "Hello", a fragmented "Hel"+"lo", a ping, 256 bytes.
    static let hello: [UInt8] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    static let fragmented: [UInt8] = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
    static let ping: [UInt8] = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    static let binary256: [UInt8] = [0x82, 0x7E, 0x01, 0x00] + (0..<256).map { UInt8($0) }

    @Test func decodesTheRFCExamples() throws {
        let f = try frames(Self.hello + Self.fragmented + Self.ping + Self.binary256, cuts: [])
        #expect(f.map(\.opcode) == [0x1, 0x1, 0x0, 0x9, 0x2])
        #expect(f.map(\.fin) == [true, false, true, true, true])
        #expect(f.map { Array($0.payload.readableBytesView) } == [
            Array("Hello".utf8), Array("Hel".utf8), Array("lo".utf8), Array("Hello".utf8), (0..<256).map { UInt8($0) },
        ])
    }

    @Test func everySplitAndMergeGivesTheSameFrames() throws {
        let all = Self.hello + Self.fragmented + Self.ping + Self.binary256
        let whole = try frames(all, cuts: [])
        for cut in 0...all.count {
            #expect(try frames(all, cuts: [cut]) == whole)
        }
        #expect(try frames(all, cuts: Array(0...all.count)) == whole)  // one byte at a time
    }

    @Test func aSixtyFourBitLengthIsRead() throws {
        let payload = [UInt8](repeating: 7, count: 70_000)
        let f = try frames([0x81, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70] + payload, cuts: [5, 9, 30_000])
        #expect(f.count == 1 && f[0].payload.readableBytes == 70_000)
    }

    @Test func maskedServerFramesReservedBitsAndOversizeAreRefused() {
        // RFC 6455 5.7's masked "Hello": a server must not send it.
        var masked = buffer([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])
        #expect(throws: WebSocketClientFraming.Failure.maskedServerFrame) { try WebSocketClientFraming.nextFrame(&masked, maxPayload: 100) }
        var rsv = buffer([0xC1, 0x00])
        #expect(throws: WebSocketClientFraming.Failure.reservedBits) { try WebSocketClientFraming.nextFrame(&rsv, maxPayload: 100) }
        // Refused from the header alone, before the payload arrives.
        var long = buffer([0x81, 0x7E, 0x01, 0x00])
        #expect(throws: WebSocketClientFraming.Failure.tooLong(256)) { try WebSocketClientFraming.nextFrame(&long, maxPayload: 255) }
    }

    @Test func anIncompleteFrameLeavesTheBufferAlone() throws {
        var b = buffer(Array(Self.binary256.prefix(100)))
        #expect(try WebSocketClientFraming.nextFrame(&b, maxPayload: 1 << 20) == nil)
        #expect(b.readableBytes == 100)
    }

    @Test func writesTheRFCMaskedHello() {
        var out = ByteBuffer()
        Array("Hello".utf8).withUnsafeBytes { WebSocketClientFraming.writeFrame(opcode: WebSocketClientFraming.text, payload: $0, maskKey: 0x37fa_213d, into: &out) }
        #expect(Array(out.readableBytesView) == [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])
    }

    @Test(arguments: [0, 125, 126, 65535, 65536])
    func writesEachLengthFormAndMasksThePayload(count: Int) {
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var out = ByteBuffer()
        payload.withUnsafeBytes { WebSocketClientFraming.writeFrame(opcode: WebSocketClientFraming.text, payload: $0, maskKey: 0xA1B2_C3D4, into: &out) }
        let bytes = Array(out.readableBytesView)
        let header = count < 126 ? 2 : count <= 65535 ? 4 : 10
        #expect(bytes[0] == 0x81)
        #expect(bytes[1] & 0x80 == 0x80)
        switch header {
        case 2: #expect(Int(bytes[1] & 0x7F) == count)
        case 4: #expect(bytes[1] & 0x7F == 126 && Int(bytes[2]) << 8 | Int(bytes[3]) == count)
        default: #expect(bytes[1] & 0x7F == 127 && bytes[2...9].reduce(0) { $0 << 8 | Int($1) } == count)
        }
        #expect(Array(bytes[header..<header + 4]) == [0xA1, 0xB2, 0xC3, 0xD4])
        #expect(bytes.count == header + 4 + count)
        #expect(WebSocketClientFraming.unmask(Array(bytes[(header + 4)...]), key: 0xA1B2_C3D4) == payload)
    }
}
