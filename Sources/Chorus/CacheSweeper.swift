import ChorusCore
import ChorusEngine
import Logging
import ServiceLifecycle

/// Every `interval`, drops the in-memory caches of conversations idle for `idleMs` (recent messages,
/// dedup index), so memory follows activity rather than history. Stops on graceful shutdown.
struct CacheSweeper: Service {
    let conversations: Conversations
    let clock: any WallClock
    let interval: Duration
    let idleMs: Int64
    let logger: Logger

    func run() async throws {
        // Graceful shutdown cancels the loop (the sleep throws).
        try? await cancelWhenGracefulShutdown {
            while (try? await Task.sleep(for: interval)) != nil {
                let cold = await conversations.trimIdle(now: clock.nowMs(), idleMs: idleMs)
                if cold > 0 { logger.debug("idle conversations trimmed", metadata: ["count": "\(cold)"]) }
            }
        }
    }
}
