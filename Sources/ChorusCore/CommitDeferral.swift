import Glibc

/// Lets a thread that runs queued work before it sleeps (an event loop) take a log commit itself.
///
/// An event loop installs a deferrer once. When an append made on that thread finds the log's writer
/// idle, the log hands its write to this thread (`hand`) instead of waking the writer thread: the
/// write then runs on this thread after the I/O of the current loop tick, one commit for every append
/// of that tick, and the completions that follow it (acks on this loop) need no thread hand-off
/// either. Threads without a deferrer (tasks, the writer itself) are unaffected. Used only where a
/// commit never waits for the disk (`--fsync never`): an fsync must never run on an event loop.
///
/// A loop tick can read thousands of sockets (a backlog). Its handlers call `checkpoint(every:)`
/// after each read, which runs the handed-over commit early once that many reads came in: a send's
/// ack and delivery then go out while what it touched is still in the CPU's caches, instead of after
/// every other read of the tick (measured: a big tick cost a fifth more per message than small ones).
public enum CommitDeferral {
    /// Runs `work` on the installing thread soon, after the current batch of I/O.
    public typealias Deferrer = @Sendable (@escaping @Sendable () -> Void) -> Void

    /// One thread's handed-over work. Touched only on that thread (the deferrer's task runs there).
    private final class Slot: @unchecked Sendable {
        let deferrer: Deferrer
        var pending: [@Sendable () -> Void] = []
        var spare: [@Sendable () -> Void] = []
        var taskQueued = false
        var reads = 0
        init(_ d: @escaping Deferrer) {
            deferrer = d
            pending.reserveCapacity(64)
            spare.reserveCapacity(64)
        }

        /// Runs what is pending, in hand-over order, and then what that handed over (a commit's
        /// completions hand over their sessions' flushes), for a few rounds; the rest waits for the next.
        func runPending() {
            reads = 0
            var rounds = 0
            while !pending.isEmpty && rounds < 4 {
                swap(&pending, &spare)
                for work in spare { work() }
                spare.removeAll(keepingCapacity: true)
                rounds += 1
            }
        }
    }

    // One key for the process; each thread's value is a retained `Slot` (threads that install one live
    // as long as the process: event loops of the node's group). A destructor releases it otherwise.
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        let rc = pthread_key_create(&k) { raw in
            if let raw { Unmanaged<Slot>.fromOpaque(raw).release() }
        }
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return k
    }()

    private static var slot: Slot? {
        guard let raw = pthread_getspecific(key) else { return nil }
        return Unmanaged<Slot>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Installs (or with nil removes) the calling thread's deferrer.
    public static func install(_ deferrer: Deferrer?) {
        if let old = pthread_getspecific(key) { Unmanaged<Slot>.fromOpaque(old).release() }
        let value = deferrer.map { Unmanaged.passRetained(Slot($0)).toOpaque() }
        pthread_setspecific(key, value)
    }

    /// Hands `work` to the calling thread: it runs at the next checkpoint past its read count, or
    /// after the tick's I/O. False (and nothing kept) if the thread installed no deferrer.
    public static func hand(_ work: @escaping @Sendable () -> Void) -> Bool {
        guard let slot else { return false }
        slot.pending.append(work)
        if !slot.taskQueued {
            slot.taskQueued = true
            slot.deferrer {
                slot.taskQueued = false
                slot.runPending()
            }
        }
        return true
    }

    /// Called by a loop's handlers after each read: once `reads` reads have come in since the last
    /// run, runs the handed-over work now. Call it only where no lock is held (the work completes
    /// appends, which write frames and take conversation locks).
    public static func checkpoint(every reads: Int) {
        guard let slot, !slot.pending.isEmpty else { return }
        slot.reads += 1
        if slot.reads >= reads { slot.runPending() }
    }
}
