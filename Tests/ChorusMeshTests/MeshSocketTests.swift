import ChorusMesh
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Two peers over real loopback sockets: the handshake, a request and its response, and a refusal
/// when the rings differ.
@Suite struct MeshSocketTests {
    /// Answers every request with a response carrying the same correlation id and payload reversed;
    /// reports the accepted peer.
    final class Echo: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = MeshFrame
        typealias OutboundOut = MeshFrame
        let accepted: EventLoopPromise<String>
        init(accepted: EventLoopPromise<String>) { self.accepted = accepted }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .accepted(let peer)? = event as? MeshPeerHandler.Event { accepted.succeed(peer) }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let f = unwrapInboundIn(data)
            guard f.type == .request else { return }
            context.writeAndFlush(wrapOutboundOut(MeshFrame(type: .response, correlation: f.correlation, payload: f.payload.reversed())), promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) { accepted.fail(ChannelError.ioOnClosedChannel) }
    }

    /// Collects the frames the client receives.
    final class Collect: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = MeshFrame
        let accepted: EventLoopPromise<String>
        let response: EventLoopPromise<MeshFrame>
        init(accepted: EventLoopPromise<String>, response: EventLoopPromise<MeshFrame>) {
            self.accepted = accepted
            self.response = response
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .accepted(let peer)? = event as? MeshPeerHandler.Event { accepted.succeed(peer) }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) { response.succeed(unwrapInboundIn(data)) }

        func channelInactive(context: ChannelHandlerContext) {
            accepted.fail(ChannelError.ioOnClosedChannel)
            response.fail(ChannelError.ioOnClosedChannel)
        }
    }

    func pipeline(_ channel: any Channel, _ handshake: MeshHandshake, expected: String?, _ last: any ChannelHandler & Sendable, refused: @escaping @Sendable (String) -> Void) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(MeshByteDecoder(maxFrameBytes: 1 << 16)), MessageToByteHandler(MeshEncoder()),
                MeshPeerHandler(handshake: handshake, expected: expected, onRefused: refused), last,
            ])
        }
    }

    func run(serverSignature: UInt64, clientSignature: UInt64) throws -> (serverSaw: Result<String, any Error>, response: Result<MeshFrame, any Error>, refusals: [String]) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let members: Set<String> = ["node1", "node2"]
        let refusals = Mutex<[String]>([])
        let serverAccepted = group.next().makePromise(of: String.self)
        let server = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                pipeline(ch, MeshHandshake(selfId: "node1", ringSignature: serverSignature, members: members), expected: nil,
                         Echo(accepted: serverAccepted)) { r in refusals.withLock { $0.append("server: " + r) } }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let clientAccepted = group.next().makePromise(of: String.self)
        let response = group.next().makePromise(of: MeshFrame.self)
        let client = try ClientBootstrap(group: group)
            .channelInitializer { ch in
                pipeline(ch, MeshHandshake(selfId: "node2", ringSignature: clientSignature, members: members), expected: "node1",
                         Collect(accepted: clientAccepted, response: response)) { r in refusals.withLock { $0.append("client: " + r) } }
            }
            .connect(to: server.localAddress!).wait()
        defer { try? client.close().wait() }
        if (try? clientAccepted.futureResult.wait()) != nil {
            try client.writeAndFlush(MeshFrame(type: .request, correlation: 77, payload: [1, 2, 3])).wait()
        }
        let got = Result { try response.futureResult.wait() }
        let saw = Result { try serverAccepted.futureResult.wait() }
        return (saw, got, refusals.withLock { $0 })
    }

    @Test func peersOnTheSameRingShakeHandsAndCorrelate() throws {
        let r = try run(serverSignature: 7, clientSignature: 7)
        #expect(try r.serverSaw.get() == "node2")
        #expect(try r.response.get() == MeshFrame(type: .response, ring: 7, correlation: 77, payload: [3, 2, 1]))
        #expect(r.refusals.isEmpty)
    }

    @Test func aRingMismatchIsRefusedAndClosed() throws {
        let r = try run(serverSignature: 7, clientSignature: 8)
        #expect(throws: (any Error).self) { try r.response.get() }
        #expect(throws: (any Error).self) { try r.serverSaw.get() }
        #expect(r.refusals.contains { $0.hasPrefix("server: ring mismatch: node2") } || r.refusals.contains { $0.hasPrefix("client: ring mismatch: node1") }, "\(r.refusals)")
    }
}
