import ChorusCluster
import Logging
import Metrics
import NIOCore
import NIOPosix
import Synchronization

/// The mesh of one node: a listener for peers, one outbound connection per peer (dialled with
/// backoff and jitter, carrying this node's requests and heartbeats), failure detection, and
/// request/response correlation with timeouts. Writes are flushed once per event-loop tick.
public final class MeshNode: Sendable {
    public let configuration: MeshConfiguration
    /// The current handshake rule (members, ring stamped, rings accepted); changes with membership.
    let rule: HandshakeCell
    var handshake: MeshHandshake { rule.rule }
    let group: any EventLoopGroup
    let logger: Logger
    /// What peers' frames go to; given by `start(serving:)`, before any connection exists.
    private let serviceCell = Mutex<(any MeshService)?>(nil)
    var service: (any MeshService)? { serviceCell.withLock { $0 } }
    /// One link per peer; membership changes add and remove links.
    let linkTable: Mutex<[String: PeerLink]>
    var links: [String: PeerLink] { linkTable.withLock { $0 } }
    let isStarted = Atomic<Bool>(false)
    let detector: Mutex<FailureDetector>
    let listener = Mutex<(any Channel)?>(nil)
    /// Connections peers dialled to this node (closed on `stop`); at most one live per peer in
    /// steady state, bounded by the listener's backlog while peers reconnect.
    let inbound = Mutex<[ObjectIdentifier: any Channel]>([:])
    let ticker = Mutex<RepeatedTask?>(nil)
    /// Refusals since the last one logged, and when that was (ms): anyone who reaches the port can
    /// cause refusals, so they are logged at most once per `refusalLogEveryMs`.
    let refusalLog = Mutex<(suppressed: Int, lastMs: Int64?)>((0, nil))
    static let refusalLogEveryMs: Int64 = 10_000
    let started: ContinuousClock.Instant
    let metrics: MeshMetrics

    /// A node that can already be handed to the parts that send to peers (as their transport);
    /// nothing is received until `start(serving:)`.
    public init(configuration c: MeshConfiguration, group: any EventLoopGroup, logger: Logger) {
        configuration = c
        self.group = group
        self.logger = logger
        rule = HandshakeCell(MeshHandshake(selfId: c.selfId, ringSignature: c.ringSignature, members: Set(c.peers.keys).union([c.selfId])))
        started = .now
        detector = Mutex(FailureDetector(peers: Array(c.peers.keys), now: 0, suspectAfterMs: c.suspectAfterMs, deadAfterMs: c.deadAfterMs))
        metrics = MeshMetrics(peers: Array(c.peers.keys))
        var links: [String: PeerLink] = [:]
        for (id, address) in c.peers { links[id] = PeerLink(peer: id, address: address, loop: group.next()) }
        linkTable = Mutex(links)
        for link in links.values { link.node = self }
    }

    /// Milliseconds since the node was created (the failure detector's clock).
    var nowMs: Int64 {
        let d = ContinuousClock.now - started
        return d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }

