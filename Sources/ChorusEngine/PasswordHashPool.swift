import ChorusCore
import Foundation
import Synchronization

/// Password hashing as a bounded resource (PROTOCOL.md section 6): hashes run on `workers` threads
/// of their own (never the cooperative pool that runs the actors), and at most `maxPending` are
/// queued or running at once, registrations and logins together. Past it a request is refused at
/// once with `unavailable` (HTTP `503` with `Retry-After`), so a flood of registrations delays a
/// login by at most `maxPending / workers` hash times instead of without bound.
public final class PasswordHashPool: Sendable {
    public let workers: Int
    public let maxPending: Int
    private let pending = Atomic<Int>(0)
    private let queue: OperationQueue

    public init(workers: Int = ProcessInfo.processInfo.activeProcessorCount, maxPending: Int = 64) {
        precondition(workers >= 1 && maxPending >= 1)
        self.workers = workers
        self.maxPending = maxPending
        queue = OperationQueue()
        queue.name = "chorus.kdf"
        queue.maxConcurrentOperationCount = workers
        queue.qualityOfService = .userInitiated
    }

    /// Hashes waiting or running now.
    public var pendingCount: Int { pending.load(ordering: .relaxed) }

    /// Runs `work` on a worker if fewer than `maxPending` are pending; `unavailable` otherwise.
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws(ChatError) -> T {
        guard pending.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue <= maxPending else {
            pending.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            throw .unavailable("too many password hashes waiting; retry shortly")
        }
        defer { pending.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
        let queue = queue
        return await withCheckedContinuation { c in queue.addOperation { c.resume(returning: work()) } }
    }
}
