import ChorusCore
import ChorusEngine
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Counts open client connections against `maxConnections`.
final class ConnectionCounter: Sendable {
    let open = Atomic<Int>(0)
}

/// The HTTP and WebSocket listener as a `Service`: binds, serves until graceful shutdown,
/// then stops accepting and closes its connections.
public final class GatewayServer: Service, Sendable {
    private let configuration: GatewayConfiguration
    private let router: APIRouter
    private let sessions: SessionServices
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let counter = ConnectionCounter()
    private let bound = Mutex<SocketAddress?>(nil)
    private let onListening: @Sendable (SocketAddress) -> Void

    public init(
        configuration: GatewayConfiguration, router: APIRouter, sessions: SessionServices, group: MultiThreadedEventLoopGroup,
        logger: Logger, onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.router = router
        self.sessions = sessions
        self.group = group
        self.logger = logger
        self.onListening = onListening
    }

    /// Open client connections right now.
    public var openConnections: Int { counter.open.load(ordering: .relaxed) }

    public func run() async throws {
        let config = configuration
        let router = self.router
        let sessions = self.sessions
        let counter = self.counter
        let children = Mutex<[ObjectIdentifier: Channel]>([:])
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.recvAllocator, value: Self.receiveBuffers)
            .childChannelInitializer { channel in
                let open = counter.open.add(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { _ in
                    counter.open.subtract(1, ordering: .relaxed)
                    children.withLock { $0[ObjectIdentifier(channel)] = nil }
                }
                return channel.eventLoop.makeCompletedFuture {
                    // With TLS, everything below (the 503 past the cap too) goes through it.
                    if let tls = config.tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    if open > config.maxConnections {
                        // Past the cap: a complete 503 and close; nothing else is disturbed.
                        return try channel.pipeline.syncOperations.addHandler(OverCapacityHandler())
                    }
                    children.withLock { $0[ObjectIdentifier(channel)] = channel }
                    try Self.configure(channel, config: config, router: router, sessions: sessions)
                }
            }
            .bind(host: config.host, port: config.port).get()
        if let address = server.localAddress {
            bound.withLock { $0 = address }
            onListening(address)
        }
        try await gracefulShutdown()
        logger.info("gateway stopping: no new connections, closing open ones")
        try? await server.close()
        // WebSocket sessions get their close frame (1001) and the closing handshake; whatever is
        // still open `closeReplyWait` later is closed.
        let open = children.withLock { Array($0.values) }
        sessions.registry.close(usersWhere: { _ in true }, code: CloseCode.goingAway, reason: "server stopping")
        router.clusterGateway?.proxies.closeAll(code: CloseCode.goingAway, reason: "server stopping")
        let loop = group.next()
        let forced = loop.scheduleTask(in: WebSocketSession.closeReplyWait + .milliseconds(500)) { for c in open { c.close(promise: nil) } }
        // Plain HTTP connections (no WebSocket codec) close at once.
        for c in open { c.pipeline.handler(type: WebSocketCodecHandler.self).whenFailure { _ in c.close(promise: nil) } }
        try? await EventLoopFuture.andAllComplete(open.map(\.closeFuture), on: loop).get()
        forced.cancel()
    }


    /// The HTTP pipeline of one client connection: NIO's decoder with the head bounds of
    /// PROTOCOL.md section 6 (over them: `431`, from `HTTPServerHandler`), the deadlines before the
    /// upgrade handler (so they see a head as soon as it is decoded), then the request handler.
    /// A WebSocket upgrade removes everything HTTP.
    static func configure(_ channel: any Channel, config: GatewayConfiguration, router: APIRouter, sessions: SessionServices) throws {
        let http = HTTPServerHandler(router: router, maxBodyBytes: config.maxRequestBodyBytes, trustedProxies: config.trustedProxies)
        let deadlines = ConnectionDeadlineHandler(headerTimeoutMs: config.headerTimeoutMs, idleTimeoutMs: config.idleTimeoutMs)
        let upgrade: NIOHTTPServerUpgradeConfiguration = (
            upgraders: [webSocketUpgrader(config: config, sessions: sessions, cluster: router.clusterGateway)],
            completionHandler: { context in
                let ops = context.pipeline.syncOperations
                if let h = try? ops.handler(type: HTTPServerHandler.self) { ops.removeHandler(h, promise: nil) }
                if let d = try? ops.handler(type: ConnectionDeadlineHandler.self) { ops.removeHandler(d, promise: nil) }
            }
        )
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldCount = config.maxHeaderCount
        limits.maxHeaderListSize = config.maxHeaderBytes
        limits.maxHeaderFieldSize = config.maxHeaderBytes
        let pipeline = channel.pipeline.syncOperations
        try pipeline.configureHTTPServerPipeline(
            withServerUpgrade: upgrade, withErrorHandling: false, withOutboundHeaderValidation: true, withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits)
        try pipeline.addHandler(deadlines, position: .before(try pipeline.handler(type: HTTPServerUpgradeHandler.self)))
        try pipeline.addHandler(http)
    }

