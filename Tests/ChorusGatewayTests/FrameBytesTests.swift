@testable import ChorusGateway
import NIOCore
import NIOWebSocket
import Testing

@Suite struct FrameBytesTests {
    /// The one-copy unmasking gives what NIO's `unmaskedData` gives, for every length mod 4 and both
    /// a masked and an unmasked frame, also when the payload is a slice not starting at index 0.
    @Test(arguments: [0, 1, 2, 3, 4, 5, 125, 126, 1000])
    func unmaskedBytesMatchNIO(count: Int) {
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for key in [nil, WebSocketMaskingKey([0x37, 0xfa, 0x21, 0x3d]), WebSocketMaskingKey([0, 0xff, 0x80, 1])] {
            var wire = ByteBuffer(bytes: [9, 9, 9] + payload)
            wire.moveReaderIndex(forwardBy: 3)
            if let key { wire.webSocketMask(key) }
            let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: key, data: wire)
            #expect(frame.unmaskedBytes == Array(frame.unmaskedData.readableBytesView))
            #expect(frame.unmaskedBytes == payload)
        }
    }
}
