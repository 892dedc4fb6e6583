import Glibc

/// Lets a thread that runs queued work before it sleeps (an event loop) take a log commit itself.
///
/// An event loop installs a deferrer once. When an append made on that thread finds the log's writer
/// idle, the log hands its write to the deferrer instead of waking the writer thread: the write then
/// runs on this thread after the I/O of the current loop tick, one commit for every append of that
/// tick, and the completions that follow it (acks on this loop) need no thread hand-off either.
/// Threads without a deferrer (tasks, the writer itself) are unaffected. Used only where a commit
/// never waits for the disk (`--fsync never`): an fsync must never run on an event loop.
public enum CommitDeferral {
    /// Runs `work` on the installing thread soon, after the current batch of I/O.
    public typealias Deferrer = @Sendable (@escaping @Sendable () -> Void) -> Void

    private final class Box {
        let deferrer: Deferrer
        init(_ d: @escaping Deferrer) { deferrer = d }
    }

    // One key for the process; each thread's value is a retained `Box` (threads that install one live
    // as long as the process: event loops of the node's group). A destructor releases it otherwise.
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        let rc = pthread_key_create(&k) { raw in
            if let raw { Unmanaged<Box>.fromOpaque(raw).release() }
        }
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return k
    }()

    /// Installs (or with nil removes) the calling thread's deferrer.
    public static func install(_ deferrer: Deferrer?) {
        if let old = pthread_getspecific(key) { Unmanaged<Box>.fromOpaque(old).release() }
        let value = deferrer.map { Unmanaged.passRetained(Box($0)).toOpaque() }
        pthread_setspecific(key, value)
    }

    /// The calling thread's deferrer, if it installed one.
    public static var current: Deferrer? {
        guard let raw = pthread_getspecific(key) else { return nil }
        return Unmanaged<Box>.fromOpaque(raw).takeUnretainedValue().deferrer
    }
}
