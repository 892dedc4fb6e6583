/// This node's own view of its etcd lease, on a monotonic clock: it may act as a leader only while
/// the lease certainly still runs at etcd.
///
/// etcd starts the TTL again when it processes a keep-alive, which is after the node sent it; so
/// `sentAt + ttl` is never later than etcd's expiry. A node that cannot renew (paused, cut off)
/// stops acting on its own, before anyone can take its partitions over; the epoch fence makes
/// a node that is late anyway harmless.
public struct LeaseTimer<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    public let ttl: Duration
    /// Subtracted from the expiry for clock rate differences between this host and etcd's.
    public let margin: Duration
    public private(set) var validUntil: Instant?

    public init(ttl: Duration, margin: Duration? = nil) {
        self.ttl = ttl
        self.margin = margin ?? ttl / 10
    }

    /// A keep-alive (or the grant) sent at `sentAt` was answered with the lease alive.
    public mutating func renewed(sentAt: Instant) {
        let until = sentAt.advanced(by: ttl - margin)
        if validUntil.map({ $0 < until }) ?? true { validUntil = until }
    }

    /// etcd answered that the lease is gone.
    public mutating func lost() { validUntil = nil }

    public func holds(at now: Instant) -> Bool { validUntil.map { now < $0 } ?? false }

    /// When to send the next keep-alive: a third of the TTL after the last one was sent.
    public func nextRenewal(after sentAt: Instant) -> Instant { sentAt.advanced(by: ttl / 3) }
}
