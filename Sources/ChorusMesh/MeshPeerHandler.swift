import NIOCore

/// The handshake shell of one peer connection: sends this node's hello when the connection opens,
/// applies `MeshHandshake` to the peer's hello, and then passes frames on. Until the peer is
/// accepted no frame goes through; a refusal closes the connection (with `onRefused` told why).
public final class MeshPeerHandler: ChannelDuplexHandler {
    public typealias InboundIn = MeshMessage
    public typealias InboundOut = MeshFrame
    public typealias OutboundIn = MeshFrame
    public typealias OutboundOut = MeshMessage

    public enum Event: Sendable, Equatable {
        case accepted(peer: String)
    }

    /// The node's rule (it changes with membership): a copy, taken again when the cell's
    /// generation moves.
    private let cell: HandshakeCell
    private var cached: MeshHandshake
    private var cachedGeneration: UInt64
    private var handshake: MeshHandshake {
        let g = cell.generation
        if g != cachedGeneration {
            cached = cell.rule
            cachedGeneration = g
        }
        return cached
    }
    private let expected: String?
    private let onRefused: @Sendable (String) -> Void
    private var peer: String?

    public convenience init(handshake: MeshHandshake, expected: String? = nil, onRefused: @escaping @Sendable (String) -> Void = { _ in }) {
        self.init(cell: HandshakeCell(handshake), expected: expected, onRefused: onRefused)
    }

    public init(cell: HandshakeCell, expected: String? = nil, onRefused: @escaping @Sendable (String) -> Void = { _ in }) {
        self.cell = cell
        cachedGeneration = cell.generation
        cached = cell.rule
        self.expected = expected
        self.onRefused = onRefused
    }

    public func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.hello(handshake.hello)), promise: nil)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .hello(let hello):
            switch handshake.receive(hello, expected: expected) {
            case .accept(let p):
                peer = p
                context.fireUserInboundEventTriggered(Event.accepted(peer: p))
            case .refuse(let reason):
                onRefused(reason)
                context.close(promise: nil)
            }
        case .frame(let frame):
            guard let peer else { return context.close(promise: nil) }  // the decoder makes this unreachable
            let rule = handshake
            guard rule.accepts(ring: frame.ring) else {
                onRefused("ring mismatch in a frame from \(peer): \(String(frame.ring, radix: 16)), this node \(String(rule.ringSignature, radix: 16))")
                return context.close(promise: nil)
            }
            context.fireChannelRead(wrapInboundOut(frame))
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard peer != nil else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var frame = unwrapOutboundIn(data)
        frame.ring = handshake.ringSignature
        context.write(wrapOutboundOut(.frame(frame)), promise: promise)
    }
}
