import ChorusEngine
import Logging
import ServiceLifecycle

/// Every `interval`, drops the tokens that expired and closes their open sessions with 4001
/// (PROTOCOL.md section 6, "Tokens"); an expired token already authenticates nothing. Stops on
/// graceful shutdown.
struct TokenExpiry: Service {
    let accounts: Accounts
    let interval: Duration
    let logger: Logger

    /// A tenth of the token lifetime, between 1 s and 10 s: a session outlives its token by at most that.
    static func interval(tokenTTLMs: Int64) -> Duration { .milliseconds(min(10_000, max(1_000, tokenTTLMs / 10))) }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while (try? await Task.sleep(for: interval)) != nil {
                let expired = await accounts.expireTokens()
                if expired > 0 { logger.debug("tokens expired", metadata: ["count": "\(expired)"]) }
            }
        }
    }
}
