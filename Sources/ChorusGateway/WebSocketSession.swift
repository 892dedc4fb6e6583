import ChorusCore
import ChorusEngine
import Logging
import Metrics
import NIOCore
import Synchronization

/// One open session: the inbox listener and the writer of server frames. Thread-safe entry points hop
/// to the channel's event loop; frames written in one loop tick are flushed once.
public final class WebSocketSession: InboxListener, Sendable {
    public let userId: String
    public let sessionId: String
    public let tokenHash: TokenHash
    let outlet: SessionOutlet
    var eventLoop: any EventLoop { outlet.eventLoop }
    private let maxOutbound: Int
    private let state: NIOLoopBoundBox<OutboundState>
    /// Hops to the loop queued by other threads and not yet run (see `canRunInline`).
    private let hopsQueued = Atomic<Int>(0)

    struct OutboundState {
        var queued = 0
        var flushScheduled = false
        var closing = false
        /// Live entries held while a `sync` is being answered, so entries arrive in inboxSeq order.
        var syncing = false
        var held: [ByteBuffer] = []
    }

    private let delivered: Counter

    init(userId: String, sessionId: String, tokenHash: TokenHash, outlet: SessionOutlet, maxOutbound: Int, delivered: Counter) {
        self.delivered = delivered
        self.userId = userId
        self.sessionId = sessionId
        self.tokenHash = tokenHash
        self.outlet = outlet
        self.maxOutbound = maxOutbound
        state = NIOLoopBoundBox(OutboundState(), eventLoop: outlet.eventLoop)
    }

    public func deliver(inboxSeq: UInt64, entry: InboxEntry, message: MessageRecord?) {
        // Written straight into the buffer that is sent (one allocation a frame).
        let frame: ByteBuffer
        switch entry {
        case .message:
            guard let message else { return }
            frame = WebSocketServerFraming.textFrame(capacity: ServerFrame.messageCapacity(message), allocator: allocator) {
                ServerFrame.message(message, inboxSeq: inboxSeq, into: &$0)
            }
            delivered.increment()
        case .receipt:
            frame = WebSocketServerFraming.textFrame(capacity: ServerFrame.frameCapacity, allocator: allocator) {
                ServerFrame.receipt(entry, inboxSeq: inboxSeq, into: &$0)
            }
        }
        if canRunInline { deliverOnLoop(frame) } else { hop { $0.deliverOnLoop(frame) } }
    }

    private func deliverOnLoop(_ frame: ByteBuffer) {
        if state.value.syncing {
            state.value.held.append(frame)
            if state.value.held.count > maxOutbound { close(code: CloseCode.outboundOverflow) }
        } else {
            send(frame: frame)
        }
    }

    /// The connection's buffer allocator. Any thread.
    var allocator: ByteBufferAllocator { outlet.allocator }

    /// True on the session's event loop when no hop from another thread is still queued: work may run
    /// at once and frames keep the order they were handed over in. Most frames start on the session's
    /// own loop (its reads, its loop's log commits), so they cost no task and no closure.
    private var canRunInline: Bool { eventLoop.inEventLoop && hopsQueued.load(ordering: .acquiring) == 0 }

    /// Runs `body` on the session's event loop, after every hop queued before it.
    private func hop(_ body: @escaping @Sendable (WebSocketSession) -> Void) {
        hopsQueued.add(1, ordering: .releasing)
        eventLoop.execute {
            body(self)
            self.hopsQueued.subtract(1, ordering: .releasing)
        }
    }

    /// Queues a text frame; flushes once per loop tick, or after the loop's commit that wrote it
    /// (`CommitDeferral`). Past the bound (NIO's 64 KiB write buffer, then
    /// `maxOutbound` frames) the session is closed (4008).
    func send(_ bytes: [UInt8]) {
        send(frame: WebSocketServerFraming.frame(opcode: WebSocketServerFraming.text, payload: bytes, allocator: allocator))
    }

