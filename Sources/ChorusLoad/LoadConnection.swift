import ChorusCore
import NIOCore

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
    /// Masking keys for this loop's frames. NIO's `WebSocketMaskingKey.random()` makes a `getrandom`
    /// call per frame (a syscall per message sent); a generator seeded from it once does not.
    var maskKeys = SplitMix64(seed: UInt64.random(in: .min ... .max))

    /// Reused for each outgoing frame's JSON (no allocation per message).
    var scratch: [UInt8] = []

    init(loop: any EventLoop) { self.loop = loop }

    func nextMaskKey32() -> UInt32 { UInt32(truncatingIfNeeded: maskKeys.next()) }
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
    private let template: SendTemplate

    init(index: Int, plan: LoadPlan, runId: String, conversationId: String, bodyBytes: Int, stats: LoopStats, channel: any Channel) {
        self.index = index
        self.plan = plan
        self.runId = runId
        self.conversationId = conversationId
        self.bodyPadding = String(repeating: "x", count: max(0, bodyBytes - 40))
        self.stats = stats
        self.channel = channel
        self.hello = channel.eventLoop.makePromise()
        self.template = SendTemplate(runId: runId, clientMsgIdPrefix: "\(runId)-\(index)-", conversationId: conversationId, padding: bodyPadding)
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
        stats.histograms.timeline.recordSend(intendedOffset: offset, lagNanos: latency(Self.now(), offset))
        send(intendedOffset: offset)
        channel.flush()
    }

    private func send(intendedOffset: UInt64) {
        guard channel.isActive else { return }
        let n = ledger.noteSent(intendedOffset: intendedOffset)
        stats.outstanding += 1
        // {"type":"send","clientMsgId":"<prefix>N","conversationId":"C","body":"<runId>:N:OFFSET:<padding>"}
        var text: [UInt8] = []
        swap(&text, &stats.scratch)  // held once, so reusing its capacity does not copy
        text.removeAll(keepingCapacity: true)
        text.append(contentsOf: template.head)
        Self.appendDecimal(n, to: &text)
        text.append(contentsOf: template.middle)
        Self.appendDecimal(n, to: &text)
        text.append(UInt8(ascii: ":"))
        Self.appendDecimal(intendedOffset, to: &text)
        text.append(contentsOf: template.tail)
        var buffer = channel.allocator.buffer(capacity: text.count + 14)
        text.withUnsafeBytes { WebSocketClientFraming.writeFrame(opcode: WebSocketClientFraming.text, payload: $0, maskKey: stats.nextMaskKey32(), into: &buffer) }
        stats.scratch = text
        channel.write(buffer, promise: nil)
    }

    /// Appends `value` in decimal (no allocation).
    static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        var divisor: UInt64 = 1
        while divisor <= value / 10 { divisor *= 10 }
        var v = value
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(v / divisor))
            v %= divisor
            divisor /= 10
        } while divisor > 0
    }

    /// One text message from the server.
    func receive(_ payload: ByteBuffer) {
        payload.withUnsafeReadableBytes { receive(bytes: $0) }
    }

    private func receive(bytes b: UnsafeRawBufferPointer) {
        let now = Self.now()
        switch ServerFrameScan.kind(b) {
        case .hello:
            hello.succeed()
        case .ack:
            guard let r = ServerFrameScan.stringValue(ServerFrameScan.clientMsgIdKey, in: b), let n = messageNumber(b, r),
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
        case .message:
            guard let c = ServerFrameScan.stringValue(ServerFrameScan.conversationIdKey, in: b),
                ServerFrameScan.matches(b, c, template.conversationId),
                let body = ServerFrameScan.stringValue(ServerFrameScan.bodyKey, in: b),
                let (n, intended) = parseBody(b, body)
            else { return }
            guard ledger.noteDelivery(n) == .first else { return }
            stats.delivered += 1
            if plan.counts(intendedOffset: intended) {
                let nanos = latency(now, intended)
                LatencyHistograms.record(nanos, into: &stats.histograms.endToEnd)
                stats.histograms.timeline.record(intendedOffset: intended, latencyNanos: nanos)
            }
        case .error:
            guard let r = ServerFrameScan.stringValue(ServerFrameScan.refKey, in: b), let n = messageNumber(b, r) else { return }
            if ledger.outstanding[n] != nil { stats.outstanding -= 1 }
            let code = ServerFrameScan.stringValue(ServerFrameScan.codeKey, in: b).map { String(decoding: b[$0], as: UTF8.self) }
            ledger.noteRefused(n, code: code ?? "unknown")
        case .other:
            break
        }
    }

    /// Nanoseconds from a message's intended send time to `now`.
    private func latency(_ now: UInt64, _ intendedOffset: UInt64) -> UInt64 {
        let intended = startNanos + intendedOffset
        return now > intended ? now - intended : 0
    }

    /// The message number of one of our clientMsgIds (`<prefix>N`) at `b[r]`.
    private func messageNumber(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> UInt64? {
        let prefix = template.clientMsgIdPrefix
        guard r.count > prefix.count, ServerFrameScan.matches(b, r.lowerBound..<r.lowerBound + prefix.count, prefix) else { return nil }
        return ServerFrameScan.decimal(b, r.lowerBound + prefix.count..<r.upperBound)
    }

    /// `<runId>:N:OFFSET:...` at `b[r]`: the peer's message number and intended offset.
    private func parseBody(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> (UInt64, UInt64)? {
        let run = template.runIdColon
        guard r.count > run.count, ServerFrameScan.matches(b, r.lowerBound..<r.lowerBound + run.count, run) else { return nil }
        var i = r.lowerBound + run.count
        func field() -> UInt64? {
            let start = i
            while i < r.upperBound, b[i] != UInt8(ascii: ":") { i += 1 }
            guard i < r.upperBound else { return nil }
            defer { i += 1 }
            return ServerFrameScan.decimal(b, start..<i)
        }
        guard let n = field(), let offset = field() else { return nil }
        return (n, offset)
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
