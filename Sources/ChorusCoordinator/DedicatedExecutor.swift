import Dispatch

/// A serial executor on its own dispatch queue, outside Swift's cooperative pool: an actor that
/// must run on time (the lease's keep-alives) is not held up when the pool's threads (one per core)
/// are all busy with other work.
public final class DedicatedExecutor: SerialExecutor {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}
