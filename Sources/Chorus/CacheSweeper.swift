import ChorusCore
import ChorusEngine
import Logging
import ServiceLifecycle

/// Every `interval`, drops the in-memory caches of conversations idle for `idleMs` (recent messages,
/// dedup index) and releases their actors, so memory follows activity rather than history. Stops on
/// graceful shutdown.
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
                let sweep = await conversations.trimIdle(now: clock.nowMs(), idleMs: idleMs)
                if sweep.trimmed + sweep.released > 0 {
                    logger.debug("idle conversations", metadata: ["trimmed": "\(sweep.trimmed)", "released": "\(sweep.released)"])
                }
            }
        }
    }
}
