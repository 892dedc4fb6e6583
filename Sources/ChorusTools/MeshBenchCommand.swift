import ArgumentParser
import ChorusMesh
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// `chorus-tools mesh-bench`: the mesh against Redis pub/sub on the same stream: COUNT one-way
/// payloads of SIZE bytes, WINDOW in flight, from one endpoint to another over loopback TCP; each
/// payload carries its send time, so the receiver records the forwarding latency. Redis runs only
/// when `redis-server` is installed (Debian's package; started here on a free port, no persistence).
/// The mesh runs twice, plain and with mutual TLS 1.3 (`mesh_tls`), to show what TLS costs per hop.
struct MeshBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh-bench", abstract: "Mesh vs Redis pub/sub forwarding throughput and latency.", shouldDisplay: false)

    @Option(help: "Payloads per run.") var count = 200_000
    @Option(help: "Payload bytes (at least 8).") var size = 64
    @Option(help: "Payloads in flight.") var window = 2048
    @Option(help: "Runs of each.") var runs = 3

    func run() throws {
        guard count > 0, size >= 8, window > 0 else { throw ValidationError("--count > 0, --size >= 8, --window > 0") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        var out: [String: Any] = ["count": count, "size": size, "window": window, "kind": "loopback TCP, one process per side's loops"]
        // Both pairs up at once and their runs interleaved, so warm-up and machine noise fall on both.
        let plain = try MeshPair(group: group, mutualTLS: false), secured = try MeshPair(group: group, mutualTLS: true)
        var plainRuns: [[String: Int]] = [], securedRuns: [[String: Int]] = []
        for _ in 0..<runs {
            plainRuns.append(plain.stream(count: count, size: size, window: window).json)
            securedRuns.append(secured.stream(count: count, size: size, window: window).json)
        }
        (out["mesh"], out["mesh_tls"]) = (plainRuns, securedRuns)
        plain.stop()
        secured.stop()
        if let redis = try RedisPair.start(group: group) {
            out["redis"] = (0..<runs).map { _ in redis.stream(count: count, size: size, window: window).json }
            redis.stop()
        } else {
            out["redis"] = "redis-server not installed"
        }
        let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

/// One stream's bookkeeping: sends are claimed (at most `count`), arrivals recorded; `arrived`
/// sends the next one, keeping `window` in flight.
final class StreamState: Sendable {
    struct Result {
        var perSecond: Int
        var p50Micros: Int
        var p99Micros: Int
        var json: [String: Int] { ["per_second": perSecond, "p50_us": p50Micros, "p99_us": p99Micros] }
    }

    let count: Int
    let size: Int
    private let state = Mutex((sent: 0, received: 0, latencies: [UInt64]()))
    private let done = DispatchSemaphore(value: 0)
    private let send: @Sendable ([UInt8]) -> Void

    init(count: Int, size: Int, send: @escaping @Sendable ([UInt8]) -> Void) {
        self.count = count
        self.size = size
        self.send = send
    }

    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// Sends one more if any is left.
    func sendNext() {
        let go = state.withLock { s -> Bool in
            guard s.sent < count else { return false }
            s.sent += 1
            return true
        }
        guard go else { return }
        var p = [UInt8](repeating: 7, count: size)
        withUnsafeBytes(of: Self.now().littleEndian) { for i in 0..<8 { p[i] = $0[i] } }
        send(p)
    }

    func arrived(_ bytes: some Collection<UInt8>) {
        var t: UInt64 = 0
        for (i, b) in bytes.prefix(8).enumerated() { t |= UInt64(b) << (8 * UInt64(i)) }
        let now = Self.now()
        let finished = state.withLock { s -> Bool in
            s.received += 1
            s.latencies.append(now > t ? now - t : 0)
            return s.received == count
        }
        if finished { done.signal() } else { sendNext() }
    }

    func run(window: Int) -> Result {
        let started = Self.now()
        for _ in 0..<window { sendNext() }
        done.wait()
        let seconds = Double(Self.now() - started) / 1e9
        let sorted = state.withLock { $0.latencies.sorted() }
        func at(_ q: Int) -> Int { Int(sorted[min(sorted.count - 1, sorted.count * q / 100)] / 1000) }
        return Result(perSecond: Int(Double(count) / seconds), p50Micros: at(50), p99Micros: at(99))
    }
}

/// Two mesh nodes in this process; b hands every one-way payload to the current stream.
final class MeshPair: Sendable {
    let a: MeshNode
    let b: MeshNode
    let current = Mutex<StreamState?>(nil)

    init(group: MultiThreadedEventLoopGroup, mutualTLS: Bool) throws {
        let sink = Sink()
        (a, b) = try MeshNode.connectedPairOnLoopback(group: group, services: (sink, sink), mutualTLS: mutualTLS)
        sink.pair.withLock { $0 = self }
    }

    /// Receives on b (the service of both nodes; only b is sent to).
    final class Sink: MeshService {
        let pair = Mutex<MeshPair?>(nil)
        func handle(request payload: [UInt8], from peer: String, reply: @escaping @Sendable (Result<[UInt8], MeshError>) -> Void) {}
        func handle(oneWay payload: [UInt8], from peer: String) { pair.withLock { $0 }?.current.withLock { $0 }?.arrived(payload) }
    }

    func stream(count: Int, size: Int, window: Int) -> StreamState.Result {
        let s = StreamState(count: count, size: size) { [a] in a.send($0, to: "b") }
        current.withLock { $0 = s }
        return s.run(window: window)
    }

    func stop() {
        let done = DispatchSemaphore(value: 0)
        let (a, b) = (a, b)
        Task {
            await a.stop()
            await b.stop()
            done.signal()
        }
        done.wait()
    }
}
