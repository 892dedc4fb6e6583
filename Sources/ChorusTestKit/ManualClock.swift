import ChorusCore
import Synchronization

/// A wall clock tests set by hand.
public final class ManualClock: WallClock, Sendable {
    private let now: Mutex<Int64>

    public init(_ start: Int64 = 1_795_000_000_000) { now = Mutex(start) }

    public func nowMs() -> Int64 { now.withLock { $0 } }

    public func advance(ms: Int64) { now.withLock { $0 += ms } }
}