    /// Each channel keeps its receive buffer for the next read, so an idle connection holds one, as
    /// large as any read made it: NIO's default starts at 2 KB. Starting at 64 bytes, it grows (by
    /// doubling) only as far as the connection's reads have needed; a busy one still reaches 64 KB.
    /// Measured: 6,372 bytes per idle WebSocket with the default, 5,347 starting at 256, 4,901 at 64.
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 64, maximum: 65536)

    /// Upgrades `GET /v1/ws` with a valid token (header or `?token=`); anything else stays HTTP and the
    /// router answers it (401 without a valid token).
    static func webSocketUpgrader(config: GatewayConfiguration, sessions: SessionServices, cluster: ClusterGateway?) -> WebSocketUpgrader {
        @Sendable func authenticate(_ token: String) async throws(ChatError) -> UserRecord {
            if let cluster { return try await cluster.authenticate(token: token) }
            return try await sessions.accounts.authenticate(token: token)
        }
        return WebSocketUpgrader(
            shouldUpgrade: { channel, head in
                guard let token = webSocketToken(head) else { return channel.eventLoop.makeSucceededFuture(nil) }
                return channel.eventLoop.makeFutureWithTask {
                    guard let user = try? await authenticate(token) else { return nil }
                    // A user at its session cap is not upgraded: the router answers 429. The count
                    // is the owner's (asked over the mesh for a user of another node; the owner
                    // also refuses a relayed session past the cap, for a race between two nodes).
                    let count = await cluster?.sessionCount(of: user.userId) ?? sessions.registry.sessionCount(of: user.userId)
                    if count >= sessions.maxSessionsPerUser { return nil }
                    return HTTPHeaders()
                }
            },
            upgradePipeline: { channel, head in
                let token = webSocketToken(head) ?? ""
                return channel.eventLoop.makeFutureWithTask { try await authenticate(token) }
                    .flatMapThrowing { user in
                        let codec = WebSocketCodecHandler(maxMessageBytes: config.maxFrameBytes)
                        // A user owned by another node: its session runs there, this node relays.
                        if let cluster, !cluster.placement.isLocal(user: user.userId) {
                            let relay = cluster.proxies.makeHandler(owner: cluster.placement.owner(ofUser: user.userId), token: token)
                            return try channel.pipeline.syncOperations.addHandlers([codec, relay])
                        }
                        let session = WebSocketSessionHandler(services: sessions, user: user, tokenHash: Accounts.hash(token: token))
                        try channel.pipeline.syncOperations.addHandlers([codec, session])
                    }
            })
    }

    /// The bearer token of a `/v1/ws` request: `Authorization: Bearer` or, for browsers, `?token=`.
    static func webSocketToken(_ head: HTTPRequestHead) -> String? {
        let request = APIRequest(method: "GET", uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: [], clientAddress: "")
        guard request.path == "/v1/ws" else { return nil }
        return request.bearerToken ?? request.query["token"]
    }
}

/// Answers a connection past the cap with a complete `503` as soon as it is active, then closes it.
final class OverCapacityHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long the client gets to read the answer before the connection is closed regardless.
    static let lingerTime = TimeAmount.seconds(2)

    // Closing with the request still unread would make the kernel send RST, which can destroy the
    // 503 before the client reads it: so shut down our side, drain, and close on EOF or after a linger.
    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: Self.response))).whenComplete { _ in
            context.close(mode: .output, promise: nil)
        }
        context.eventLoop.scheduleTask(in: Self.lingerTime) { context.close(promise: nil) }
    }

    /// Whatever the client sends is dropped.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    static let response: [UInt8] = {
        let body = #"{"error":{"code":"unavailable","message":"server is at its connection limit"}}"#
        return Array(("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body).utf8)
    }()
}
