import ChorusCore
import NIOCore
import NIOWebSocket

enum LoadError: Error { case noHello }

/// Per event loop counters and histograms. Touched only on its loop (`loop`), read by the runner
/// through `loop.submit`; that confinement is the invariant behind `@unchecked Sendable`.
final class LoopStats: @unchecked Sendable {
    let loop: any EventLoop
    var histograms = LatencyHistograms()
    var outstanding = 0
    var acked = 0
    var delivered = 0
    var lastAckNanos: UInt64 = 0
    /// Masking keys for this loop's frames. `WebSocketMaskingKey.random()` makes a `getrandom`
    /// call per frame (a syscall per message sent); a generator seeded from it once does not.
    var maskKeys = SplitMix64(seed: UInt64.random(in: .min ... .max))

    init(loop: any EventLoop) { self.loop = loop }

    func nextMaskKey() -> WebSocketMaskingKey { .random(using: &maskKeys) }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a fast generator for masking keys. RFC 6455 asks browsers
/// for unpredictable keys (against proxy cache poisoning by scripts); a load generator talking to
/// its own server needs only keys that vary, and a per-loop seed from the system generator.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One simulated client: sends on the plan's schedule, matches acks and deliveries in its ledger.
/// Lives on its channel's event loop; every method runs there.
final class LoadConnection: @unchecked Sendable {
    let index: Int
    let plan: LoadPlan
    let runId: String
    let conversationId: String
    let bodyPadding: String
    let stats: LoopStats
    let channel: any Channel
    let hello: EventLoopPromise<Void>
    private(set) var ledger = ConnectionLedger()
    private(set) var closedByServer = false
    private var stopping = false
    private var startNanos: UInt64 = 0
    private var timer: Scheduled<Void>?
    private let clientMsgIdPrefix: String

    init(index: Int, plan: LoadPlan, runId: String, conversationId: String, bodyBytes: Int, stats: LoopStats, channel: any Channel) {
        self.index = index
        self.plan = plan
        self.runId = runId
        self.conversationId = conversationId
        self.bodyPadding = String(repeating: "x", count: max(0, bodyBytes - 40))
        self.stats = stats
        self.channel = channel
        self.hello = channel.eventLoop.makePromise()
        self.clientMsgIdPrefix = "\(runId)-\(index)-"
        let hello = self.hello
        channel.eventLoop.scheduleTask(in: .seconds(10)) { hello.fail(LoadError.noHello) }
    }

    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// Starts at `startNanos` (monotonic). Closed loop: sends its window now and one more per ack.
    /// Open loop: the loop's `OpenLoopPacer` sends for it.
    func start(at startNanos: UInt64) {
        self.startNanos = startNanos
        guard !plan.isOpenLoop else { return }
        timer = channel.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(startNanos)) { [self] in
            for _ in 0..<plan.window { send(intendedOffset: Self.now() - startNanos) }
            channel.flush()
        }
    }

    /// Open loop: sends the message intended at `offset` (a no-op once stopped or closed).
    func sendScheduled(intendedOffset offset: UInt64) {
        guard !stopping else { return }
        send(intendedOffset: offset)
        channel.flush()
    }

    private func send(intendedOffset: UInt64) {
        guard channel.isActive else { return }
        let n = ledger.noteSent(intendedOffset: intendedOffset)
        stats.outstanding += 1
        let text = #"{"type":"send","clientMsgId":"\#(clientMsgIdPrefix)\#(n)","conversationId":"\#(conversationId)","body":"\#(runId):\#(n):\#(intendedOffset):\#(bodyPadding)"}"#
        var buffer = channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        channel.write(WebSocketFrame(fin: true, opcode: .text, maskKey: stats.nextMaskKey(), data: buffer), promise: nil)
    }

    /// One text frame from the server.
    func receive(_ bytes: ByteBufferView) {
        guard let frame = FlatJSON.parse(bytes), let type = frame.string("type") else { return }
        let now = Self.now()
        switch type {
        case "hello":
            hello.succeed()
        case "ack":
            guard let id = frame.string("clientMsgId"), let n = messageNumber(id),
                let intended = ledger.noteAck(n)
            else { return }
            stats.outstanding -= 1
            stats.acked += 1
            stats.lastAckNanos = max(stats.lastAckNanos, now)
            if plan.counts(intendedOffset: intended) {
                LatencyHistograms.record(latency(now, intended), into: &stats.histograms.ack)
            }
            if !plan.isOpenLoop, now - startNanos < plan.durationNanos {
                send(intendedOffset: now - startNanos)
                channel.flush()
            }
        case "message":
            guard frame.string("conversationId") == conversationId, let body = frame.string("body") else { return }
            let parts = body.split(separator: ":", maxSplits: 3)
            guard parts.count >= 3, parts[0] == runId, let n = UInt64(parts[1]), let intended = UInt64(parts[2]) else { return }
            guard ledger.noteDelivery(n) == .first else { return }
            stats.delivered += 1
            if plan.counts(intendedOffset: intended) {
                LatencyHistograms.record(latency(now, intended), into: &stats.histograms.endToEnd)
            }
        case "error":
            guard let ref = frame.string("ref"), let n = messageNumber(ref) else { return }
            if ledger.outstanding[n] != nil { stats.outstanding -= 1 }
            ledger.noteRefused(n, code: frame.string("code") ?? "unknown")
        default:
            break
        }
    }

    /// Nanoseconds from a message's intended send time to `now`.
    private func latency(_ now: UInt64, _ intendedOffset: UInt64) -> UInt64 {
        let intended = startNanos + intendedOffset
        return now > intended ? now - intended : 0
    }

    private func messageNumber(_ clientMsgId: String) -> UInt64? {
        guard clientMsgId.hasPrefix(clientMsgIdPrefix) else { return nil }
        return UInt64(clientMsgId.dropFirst(clientMsgIdPrefix.count))
    }

    /// The server closed the connection (close frame or EOF).
    func serverClosed() {
        guard !closedByServer, !stopping else { return }
        closedByServer = true
        timer?.cancel()
        hello.fail(ChannelError.ioOnClosedChannel)
    }

    /// Stops sending; a close after this is ours, not the server's.
    func stop() {
        stopping = true
        timer?.cancel()
    }
}

/// Frames only: text frames go to the connection, pings are answered, a close ends the channel.
final class LoadFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let connection: LoadConnection
    private var closing = false

    init(connection: LoadConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            connection.receive(frame.unmaskedData.readableBytesView)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: connection.stats.nextMaskKey(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            connection.serverClosed()
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.serverClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
