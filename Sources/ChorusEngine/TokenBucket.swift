import Synchronization

/// A token bucket: `rate` tokens per second, at most `burst` saved up. Pure: time comes in as `nowMs`.
public struct TokenBucket: Sendable, Equatable {
    public let rate: Double
    public let burst: Double
    private var tokens: Double
    private var lastMs: Int64

    public init(rate: Double, burst: Int, nowMs: Int64) {
        precondition(rate > 0 && burst > 0, "rate and burst must be positive")
        self.rate = rate
        self.burst = Double(burst)
        tokens = Double(burst)
        lastMs = nowMs
    }

    /// Takes one token if there is one; otherwise returns how many milliseconds until there is.
    public mutating func take(nowMs: Int64) -> TakeResult {
        refill(nowMs)
        if tokens >= 1 {
            tokens -= 1
            return .allowed
        }
        let waitMs = ((1 - tokens) / rate * 1000).rounded(.up)
        return .limited(retryAfterMs: max(1, Int(waitMs)))
    }

    private mutating func refill(_ nowMs: Int64) {
        guard nowMs > lastMs else { return }
        tokens = min(burst, tokens + Double(nowMs - lastMs) * rate / 1000)
        lastMs = nowMs
    }

    public enum TakeResult: Equatable, Sendable {
        case allowed
        case limited(retryAfterMs: Int)
    }
}

/// `RATE:BURST` as in `--session-rate-limit 100:300`, or `off`.
public struct RateLimitSetting: Sendable, Equatable, CustomStringConvertible {
    public var rate: Double
    public var burst: Int

    public init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = burst
    }

    /// nil for `off`; throws a readable message for anything else that is not `RATE:BURST`.
    public static func parse(_ text: String) throws(RateLimitParseError) -> RateLimitSetting? {
        if text == "off" { return nil }
        let parts = text.split(separator: ":")
        guard parts.count == 2, let rate = Double(parts[0]), rate > 0, rate.isFinite, let burst = Int(parts[1]), burst > 0 else {
            throw RateLimitParseError(text: text)
        }
        return RateLimitSetting(rate: rate, burst: burst)
    }

    public var description: String { "\(rate):\(burst)" }
}

public struct RateLimitParseError: Error, CustomStringConvertible {
    public let text: String
    public var description: String { "expected RATE:BURST (e.g. 100:300) or off, got '\(text)'" }
}

/// Token buckets per key (a client address), bounded: when `maxKeys` are tracked, the oldest half
/// is dropped (a dropped key starts again with a full bucket, which only ever errs towards allowing).
public struct KeyedRateLimiter: Sendable {
    public let setting: RateLimitSetting
    public let maxKeys: Int
    private var buckets: [String: TokenBucket] = [:]
    private var order: [String] = []

    public init(setting: RateLimitSetting, maxKeys: Int = 100_000) {
        self.setting = setting
        self.maxKeys = maxKeys
    }

    public mutating func take(_ key: String, nowMs: Int64) -> TokenBucket.TakeResult {
        if buckets[key] == nil {
            if buckets.count >= maxKeys {
                let drop = order.prefix(maxKeys / 2)
                for k in drop { buckets[k] = nil }
                order.removeFirst(drop.count)
            }
            buckets[key] = TokenBucket(rate: setting.rate, burst: setting.burst, nowMs: nowMs)
            order.append(key)
        }
        return buckets[key]!.take(nowMs: nowMs)
    }
}

/// One send bucket per user (PROTOCOL.md section 6, `--user-send-rate-limit`), shared by all of the
/// user's WebSocket sessions and HTTP sends. It lives on the user's owner node, where every session
/// of the user runs and every HTTP send of the user is executed, so it is one bucket cluster-wide.
/// Bounded like `KeyedRateLimiter` (100,000 users tracked; past it the oldest half start afresh).
public final class UserSendLimiter: Sendable {
    private let limiter: Mutex<KeyedRateLimiter>

    public init(setting: RateLimitSetting, maxUsers: Int = 100_000) {
        limiter = Mutex(KeyedRateLimiter(setting: setting, maxKeys: maxUsers))
    }

    /// Takes one send for `userId`, or says how long until one is allowed.
    public func take(_ userId: String, nowMs: Int64) -> TokenBucket.TakeResult {
        limiter.withLock { $0.take(userId, nowMs: nowMs) }
    }
}