    /// `send` of a whole server frame (`WebSocketServerFraming.textFrame` or `WebSocketServerFraming.frame`).
    func send(frame: ByteBuffer) {
        // After its close frame a session sends nothing more (RFC 6455 section 5.5.1), also while that
        // frame still waits behind a slow reader's backlog.
        guard !state.value.closing else { return }
        if outlet.isWritable && state.value.queued == 0 {
            // The common case: the socket keeps up, NIO's own buffer (64 KiB high-water mark) holds
            // this frame; no per-frame promise.
            outlet.writeText(frame: frame, promise: nil)
        } else {
            // Backpressure: count frames written past the high-water mark until they are out.
            state.value.queued += 1
            guard state.value.queued <= maxOutbound else {
                close(code: CloseCode.outboundOverflow)
                return
            }
            let promise = eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenComplete { _ in self.state.value.queued -= 1 }
            outlet.writeText(frame: frame, promise: promise)
        }
        if !state.value.flushScheduled {
            state.value.flushScheduled = true
            // With the loop's commits (`CommitDeferral`): right after the commit that wrote this frame.
            let flush: @Sendable () -> Void = {
                self.state.value.flushScheduled = false
                self.outlet.flush()
            }
            // The slot is the calling thread's, so only the session's own loop may hand it over.
            if !(eventLoop.inEventLoop && CommitDeferral.hand(flush)) { eventLoop.execute(flush) }
        }
    }

    /// Sends from any thread.
    func sendFromAnyThread(_ bytes: [UInt8]) {
        if canRunInline { send(bytes) } else { hop { $0.send(bytes) } }
    }

    /// Sends a whole server frame, from any thread.
    func sendFromAnyThread(frame: ByteBuffer) {
        if canRunInline { send(frame: frame) } else { hop { $0.send(frame: frame) } }
    }

    func beginSync() { state.value.syncing = true }

    /// Ends a sync: writes `synced`, then the live entries held meanwhile.
    func endSync(_ syncedFrame: [UInt8]) {
        send(syncedFrame)
        state.value.syncing = false
        let held = state.value.held
        state.value.held = []
        for f in held { send(frame: f) }
    }

    /// Sends a close frame with `code` and closes the connection. Idempotent.
    /// Closes the session (`echo`: answering the client's close frame).
    public func close(code: UInt16, reason: String = "", echo: Bool = false) {
        eventLoop.execute {
            guard !self.state.value.closing else { return }
            self.state.value.closing = true
            self.outlet.close(code: code, reason: reason, echo: echo)
        }
    }

    /// How long a closing session waits for its close frame to be written.
    static let closeGrace = TimeAmount.seconds(30)
    /// How long, once its close frame is out, the server waits for the client's close frame or EOF.
    static let closeReplyWait = TimeAmount.seconds(2)

    /// Whether the server has started closing (its handler then drops data frames and ends the
    /// connection on the client's close frame). Call on the loop.
    var isClosing: Bool { state.value.closing }

    /// A close the server starts, as RFC 6455 section 7 says: send the close frame, stop reading
    /// data (the handlers drop it, see `isClosing`), then close the TCP connection when the client's
    /// close frame or EOF arrives, or `closeReplyWait` after the frame went out. Closing at once
    /// with unread input would make the kernel send RST, and the client would lose the close frame.
    /// A client that does not read never lets the close frame out: the connection goes anyway after
    /// `closeGrace`, dropping what is still queued (the client recovers with `sync`).
    /// When the client closed first (`echo`), the handshake is complete once the answer is out and
    /// the server closes the connection at once (RFC 6455 section 7.1.1).
    static func closeHandshake(_ channel: any Channel, code: UInt16, reason: String, echo: Bool = false) {
        let frame = WebSocketServerFraming.closeFrame(code: code, reason: reason, allocator: channel.allocator)
        channel.writeAndFlush(frame).whenComplete { _ in
            if echo { return channel.close(promise: nil) }
            channel.eventLoop.scheduleTask(in: closeReplyWait) { channel.close(promise: nil) }
        }
        channel.eventLoop.scheduleTask(in: closeGrace) { channel.close(promise: nil) }
    }
}
