/// How long a group commit waits so that commits start at least `interval` apart
/// (`WALOptions.minCommitIntervalMicroseconds`). Pure: the writer passes the time since the previous
/// commit began (nil before the first) and sleeps what this returns.
///
/// Under load the writer would otherwise commit again the moment an fsync returns, with whatever
/// arrived during it: on a fast disk thousands of small commits a second, each a wake-up, a `pwrite`,
/// an fsync and a hand-off of its acks. Spacing them lets each carry more appends for at most
/// `interval` more latency; at rates where commits are already further apart nothing waits.
public enum CommitPacing {
    /// The wait before the next commit: what is left of `interval` since the previous one began.
    public static func wait(sincePrevious elapsed: Duration?, interval: Duration) -> Duration {
        guard let elapsed, interval > .zero, elapsed < interval else { return .zero }
        return interval - max(elapsed, .zero)
    }
}
