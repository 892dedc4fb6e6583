/// Where a peer listens.
public struct PeerAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

/// One node's mesh settings. Every bound is here; see docs/CLUSTER.md.
public struct MeshConfiguration: Sendable {
    public var selfId: String
    public var listen: PeerAddress
    public var peers: [String: PeerAddress]
    public var ringSignature: UInt64
    public var heartbeatMs: Int64 = 500
    public var suspectAfterMs: Int64 = 3_000
    public var deadAfterMs: Int64 = 10_000
    /// A request without an answer by then fails with `timeout` (the client sees `unavailable`).
    public var requestTimeoutMs: Int64 = 2_000
    public var maxFrameBytes = 1 << 20
    /// Requests awaiting an answer, per peer; past it new ones fail with `overloaded`.
    public var maxOutstandingRequests = 65_536
    /// Bytes queued on one peer connection past which new frames are refused (`overloaded`).
    public var maxQueuedBytes = 8 << 20
    public var reconnectBaseMs: Int64 = 100
    public var reconnectCapMs: Int64 = 5_000
    /// Mutual TLS 1.3 on every peer connection; nil is plain TCP (`--mesh-insecure`).
    public var tls: MeshTLS?
    /// A connection whose TLS handshake and hello are not through by then is closed.
    public var handshakeTimeoutMs: Int64 = 5_000
    /// Connections peers dialled to this node, open at once (handshaking or not); past it a new
    /// one is closed as soon as it is accepted.
    public var maxInboundConnections = 256

    public init(selfId: String, listen: PeerAddress, peers: [String: PeerAddress], ringSignature: UInt64) {
        self.selfId = selfId
        self.listen = listen
        self.peers = peers
        self.ringSignature = ringSignature
    }
}
