import NIOCore

/// Frames only: bytes from the peer's socket through `MeshDecoder` into `MeshMessage`s. A codec
/// error is thrown into the pipeline (the shell closes the connection).
public struct MeshByteDecoder: ByteToMessageDecoder {
    public typealias InboundOut = MeshMessage

    private var decoder: MeshDecoder

    public init(maxFrameBytes: Int = 1 << 20, expectingHello: Bool = true) {
        decoder = MeshDecoder(maxFrameBytes: maxFrameBytes, expectingHello: expectingHello)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if buffer.readableBytes > 0 {
            decoder.feed(buffer.readableBytesView)
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        }
        // Every byte went into `decoder`: hand on everything complete now (NIO calls again only when
        // more bytes arrive).
        while let message = try decoder.next() { context.fireChannelRead(wrapInboundOut(message)) }
        return .needMoreData
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}
