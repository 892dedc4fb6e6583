import ChorusCore
import ChorusEngine
import Logging
import Metrics
import NIOCore
import Synchronization

/// What every WebSocket session needs from the node.
public final class SessionServices: Sendable {
    // One shared instance: every session handler holds a reference, not a copy (memory per connection).
    public let accounts: Accounts
    public let conversations: Conversations
    public let inboxes: InboxDirectory
    public let registry: SessionRegistry
    public let clock: any WallClock
    public let heartbeatMs: Int
    public let rateLimit: RateLimitSetting
    /// The per-user send bucket (`--user-send-rate-limit`); nil is `off`.
    public let userSends: UserSendLimiter?
    /// WebSocket sessions one user may hold at once (`--max-sessions-per-user`).
    public let maxSessionsPerUser: Int
    public let maxOutboundFrames: Int
    public let logger: Logger
    public let metrics: GatewayMetrics
    /// Set on a node of a cluster (typing reaches members on other nodes through it).
    let cluster: ClusterPeers?

    public init(
        accounts: Accounts, conversations: Conversations, inboxes: InboxDirectory, registry: SessionRegistry, clock: any WallClock,
        heartbeatMs: Int, rateLimit: RateLimitSetting, maxOutboundFrames: Int, logger: Logger, metrics: GatewayMetrics, cluster: ClusterPeers? = nil,
        userSends: UserSendLimiter? = nil, maxSessionsPerUser: Int = 20
    ) {
        self.userSends = userSends
        self.maxSessionsPerUser = maxSessionsPerUser
        self.cluster = cluster
        self.metrics = metrics
        self.accounts = accounts
        self.conversations = conversations
        self.inboxes = inboxes
        self.registry = registry
        self.clock = clock
        self.heartbeatMs = heartbeatMs
        self.rateLimit = rateLimit
        self.maxOutboundFrames = maxOutboundFrames
        self.logger = logger
    }
}
