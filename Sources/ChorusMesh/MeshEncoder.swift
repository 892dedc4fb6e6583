import NIOCore

/// Frames only: writes `MeshMessage`s as their wire bytes.
public struct MeshEncoder: MessageToByteEncoder {
    public typealias OutboundIn = MeshMessage

    public init() {}

    public func encode(data: MeshMessage, out: inout ByteBuffer) throws {
        switch data {
        case .hello(let h): out.writeBytes(h.encoded())
        case .frame(let f): out.writeBytes(f.encoded())
        }
    }
}
