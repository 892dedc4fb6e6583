import Metrics

/// The gateway's metric handles (swift-metrics), created once the metrics system is bootstrapped and
/// passed to whoever records.
public struct GatewayMetrics: Sendable {
    public let messagesAccepted: Counter
    public let messagesDelivered: Counter
    public let ackLatency: Timer
    public let rateLimited: Counter

    public init() {
        messagesAccepted = Counter(label: "chorus_messages_accepted_total")
        messagesDelivered = Counter(label: "chorus_messages_delivered_total")
        ackLatency = Timer(label: "chorus_ack_latency_seconds")
        rateLimited = Counter(label: "chorus_rate_limited_total")
    }
}
