import NIOCore

/// Frames only: writes `MeshMessage`s as their wire bytes.
public struct MeshEncoder: MessageToByteEncoder {
    public typealias OutboundIn = MeshMessage

    public init() {}

    public func encode(data: MeshMessage, out: inout ByteBuffer) throws {
        switch data {
        case .hello(let h): out.writeBytes(h.encoded())
        case .frame(let f):
            // The same bytes as `MeshFrame.encoded()`, written in place (no intermediate array).
            out.reserveCapacity(minimumWritableBytes: MeshWire.frameHeaderBytes + f.payload.count)
            out.writeInteger(UInt32(1 + 8 + 8 + f.payload.count), endianness: .little)
            out.writeInteger(f.type.rawValue)
            out.writeInteger(f.ring, endianness: .little)
            out.writeInteger(f.correlation, endianness: .little)
            out.writeBytes(f.payload)
        }
    }
}
