import NIOCore
import NIOTLS

/// The handshake shell of one peer connection. Without TLS it sends this node's hello when the
/// connection opens; with TLS (`verifiesCertificate`) only once the TLS handshake has completed and
/// `MeshHandshake.verify` accepted the name of the peer's verified certificate, so nothing of
/// Chorus's protocol crosses before both sides are verified. It then applies `MeshHandshake` to the
/// peer's hello and passes frames on. Until the peer is accepted no frame goes through; a refusal,
/// or no accepted hello within `handshakeTimeout`, closes the connection (with `onRefused` told why).
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
    private let verifiesCertificate: Bool
    private let handshakeTimeout: TimeAmount
    private let onRefused: @Sendable (String) -> Void
    /// The id the peer's certificate gave (TLS only).
    private var verified: String?
    private var peer: String?
    private var started = false
    private var deadline: Scheduled<Void>?

    public convenience init(handshake: MeshHandshake, expected: String? = nil, onRefused: @escaping @Sendable (String) -> Void = { _ in }) {
        self.init(cell: HandshakeCell(handshake), expected: expected, onRefused: onRefused)
    }

    public init(
        cell: HandshakeCell, expected: String? = nil, verifiesCertificate: Bool = false, handshakeTimeout: TimeAmount = .seconds(5),
        onRefused: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.cell = cell
        cachedGeneration = cell.generation
        cached = cell.rule
        self.expected = expected
        self.verifiesCertificate = verifiesCertificate
        self.handshakeTimeout = handshakeTimeout
        self.onRefused = onRefused
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: handshakeTimeout) {
            let (handler, context) = bound.value
            guard handler.peer == nil else { return }
            handler.refuse(context, "no handshake within \(handler.handshakeTimeout.nanoseconds / 1_000_000) ms")
        }
        if !verifiesCertificate { sendHello(context) }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard verifiesCertificate, case .handshakeCompleted? = event as? TLSUserEvent else {
            return context.fireUserInboundEventTriggered(event)
        }
        let names = MeshTLS.peerNames(context.pipeline.syncOperations)
        switch handshake.verify(certificateNames: names, expected: expected) {
        case .accept(let id):
            verified = id
            sendHello(context)
        case .refuse(let reason):
            refuse(context, reason)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .hello(let hello):
            guard !verifiesCertificate || verified != nil else { return refuse(context, "a hello before the certificate was verified") }
            switch handshake.receive(hello, expected: expected, verified: verified) {
            case .accept(let p):
                peer = p
                deadline?.cancel()
                context.fireUserInboundEventTriggered(Event.accepted(peer: p))
            case .refuse(let reason):
                refuse(context, reason)
            }
        case .frame(let frame):
            guard let peer else { return context.close(promise: nil) }  // the decoder makes this unreachable
            let rule = handshake
            guard rule.accepts(ring: frame.ring) else {
                return refuse(context, "ring mismatch in a frame from \(peer): \(String(frame.ring, radix: 16)), this node \(String(rule.ringSignature, radix: 16))")
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

    private func sendHello(_ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.hello(handshake.hello)), promise: nil)
    }

    private func refuse(_ context: ChannelHandlerContext, _ reason: String) {
        deadline?.cancel()
        onRefused(reason)
        context.close(promise: nil)
    }
}
