import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs background work (log compaction, snapshot building) on a fresh thread at a lower CPU
/// priority, so it takes only the cores chat traffic leaves idle. A fresh thread each time, because
/// a thread's nice value cannot be raised back without privileges: a pooled thread must never be
/// lowered. Blocks the caller until `work` returns.
public enum BackgroundThread {
    /// Linux nice value for background work (0 is normal, 19 the lowest).
    public static let niceness: Int32 = 10

    public static func run<T: Sendable>(_ name: String, _ work: @escaping @Sendable () throws -> T) throws -> T {
        let result = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            #if os(Linux)
            // On Linux PRIO_PROCESS with who = 0 applies to the calling thread only.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
            #endif
            result.set(Result { try work() })
            done.signal()
        }
        thread.name = name
        thread.start()
        done.wait()
        return try result.take().get()
    }

    private final class ResultBox<T: Sendable>: @unchecked Sendable {
        // Written once by the worker before `done.signal()`, read once after `done.wait()`.
        private var value: Result<T, any Error>?
        func set(_ r: Result<T, any Error>) { value = r }
        func take() -> Result<T, any Error> { value! }
    }
}
