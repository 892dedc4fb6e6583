import Foundation
import Histogram

/// Latency histograms in microseconds, 1 µs to 10 minutes, three significant digits.
public struct LatencyHistograms: Sendable {
    public var ack = LatencyHistograms.make()
    public var endToEnd = LatencyHistograms.make()
    /// End-to-end latency by 100 ms window of intended send time: where in the run the tail sits.
    public var timeline = LatencyTimeline()

    public init() {}

    static func make() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    }

    public mutating func merge(_ other: LatencyHistograms) {
        ack.add(other.ack)
        endToEnd.add(other.endToEnd)
        timeline.merge(other.timeline)
    }

    /// Records a latency in nanoseconds (clamped to the trackable range).
    public static func record(_ nanos: UInt64, into h: inout Histogram<UInt64>) {
        _ = h.record(min(max(nanos / 1000, 1), 600_000_000))
    }
}

/// The run's results, printed as one JSON object by `chorus load`.
public struct LoadReport: Sendable {
    public var mode = "open"
    public var connections = 0
    public var connected = 0
    public var targetRate = 0.0
    public var window = 0
    public var durationSeconds = 0.0
    public var warmupSeconds = 0.0
    public var sent: UInt64 = 0
    public var acked: UInt64 = 0
    public var refused: [String: UInt64] = [:]
    public var unacked: UInt64 = 0
    public var delivered: UInt64 = 0
    public var lost: UInt64 = 0
    public var duplicates: UInt64 = 0
    public var outOfOrder: UInt64 = 0
    public var closedByServer = 0
    /// Seconds from the start of sending to the last ack.
    public var ackSpanSeconds = 0.0
    public var histograms = LatencyHistograms()
    public var serverPid: Int32?
    public var serverRssBeforeBytes: Int?
    public var serverRssConnectedBytes: Int?
    public var serverRssEndBytes: Int?

    public init() {}

    /// Adds the results of one connection pair member (ledger of `self`, ledger of its peer).
    public mutating func add(ledger: ConnectionLedger, peer: ConnectionLedger) {
        sent += ledger.sent
        acked += UInt64(ledger.acked.count)
        for (code, n) in ledger.refused { refused[code, default: 0] += n }
        unacked += UInt64(ledger.outstanding.count)
        delivered += UInt64(peer.received.count)
        duplicates += peer.duplicates
        outOfOrder += peer.outOfOrder
        lost += UInt64(ConnectionLedger.lost(sender: ledger, receiver: peer))
    }

    static func summary(_ h: Histogram<UInt64>) -> [String: Any] {
        func ms(_ us: UInt64) -> Double { (Double(us) / 1000 * 1000).rounded() / 1000 }
        guard h.totalCount > 0 else { return ["count": 0] }
        return [
            "count": h.totalCount, "p50": ms(h.valueAtPercentile(50)), "p90": ms(h.valueAtPercentile(90)),
            "p99": ms(h.valueAtPercentile(99)), "p999": ms(h.valueAtPercentile(99.9)), "max": ms(h.max),
        ]
    }

    public var jsonObject: [String: Any] {
        var out: [String: Any] = [
            "mode": mode, "connections": connections, "connected": connected, "durationSeconds": durationSeconds,
            "warmupSeconds": warmupSeconds, "sent": sent, "acked": acked, "refused": refused, "unacked": unacked,
            "delivered": delivered, "lost": lost, "duplicates": duplicates, "outOfOrder": outOfOrder,
            "closedByServer": closedByServer,
            "ackedPerSecond": ackSpanSeconds > 0 ? (Double(acked) / ackSpanSeconds).rounded() : 0,
            "ackLatencyMs": Self.summary(histograms.ack), "endToEndLatencyMs": Self.summary(histograms.endToEnd),
        ]
        if !histograms.timeline.windows.isEmpty { out["endToEndTimeline"] = histograms.timeline.jsonObject }
        if mode == "open" { out["targetRate"] = targetRate } else { out["window"] = window }
        if let serverPid { out["serverPid"] = serverPid }
        if let serverRssBeforeBytes { out["serverRssBeforeBytes"] = serverRssBeforeBytes }
        if let serverRssConnectedBytes { out["serverRssConnectedBytes"] = serverRssConnectedBytes }
        if let serverRssEndBytes { out["serverRssEndBytes"] = serverRssEndBytes }
        if let before = serverRssBeforeBytes, let after = serverRssConnectedBytes, connected > 0 {
            out["serverRssPerConnectionBytes"] = (after - before) / connected
        }
        return out
    }

    public func json() -> String {
        let data = (try? JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Resident set size of a process from /proc (bytes), nil if unreadable.
public func residentSetBytes(pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first
        return kb.map { $0 * 1024 }
    }
    return nil
}
