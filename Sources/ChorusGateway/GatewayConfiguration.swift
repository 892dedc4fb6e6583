/// Listener settings and bounds of the HTTP/WebSocket gateway. Every bound says what happens at it.
public struct GatewayConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Open connections accepted; past it new connections get `503` and are closed.
    public var maxConnections = 19_000
    /// Largest WebSocket message after reassembly; a bigger frame closes the connection with 1009.
    public var maxFrameBytes = 65_536
    /// Largest HTTP request body; a bigger one gets `413`.
    public var maxRequestBodyBytes = 65_536
    /// Frames queued to one session and not yet written; past it the session is closed with 4008
    /// ("outbound queue overflow") and the client recovers with `sync`.
    public var maxOutboundFrames = 1_024

    public init() {}
}
