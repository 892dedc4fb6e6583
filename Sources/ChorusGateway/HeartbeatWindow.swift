/// When a silent WebSocket session is closed (PROTOCOL.md sections 3 and 6: within 2 x heartbeatMs,
/// never later). Pure: the sweep runs every `sweepIntervalMs` and closes a session silent for more
/// than `silenceLimitMs`, so a session is closed between `silenceLimitMs` and
/// `silenceLimitMs + sweepIntervalMs` after its last frame: 1.5 to 1.75 x heartbeatMs, which leaves
/// a quarter heartbeat for a late timer, and half a heartbeat for a client that sends every heartbeat.
public struct HeartbeatWindow: Sendable, Equatable {
    public let heartbeatMs: Int64
    public var sweepIntervalMs: Int64 { max(heartbeatMs / 4, 1) }
    public var silenceLimitMs: Int64 { heartbeatMs * 3 / 2 }
    /// The latest a silent session is closed, timers on time.
    public var latestCloseMs: Int64 { silenceLimitMs + sweepIntervalMs }

    public init(heartbeatMs: Int64) { self.heartbeatMs = heartbeatMs }

    /// Whether a session last heard `silentForMs` ago is closed at a sweep.
    public func isSilent(silentForMs: Int64) -> Bool { silentForMs > silenceLimitMs }
}
