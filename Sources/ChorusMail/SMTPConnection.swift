import ChorusReengagement
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Why an SMTP exchange could not finish (every case means: try again later).
public enum SMTPError: Error, Equatable, Sendable {
    case timeout(String)
    case closed
    case protocolError(String)
}

/// Splits the server's byte stream into lines and lines into replies. Codec only: bounded line
/// length (4,096 bytes) and lines per reply; anything else closes the connection.
final class SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply
    static let maxLineBytes = 4_096
    private var parser = SMTPReplyParser()

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: 0x0A) else {
            if buffer.readableBytes > Self.maxLineBytes { throw SMTPError.protocolError("a reply line over \(Self.maxLineBytes) bytes") }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        var line = buffer.readString(length: length) ?? ""
        buffer.moveReaderIndex(forwardBy: 1)
        if line.hasSuffix("\r") { line.removeLast() }
        if let reply = try parser.feed(line) { context.fireChannelRead(wrapInboundOut(reply)) }
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Hands each reply to the exchange waiting for it, in order; replies nobody waits for yet (the
/// greeting) are kept for the next one. Runs on the channel's event loop only.
final class ReplyWaiter: ChannelInboundHandler {
    typealias InboundIn = SMTPReply
    private var waiting = CircularBuffer<(id: Int, promise: EventLoopPromise<SMTPReply>)>()
    private var early = CircularBuffer<SMTPReply>()
    private var closed = false
    private var nextId = 0

    /// Registers a wait; returns its id (for `abandon`).
    func expect(_ promise: EventLoopPromise<SMTPReply>) -> Int {
        nextId += 1
        if closed {
            promise.fail(SMTPError.closed)
        } else if let reply = early.popFirst() {
            promise.succeed(reply)
        } else {
            waiting.append((nextId, promise))
        }
        return nextId
    }

    /// Gives up a wait (its timeout fired): true if it was still waiting.
    func abandon(_ id: Int) -> EventLoopPromise<SMTPReply>? {
        guard let i = waiting.firstIndex(where: { $0.id == id }) else { return nil }
        return waiting.remove(at: i).promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        if let next = waiting.popFirst() { next.promise.succeed(reply) } else if early.count < 8 { early.append(reply) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        while let w = waiting.popFirst() { w.promise.fail(SMTPError.closed) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closed = true
        while let w = waiting.popFirst() { w.promise.fail(error) }
        context.close(promise: nil)
    }
}

/// One SMTP connection: send a line (or the DATA payload), wait for the reply, each with a timeout.
/// A timeout closes the connection (the conversation is out of step from then on).
final class SMTPConnection: Sendable {
    let channel: any Channel
    private let waiter: NIOLoopBound<ReplyWaiter>

    private init(channel: any Channel, waiter: ReplyWaiter) {
        self.channel = channel
        self.waiter = NIOLoopBound(waiter, eventLoop: channel.eventLoop)
    }

    static func connect(host: String, port: Int, group: any EventLoopGroup, timeout: TimeAmount) async throws -> SMTPConnection {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([ByteToMessageHandler(SMTPReplyDecoder()), ReplyWaiter()])
                }
            }
            .connect(host: host, port: port).get()
        // The waiter is bound to the channel's loop, so it is looked up there.
        return try await channel.eventLoop.submit {
            SMTPConnection(channel: channel, waiter: try channel.pipeline.syncOperations.handler(type: ReplyWaiter.self))
        }.get()
    }

    /// Writes `bytes` (if any) and returns the next reply.
    func exchange(_ bytes: [UInt8]?, timeout: TimeAmount, step: String) async throws -> SMTPReply {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: SMTPReply.self)
        loop.execute { [channel, waiter] in
            let id = waiter.value.expect(promise)
            if let bytes { channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil) }
            let timer = loop.scheduleTask(in: timeout) {
                guard let abandoned = waiter.value.abandon(id) else { return }
                abandoned.fail(SMTPError.timeout(step))
                channel.close(promise: nil)
            }
            // Cancelled once answered: a burst would otherwise keep every step's timer (4 per
            // email, 30 s each: 480,000 at 4,000 emails/s) in the event loop's heap.
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        return try await promise.futureResult.get()
    }

    func command(_ line: String, timeout: TimeAmount) async throws -> SMTPReply {
        try await exchange(Array((line + "\r\n").utf8), timeout: timeout, step: String(line.prefix(while: { $0 != " " && $0 != ":" })))
    }

    /// Puts TLS under the SMTP codec (after the server's 220 to STARTTLS) and waits for the
    /// handshake; a failed handshake (an untrusted certificate) fails the connection.
    func startTLS(context: NIOSSLContext, serverHostname: String?) async throws {
        let handshake = channel.eventLoop.makePromise(of: Void.self)
        try await channel.eventLoop.submit { [channel] in
            let tls = try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
            try channel.pipeline.syncOperations.addHandler(tls, position: .first)
            try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(done: handshake), position: .after(tls))
        }.get()
        try await handshake.futureResult.get()
    }

    func close() { channel.close(promise: nil) }
}

/// Completes `done` when the TLS handshake finishes, or fails it with the connection's error.
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let done: EventLoopPromise<Void>
    private var finished = false

    init(done: EventLoopPromise<Void>) { self.done = done }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent, !finished {
            finished = true
            done.succeed(())
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !finished {
            finished = true
            done.fail(error)
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished {
            finished = true
            done.fail(SMTPError.closed)
        }
        context.fireChannelInactive()
    }
}
