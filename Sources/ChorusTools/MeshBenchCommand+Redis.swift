import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// The routing layer of the classic design, for comparison: Redis pub/sub, spoken in RESP over NIO
/// by two connections (one publishing, one subscribed to one channel).
final class RedisPair: Sendable {
    let process: Process
    let publisher: any Channel
    let subscriber: any Channel

    /// nil when `redis-server` is not installed.
    static func start(group: MultiThreadedEventLoopGroup) throws -> RedisPair? {
        guard let path = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first(where: FileManager.default.isExecutableFile) else { return nil }
        let probe = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = probe.localAddress!.port!
        try probe.close().wait()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let current = StreamSlot()
        let subscribed = group.next().makePromise(of: Void.self)
        var subscriber: (any Channel)?
        for _ in 0..<100 where subscriber == nil {
            subscriber = try? ClientBootstrap(group: group)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPPushDecoder(subscribed: subscribed) { bytes in
                            current.value.withLock { $0 }?.arrived(bytes)
                        }))
                    }
                }
                .connect(host: "127.0.0.1", port: port).wait()
            if subscriber == nil { usleep(50_000) }
        }
        guard let subscriber else {
            p.terminate()
            return nil
        }
        let publisher = try ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(DiscardReplies()) } }
            .connect(host: "127.0.0.1", port: port).wait()
        try subscriber.writeAndFlush(ByteBuffer(bytes: command([Array("SUBSCRIBE".utf8), Array("chorus".utf8)]))).wait()
        try subscribed.futureResult.wait()
        return RedisPair(process: p, publisher: publisher, subscriber: subscriber, current: current)
    }

    private init(process: Process, publisher: any Channel, subscriber: any Channel, current: StreamSlot) {
        self.process = process
        self.publisher = publisher
        self.subscriber = subscriber
        self.current = current
    }

    /// The stream the subscriber's decoder reports to (the same box it captured).
    private let current: StreamSlot

    func stream(count: Int, size: Int, window: Int) -> StreamState.Result {
        let publisher = self.publisher
        let s = StreamState(count: count, size: size) { payload in
            let bytes = RedisPair.command([Array("PUBLISH".utf8), Array("chorus".utf8), payload])
            publisher.eventLoop.execute {
                publisher.write(ByteBuffer(bytes: bytes), promise: nil)
                publisher.eventLoop.execute { publisher.flush() }
            }
        }
        current.value.withLock { $0 = s }
        return s.run(window: window)
    }

    func stop() {
        try? publisher.close().wait()
        try? subscriber.close().wait()
        process.terminate()
        process.waitUntilExit()
    }

    static func command(_ parts: [[UInt8]]) -> [UInt8] {
        var out = Array("*\(parts.count)\r\n".utf8)
        for p in parts { out += Array("$\(p.count)\r\n".utf8) + p + [13, 10] }
        return out
    }
}

/// Which stream is running (shared by a transport's receiving side and the command).
final class StreamSlot: Sendable {
    let value = Mutex<StreamState?>(nil)
}

/// The publisher's integer replies, read and dropped.
final class DiscardReplies: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// RESP arrays of bulk strings and integers: `message` pushes go to `onMessage`; the subscription's
/// confirmation completes `subscribed`.
struct RESPPushDecoder: ByteToMessageDecoder {
    typealias InboundOut = Never
    let subscribed: EventLoopPromise<Void>
    let onMessage: @Sendable (ByteBufferView) -> Void

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        var b = buffer
        guard let count = Self.header(&b, UInt8(ascii: "*")) else { return .needMoreData }
        var elements: [ByteBufferView] = []
        for _ in 0..<count {
            guard let first = b.readableBytesView.first else { return .needMoreData }
            if first == UInt8(ascii: ":") {
                guard Self.header(&b, first) != nil else { return .needMoreData }
                continue
            }
            guard let n = Self.header(&b, UInt8(ascii: "$")), b.readableBytes >= n + 2 else { return .needMoreData }
            elements.append(b.readableBytesView.prefix(n))
            b.moveReaderIndex(forwardBy: n + 2)
        }
        buffer = b
        if elements.first.map({ $0.elementsEqual("message".utf8) }) == true, elements.count == 3 {
            onMessage(elements[2])
        } else if elements.first.map({ $0.elementsEqual("subscribe".utf8) }) == true {
            subscribed.succeed()
        }
        return .continue
    }

    /// `<prefix><number>\r\n`, consumed; nil if incomplete.
    static func header(_ b: inout ByteBuffer, _ prefix: UInt8) -> Int? {
        let view = b.readableBytesView
        guard view.first == prefix, let cr = view.firstIndex(of: 13), view.index(after: cr) < view.endIndex,
            let n = Int(String(decoding: view[view.index(after: view.startIndex)..<cr], as: UTF8.self))
        else { return nil }
        b.moveReaderIndex(forwardBy: view.distance(from: view.startIndex, to: cr) + 2)
        return n
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState { .needMoreData }
}
