import ChorusCore
import ChorusEngine
import Dispatch
import Metrics
import NIOCore
import NIOPosix
import Testing
@testable import ChorusGateway

/// The session's write shell over a real loopback socket: frames reach the client in the order they
/// were handed to the session, whether they started on its loop (written at once) or on another
/// thread (a hop to the loop).
@Suite struct WebSocketSessionOrderTests {
    /// Collects what the client side reads.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        let wanted: Int
        let done: EventLoopPromise<[UInt8]>
        init(wanted: Int, done: EventLoopPromise<[UInt8]>) {
            self.wanted = wanted
            self.done = done
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes += Array(buffer: unwrapInboundIn(data))
            if bytes.count >= wanted { done.succeed(bytes) }
        }
    }

    @Test func aSendOnTheLoopWaitsBehindAHopQueuedFromAnotherThread() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let accepted = group.next().makePromise(of: Channel.self)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                accepted.succeed(channel)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let first: [UInt8] = Array("first".utf8), second: [UInt8] = Array("second".utf8)
        let expected = ServerWire.frame(opcode: ServerWire.text, payload: first, allocator: ByteBufferAllocator()).readableBytesView
            + ServerWire.frame(opcode: ServerWire.text, payload: second, allocator: ByteBufferAllocator()).readableBytesView
        let done = group.next().makePromise(of: [UInt8].self)
        let client = try await ClientBootstrap(group: group)
            .channelInitializer { $0.pipeline.addHandler(Collector(wanted: expected.count, done: done)) }
            .connect(to: server.localAddress!).get()
        let channel = try await accepted.futureResult.get()
        // Made on its loop, as the gateway makes sessions.
        let session = try await channel.eventLoop.submit {
            WebSocketSession(
                userId: "u", sessionId: "s", tokenHash: TokenHash([UInt8](repeating: 0, count: 32)),
                outlet: .channel(channel), maxOutbound: 16, delivered: Counter(label: "test_delivered"))
        }.get()

        // On the loop: another thread hands over `first` (it must hop, the loop is busy here), then
        // the loop itself hands over `second`. Written at once, `second` would overtake `first`.
        try await channel.eventLoop.submit {
            let handedOver = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                session.sendFromAnyThread(first)
                handedOver.signal()
            }
            handedOver.wait()
            session.sendFromAnyThread(second)
        }.get()

        #expect(try await done.futureResult.get() == Array(expected))
        try await client.close()
        try await server.close()
        try await group.shutdownGracefully()
    }

    /// Once its close frame is out, a session writes nothing more: a frame handed over after `close`
    /// is dropped, and the client reads the close frame and then the end of the stream.
    @Test func nothingIsSentAfterTheCloseFrame() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let accepted = group.next().makePromise(of: Channel.self)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                accepted.succeed(channel)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let received = group.next().makePromise(of: [UInt8].self)
        let client = try await ClientBootstrap(group: group)
            .channelInitializer { $0.pipeline.addHandler(UntilClosed(done: received)) }
            .connect(to: server.localAddress!).get()
        let channel = try await accepted.futureResult.get()
        let session = try await channel.eventLoop.submit {
            WebSocketSession(
                userId: "u", sessionId: "s", tokenHash: TokenHash([UInt8](repeating: 0, count: 32)),
                outlet: .channel(channel), maxOutbound: 16, delivered: Counter(label: "test_delivered"))
        }.get()

        try await channel.eventLoop.submit { session.close(code: CloseCode.tokenRevoked, reason: "bye") }.get()
        try await channel.eventLoop.submit { session.sendFromAnyThread(Array("late".utf8)) }.get()

        let closeFrame = ServerWire.closeFrame(code: CloseCode.tokenRevoked, reason: "bye", allocator: ByteBufferAllocator())
        #expect(try await received.futureResult.get() == Array(closeFrame.readableBytesView))
        try? await client.close()
        try await server.close()
        try await group.shutdownGracefully()
    }

    /// Collects what the client reads until the server closes the connection.
    final class UntilClosed: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        let done: EventLoopPromise<[UInt8]>
        init(done: EventLoopPromise<[UInt8]>) { self.done = done }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { bytes += Array(buffer: unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { done.succeed(bytes) }
    }
}
