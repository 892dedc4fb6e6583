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
/// thread (a hop to the loop), and nothing follows the close frame.
@Suite struct WebSocketSessionOrderTests {
    /// A session on the server side of a loopback connection, and the client's end.
    struct Connected {
        let group: MultiThreadedEventLoopGroup
        let server: any Channel
        let client: any Channel
        let channel: any Channel
        let session: WebSocketSession

        /// `slowReader`: small socket buffers and a client that reads only once told to (`autoRead`).
        static func open(client handler: any ChannelHandler & Sendable, slowReader: Bool = false) async throws -> Connected {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let accepted = group.next().makePromise(of: Channel.self)
            let server = try await ServerBootstrap(group: group)
                .childChannelOption(.socketOption(.so_sndbuf), value: slowReader ? 4_096 : 131_072)
                .childChannelInitializer { channel in
                    accepted.succeed(channel)
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                .bind(host: "127.0.0.1", port: 0).get()
            let client = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.so_rcvbuf), value: slowReader ? 4_096 : 131_072)
                .channelOption(.autoRead, value: !slowReader)
                .channelInitializer { $0.pipeline.addHandler(handler) }
                .connect(to: server.localAddress!).get()
            let channel = try await accepted.futureResult.get()
            // Made on its loop, as the gateway makes sessions.
            let session = try await channel.eventLoop.submit {
                WebSocketSession(
                    userId: "u", sessionId: "s", tokenHash: TokenHash([UInt8](repeating: 0, count: 32)),
                    outlet: .channel(channel), maxOutbound: 1_000, delivered: Counter(label: "test_delivered"))
            }.get()
            return Connected(group: group, server: server, client: client, channel: channel, session: session)
        }

        func shutdown() async throws {
            try? await client.close()
            try await server.close()
            try await group.shutdownGracefully()
        }
    }

    /// Collects what the client reads: `wanted` bytes, or everything until the server closes.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        let wanted: Int?
        let done: EventLoopPromise<[UInt8]>
        init(wanted: Int? = nil, done: EventLoopPromise<[UInt8]>) {
            self.wanted = wanted
            self.done = done
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes += Array(buffer: unwrapInboundIn(data))
            if let wanted, bytes.count >= wanted { done.succeed(bytes) }
        }
        func channelInactive(context: ChannelHandlerContext) { done.succeed(bytes) }
    }

    @Test func aSendOnTheLoopWaitsBehindAHopQueuedFromAnotherThread() async throws {
        let first: [UInt8] = Array("first".utf8), second: [UInt8] = Array("second".utf8)
        let expected = WebSocketServerFraming.frame(opcode: WebSocketServerFraming.text, payload: first, allocator: ByteBufferAllocator()).readableBytesView
            + WebSocketServerFraming.frame(opcode: WebSocketServerFraming.text, payload: second, allocator: ByteBufferAllocator()).readableBytesView
        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: [UInt8].self)
        let c = try await Connected.open(client: Collector(wanted: expected.count, done: done))
        let session = c.session

        // On the loop: another thread hands over `first` (it must hop, the loop is busy here), then
        // the loop itself hands over `second`. Written at once, `second` would overtake `first`.
        try await c.channel.eventLoop.submit {
            let handedOver = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                session.sendFromAnyThread(first)
                handedOver.signal()
            }
            handedOver.wait()
            session.sendFromAnyThread(second)
        }.get()

        #expect(try await done.futureResult.get() == Array(expected))
        try await c.shutdown()
    }

    /// A client that does not read keeps the close frame waiting in the server's buffer; a frame
    /// handed over after `close` must not be written behind it. The client then reads everything:
    /// text frames, the close frame, the end of the stream, nothing between the last two.
    @Test func nothingIsSentAfterTheCloseFrame() async throws {
        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: [UInt8].self)
        let c = try await Connected.open(client: Collector(done: done), slowReader: true)
        let session = c.session, channel = c.channel
        let filler = [UInt8](repeating: UInt8(ascii: "x"), count: 1_000)

        let sent = try await channel.eventLoop.submit {
            var n = 0
            while channel.isWritable && n < 500 {
                session.sendFromAnyThread(filler)
                n += 1
            }
            session.close(code: CloseCode.tokenRevoked, reason: "bye")
            return n
        }.get()
        #expect(!(try await channel.eventLoop.submit { channel.isWritable }.get()), "the slow reader's buffer never filled")
        try await channel.eventLoop.submit { session.sendFromAnyThread(Array("late".utf8)) }.get()
        c.client.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in c.client.read() }

        let frames = try #require(Self.serverFrames(try await done.futureResult.get()))
        #expect(frames.count == sent + 1)
        #expect(frames.dropLast().allSatisfy { $0.opcode == WebSocketServerFraming.text && $0.payload == filler })
        #expect(frames.last.map { $0.opcode == WebSocketServerFraming.close && $0.payload.prefix(2) == [0x0F, 0xA1] } == true)  // 4001
        try await c.shutdown()
    }

    /// Unmasked server frames, back to back; nil if the bytes end inside one.
    static func serverFrames(_ b: [UInt8]) -> [(opcode: UInt8, payload: [UInt8])]? {
        var out: [(opcode: UInt8, payload: [UInt8])] = []
        var i = 0
        while i < b.count {
            guard i + 2 <= b.count else { return nil }
            var length = Int(b[i + 1] & 0x7F), start = i + 2
            if length == 126 {
                guard start + 2 <= b.count else { return nil }
                length = Int(b[start]) << 8 | Int(b[start + 1])
                start += 2
            }
            guard start + length <= b.count else { return nil }
            out.append((b[i] & 0x0F, Array(b[start..<start + length])))
            i = start + length
        }
        return out
    }
}
