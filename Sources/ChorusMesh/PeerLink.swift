import NIOCore
import NIOPosix
import Synchronization

/// This node's outbound connection to one peer: dialling with backoff, this node's requests to
/// the peer and their answers, heartbeats. Confined to `loop`: every method runs there (that is
/// the invariant behind `@unchecked Sendable`).
final class PeerLink: @unchecked Sendable {
    let peer: String
    let address: PeerAddress
    let loop: any EventLoop
    unowned(unsafe) var node: MeshNode!

    private var channel: (any Channel)? {
        didSet { connected.store(channel != nil, ordering: .relaxed) }
    }
    /// Whether `channel` is set, readable from any thread.
    let connected = Atomic<Bool>(false)
    private var dialling = false
    private var stopped = false
    private var backoff: Backoff
    private var nextCorrelation: UInt64 = 1
    private var pending: [UInt64: @Sendable (Result<[UInt8], MeshError>) -> Void] = [:]
    /// Correlation ids with their deadlines, in sending order (so deadlines ascend): the sweep
    /// pops expired ones from the front. One timer per link instead of one per request.
    private var deadlines = CircularBuffer<(id: UInt64, deadline: NIODeadline)>()
    private var sweep: RepeatedTask?
    private var flushScheduled = false

    init(peer: String, address: PeerAddress, loop: any EventLoop) {
        self.peer = peer
        self.address = address
        self.loop = loop
        backoff = Backoff()
    }

    /// Connects unless connected, dialling or stopped; on failure tries again after a backoff.
    func dial() {
        guard channel == nil, !dialling, !stopped else { return }
        dialling = true
        let c = node.configuration
        ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(max(c.heartbeatMs * 2, 500)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] ch in node.configure(ch, link: self) }
            .connect(host: address.host, port: address.port)
            .whenComplete { [self] result in
                // The link is attached only once the peer's hello is accepted (`attached`).
                if case .failure = result {
                    dialling = false
                    redial()
                }
            }
    }

    private func redial() {
        guard !stopped else { return }
        if backoff.attempt == 0 {
            backoff = Backoff(baseMs: node.configuration.reconnectBaseMs, capMs: node.configuration.reconnectCapMs)
        }
        let delay = backoff.nextDelayMs(unit: Double.random(in: 0..<1))
        loop.scheduleTask(in: .milliseconds(delay)) { [self] in dial() }
    }

    /// The peer accepted our hello on `channel`.
    func attached(_ ch: any Channel) {
        dialling = false
        guard !stopped else { return ch.close(promise: nil) }
        channel = ch
        backoff.reset()
        node.logger.info("connected to peer \(peer) at \(address)")
    }

    /// The outbound connection closed: every outstanding request fails now (`unreachable`), and
    /// the link dials again.
    func detached(_ ch: any Channel) {
        if channel === ch {
            channel = nil
        } else if !dialling {
            return
        }
        dialling = false
        failAll(.unreachable(peer: peer))
        redial()
    }

    func request(_ payload: [UInt8], reply: @escaping @Sendable (Result<[UInt8], MeshError>) -> Void) {
        guard !stopped else { return reply(.failure(.stopped)) }
        guard let ch = channel else { return reply(.failure(.unreachable(peer: peer))) }
        guard ch.isWritable, pending.count < node.configuration.maxOutstandingRequests else {
            node.metrics.dropped.increment()
            return reply(.failure(.overloaded(peer: peer)))
        }
        let id = nextCorrelation
        nextCorrelation &+= 1
        pending[id] = reply
        deadlines.append((id, .now() + .milliseconds(node.configuration.requestTimeoutMs)))
        if sweep == nil {
            let every = TimeAmount.milliseconds(max(node.configuration.requestTimeoutMs / 10, 1))
            sweep = loop.scheduleRepeatedTask(initialDelay: every, delay: every) { [self] _ in expire() }
        }
        write(MeshFrame(type: .request, correlation: id, payload: payload), on: ch)
    }

    func oneWay(_ payload: [UInt8]) {
        guard let ch = channel, ch.isWritable else { return node.metrics.dropped.increment() }
        write(MeshFrame(type: .oneWay, correlation: 0, payload: payload), on: ch)
    }

    func heartbeat() {
        if let ch = channel {
            write(MeshFrame(type: .heartbeat, correlation: 0), on: ch)
        } else {
            dial()
        }
    }

    /// A `response` or `failure` for one of our requests (late ones, after a timeout, are dropped).
    func answered(_ frame: MeshFrame) {
        guard let reply = pending.removeValue(forKey: frame.correlation) else { return }
        if frame.type == .response {
            reply(.success(frame.payload))
        } else {
            reply(.failure(.remote(peer: peer, reason: String(decoding: frame.payload, as: UTF8.self))))
        }
        // Answered ids leave `deadlines` lazily (in `expire`); keep it from growing past `pending`.
        while let first = deadlines.first, pending[first.id] == nil { deadlines.removeFirst() }
    }

    /// Fails every request whose deadline has passed (`timeout`); answers may have come for the
    /// ids at the front already, those are just dropped.
    private func expire() {
        let now = NIODeadline.now()
        while let first = deadlines.first, first.deadline <= now {
            deadlines.removeFirst()
            pending.removeValue(forKey: first.id)?(.failure(.timeout(peer: peer)))
        }
    }

    func stop() {
        stopped = true
        sweep?.cancel()
        failAll(.stopped)
        channel?.close(promise: nil)
        channel = nil
    }

    private func failAll(_ error: MeshError) {
        let all = pending
        pending.removeAll()
        deadlines.removeAll()
        for reply in all.values { reply(.failure(error)) }
    }

    /// Writes now, flushes once at the end of this loop tick.
    private func write(_ frame: MeshFrame, on ch: any Channel) {
        node.metrics.framesSent.increment()
        ch.write(frame, promise: nil)
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.execute { [self] in
            flushScheduled = false
            channel?.flush()
        }
    }
}
