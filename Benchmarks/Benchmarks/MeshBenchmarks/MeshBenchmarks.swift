import Benchmark
import ChorusMesh
import Foundation
import NIOCore
import NIOPosix
import Synchronization

// Two mesh nodes in this process over real loopback TCP: node a sends requests to node b, which
// answers each; `window` requests stay in flight (each answer sends the next). A forwarded frame
// is one request (64-byte payload); each is answered (16 bytes). Target: 200,000
// forwarded frames/s, i.e. requests/s here (plus as many answers the other way).
// Run from Benchmarks/: `swift package benchmark --target MeshBenchmarks`.

/// Answers every request with a 16-byte payload; one-ways are counted.
final class Answer: MeshService {
    let reply = [UInt8](repeating: 7, count: 16)
    let oneWays = Atomic<Int>(0)
    func handle(request payload: [UInt8], from peer: String, reply r: @escaping @Sendable (Result<[UInt8], MeshError>) -> Void) {
        r(.success(reply))
    }
    func handle(oneWay payload: [UInt8], from peer: String) { oneWays.add(1, ordering: .relaxed) }
}

/// Two connected nodes and their loop group, started once for all iterations.
final class Pair: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let a: MeshNode
    let b: MeshNode

    init() throws {
        (a, b) = try MeshNode.connectedPairOnLoopback(group: group, services: (Answer(), Answer()))
    }

    /// Sends `count` requests with `window` in flight; returns when every answer is in.
    func pipelined(count: Int, window: Int) {
        let payload = [UInt8](repeating: 1, count: 64)
        let done = DispatchSemaphore(value: 0)
        let state = Mutex((sent: 0, answered: 0, failed: 0))
        @Sendable func next() {
            let go = state.withLock { s -> Bool in
                guard s.sent < count else { return false }
                s.sent += 1
                return true
            }
            guard go else { return }
            a.request(payload, to: "b") { result in
                let finished = state.withLock { s -> Bool in
                    s.answered += 1
                    if case .failure = result { s.failed += 1 }
                    return s.answered == count
                }
                if finished { done.signal() } else { next() }
            }
        }
        for _ in 0..<window { next() }
        done.wait()
        precondition(state.withLock { $0.failed } == 0, "mesh requests failed")
    }
}

let benchmarks: @Sendable () -> Void = {
    let requestsPerSecond = BenchmarkMetric.custom("requests/s", polarity: .prefersLarger, useScalingFactor: false)
    let pair = try! Pair()
    let count = 200_000
    Benchmark(
        "Mesh.pipelinedRequests200K",
        configuration: .init(
            metrics: [requestsPerSecond], warmupIterations: 1, maxDuration: .seconds(20), maxIterations: 10,
            // Timings on this shared 2-core VM swing by a third between runs: this catches a collapse.
            thresholds: [requestsPerSecond: .init(relative: [.p90: 40])])
    ) { benchmark in
        let started = ContinuousClock.now
        pair.pipelined(count: count, window: 4096)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        benchmark.measurement(requestsPerSecond, Int(Double(count) / seconds))
    }
}
