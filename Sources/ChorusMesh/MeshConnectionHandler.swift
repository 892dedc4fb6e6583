import NIOCore

/// The node's shell on one peer connection, after the handshake: heartbeats are answered, requests
/// go to the node's `MeshService` and their answers back on this connection, answers to this node's
/// requests go to the peer's link. Every frame counts as hearing from the peer. No business logic.
final class MeshConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = MeshFrame
    typealias OutboundOut = MeshFrame

    private let node: MeshNode
    /// Set on connections this node dialled.
    private let link: PeerLink?
    private let service: any MeshService
    private var peer: String?
    private var flushScheduled = false

    init(node: MeshNode, link: PeerLink?, service: any MeshService) {
        self.node = node
        self.link = link
        self.service = service
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .accepted(let p)? = event as? MeshPeerHandler.Event else { return context.fireUserInboundEventTriggered(event) }
        peer = p
        node.heard(from: p)
        if let link {
            link.attached(context.channel)
        } else if let back = node.links[p] {
            // The peer dialled us, so it is up: dial it now rather than at the end of a backoff.
            back.loop.execute { back.dial() }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard let peer else { return }
        node.metrics.framesReceived.increment()
        node.heard(from: peer)
        switch frame.type {
        case .heartbeat:
            write(context, MeshFrame(type: .heartbeatAck, correlation: frame.correlation))
        case .heartbeatAck:
            break
        case .request:
            let channel = context.channel
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let correlation = frame.correlation
            service.handle(request: frame.payload, from: peer) { result in
                let answer: MeshFrame
                switch result {
                case .success(let bytes): answer = MeshFrame(type: .response, correlation: correlation, payload: bytes)
                case .failure(let e): answer = MeshFrame(type: .failure, correlation: correlation, payload: Array("\(e)".utf8))
                }
                channel.eventLoop.execute { loopBound.value.reply(answer, on: channel) }
            }
        case .response, .failure:
            link?.answered(frame)
        case .oneWay:
            service.handle(oneWay: frame.payload, from: peer)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        link?.detached(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let peer {
            node.logger.warning("peer connection error; closing", metadata: ["peer": "\(peer)", "error": "\(error)"])
        } else {
            // Before the handshake (a failed TLS handshake, bytes that are not the mesh's).
            node.refused("\(error)")
        }
        context.close(promise: nil)
    }

    private func reply(_ frame: MeshFrame, on channel: any Channel) {
        guard channel.isActive else { return }
        node.metrics.framesSent.increment()
        channel.write(frame, promise: nil)
        scheduleFlush(channel)
    }

    private func write(_ context: ChannelHandlerContext, _ frame: MeshFrame) {
        node.metrics.framesSent.increment()
        context.write(wrapOutboundOut(frame), promise: nil)
        scheduleFlush(context.channel)
    }

    /// One flush per loop tick, however many frames this tick wrote.
    private func scheduleFlush(_ channel: any Channel) {
        guard !flushScheduled else { return }
        flushScheduled = true
        channel.eventLoop.execute { [self] in
            flushScheduled = false
            channel.flush()
        }
    }
}