    /// Binds the peer listener, starts dialling every peer and the heartbeat ticker; what peers
    /// send goes to `service` from then on. Returns the address actually bound (port 0 picks one).
    @discardableResult
    public func start(serving service: any MeshService) async throws -> PeerAddress {
        serviceCell.withLock { $0 = service }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] ch in self.configure(ch, link: nil) }
            .bind(host: configuration.listen.host, port: configuration.listen.port).get()
        listener.withLock { $0 = channel }
        isStarted.store(true, ordering: .relaxed)
        for link in links.values { link.loop.execute { link.dial() } }
        let task = group.next().scheduleRepeatedTask(
            initialDelay: .milliseconds(configuration.heartbeatMs), delay: .milliseconds(configuration.heartbeatMs)
        ) { [self] _ in tick() }
        ticker.withLock { $0 = task }
        return PeerAddress(host: configuration.listen.host, port: channel.localAddress?.port ?? configuration.listen.port)
    }

    /// Closes the listener and every connection; fails what is outstanding with `stopped`.
    public func stop() async {
        ticker.withLock { $0?.cancel() }
        if let l = listener.withLock({ $0 }) { try? await l.close() }
        for ch in inbound.withLock({ $0.values }) { try? await ch.close() }
        for link in links.values { try? await link.loop.submit { link.stop() }.get() }
    }

    /// Changes membership: links to new peers (dialled at once if the node runs), links to removed
    /// ones stopped, the ring stamped on frames and the rings accepted from peers.
    public func reconfigure(peers: [String: PeerAddress], ringSignature: UInt64, alsoAccepting: Set<UInt64>) {
        rule.set(MeshHandshake(
            selfId: configuration.selfId, ringSignature: ringSignature, members: Set(peers.keys).union([configuration.selfId]),
            alsoAccepting: alsoAccepting))
        let (added, removed) = linkTable.withLock { table -> ([PeerLink], [PeerLink]) in
            var added: [PeerLink] = []
            for (id, address) in peers where table[id] == nil {
                let link = PeerLink(peer: id, address: address, loop: group.next())
                link.node = self
                table[id] = link
                added.append(link)
            }
            let gone = table.keys.filter { peers[$0] == nil }
            return (added, gone.compactMap { table.removeValue(forKey: $0) })
        }
        let now = nowMs
        detector.withLock { $0.setPeers(Array(peers.keys), now: now) }
        metrics.track(peers: Array(peers.keys))
        if isStarted.load(ordering: .relaxed) { for link in added { link.loop.execute { link.dial() } } }
        for link in removed { link.loop.execute { link.stop() } }
        logger.info("mesh membership changed", metadata: [
            "peers": "\(peers.keys.sorted())", "ring": "\(String(ringSignature, radix: 16))",
        ])
    }

    /// Sends `payload` as a request to `peer`; `reply` runs once, on the link's event loop.
    public func request(_ payload: [UInt8], to peer: String, reply: @escaping @Sendable (Result<[UInt8], MeshError>) -> Void) {
        guard let link = links[peer] else { return reply(.failure(.unknownPeer(peer))) }
        if link.loop.inEventLoop {
            link.request(payload, reply: reply)
        } else {
            link.loop.execute { link.request(payload, reply: reply) }
        }
    }

    /// Async form of `request`.
    public func request(_ payload: [UInt8], to peer: String) async throws(MeshError) -> [UInt8] {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<[UInt8], MeshError>, Never>) in
            request(payload, to: peer) { c.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Sends a one-way frame. Best effort: one that cannot go now (unreachable or overloaded) is
    /// dropped and counted (`chorus_mesh_dropped_total`); callers use it only for what a client can
    /// recover (typing, presence pushes), never for state.
    public func send(_ payload: [UInt8], to peer: String) {
        guard let link = links[peer] else { return }
        if link.loop.inEventLoop {
            link.oneWay(payload)
        } else {
            link.loop.execute { link.oneWay(payload) }
        }
    }

    /// Every peer's status, in peer order.
    public var statuses: [(peer: String, status: FailureDetector.Status)] { detector.withLock { $0.all } }

    /// Joined: every peer is alive, or has had the time to be declared dead (a down peer must not
    /// keep the rest of the cluster from serving).
    public var hasJoined: Bool {
        allPeersAlive || nowMs >= configuration.deadAfterMs
    }

    /// Whether every peer is alive and this node's own connection to it is up (the node has
    /// joined its mesh).
    public var allPeersAlive: Bool {
        statuses.allSatisfy { $0.status == .alive } && links.values.allSatisfy { $0.connected.load(ordering: .relaxed) }
    }

    /// A frame arrived from `peer` (any connection, any type).
    func heard(from peer: String) {
        let now = nowMs
        if let change = detector.withLock({ $0.heard(from: peer, now: now) }) { report(change) }
    }

    private func tick() {
        let changes = detector.withLock { $0.tick(now: nowMs) }
        for c in changes { report(c) }
        for link in links.values { link.loop.execute { link.heartbeat() } }
    }

    private func report(_ change: FailureDetector.Change) {
        metrics.setStatus(change.to, of: change.peer)
        service?.peer(change.peer, changedTo: change.to)
        let level: Logger.Level = change.to == .alive ? .info : .warning
        logger.log(level: level, "peer \(change.peer) is \(change.to.rawValue)", metadata: ["from": "\(change.from.rawValue)"])
    }

    /// A peer connection closed before or at the handshake: counted, and logged unless another
    /// refusal was logged less than `refusalLogEveryMs` ago (then counted in the next line).
    func refused(_ reason: String) {
        metrics.refused.increment()
        let now = nowMs
        let suppressed: Int? = refusalLog.withLock { log in
            if let last = log.lastMs, now - last < Self.refusalLogEveryMs {
                log.suppressed += 1
                return nil
            }
            defer { log = (0, now) }
            return log.suppressed
        }
        guard let suppressed else { return }
        logger.warning("peer connection refused", metadata: ["reason": "\(reason)", "alsoRefusedSinceLastLine": "\(suppressed)"])
    }

    /// The pipeline of every peer connection: frames, the handshake, then this node's shell.
    func configure(_ channel: any Channel, link: PeerLink?) -> EventLoopFuture<Void> {
        // Connections exist only after `start(serving:)`; one without a service is refused.
        guard let service else { return channel.eventLoop.makeFailedFuture(MeshError.stopped) }
        if link == nil {
            let id = ObjectIdentifier(channel)
            let admitted = inbound.withLock { open in
                guard open.count < configuration.maxInboundConnections else { return false }
                open[id] = channel
                return true
            }
            guard admitted else {
                metrics.refused.increment()
                return channel.eventLoop.makeFailedFuture(MeshError.overloaded(peer: "inbound"))
            }
            channel.closeFuture.whenComplete { [self] _ in _ = inbound.withLock { $0.removeValue(forKey: id) } }
        }
        return channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            if let tls = configuration.tls { try sync.addHandler(try tls.handler(inbound: link == nil)) }
            try sync.addHandlers([
                ByteToMessageHandler(MeshByteDecoder(maxFrameBytes: configuration.maxFrameBytes)),
                MessageToByteHandler(MeshEncoder()),
                MeshPeerHandler(
                    cell: rule, expected: link?.peer, verifiesCertificate: configuration.tls != nil,
                    handshakeTimeout: .milliseconds(configuration.handshakeTimeoutMs)
                ) { [self] reason in refused(reason) },
                MeshConnectionHandler(node: self, link: link, service: service),
            ])
            try channel.syncOptions?.setOption(
                .writeBufferWaterMark, value: .init(low: configuration.maxQueuedBytes / 2, high: configuration.maxQueuedBytes))
        }
    }
}
