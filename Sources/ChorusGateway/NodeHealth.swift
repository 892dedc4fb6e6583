/// Whether the node is alive and ready, as `/healthz` and `/readyz` report it.
public struct NodeHealth: Sendable {
    public var alive: Bool
    public var ready: Bool
    public var reason: String?

    public init(alive: Bool, ready: Bool, reason: String? = nil) {
        self.alive = alive
        self.ready = ready
        self.reason = reason
    }
}
