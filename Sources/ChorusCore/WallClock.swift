import Glibc

/// Wall time in milliseconds since the Unix epoch. Pure cores take `now` as an argument; shells read
/// it from one of these so tests can drive time.
public protocol WallClock: Sendable {
    func nowMs() -> Int64
}

/// The system's real-time clock.
public struct SystemWallClock: WallClock {
    public init() {}

    public func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
