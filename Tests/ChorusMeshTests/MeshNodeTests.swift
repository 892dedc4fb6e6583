import ChorusCluster
import ChorusMesh
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Three `MeshNode`s on loopback: they find each other, answer requests, notice a stopped peer,
/// and reconnect when it comes back. Timings are shortened; the detector's rules have their own
/// clock-driven tests (FailureDetectorTests).
@Suite(.serialized) struct MeshNodeTests {
    /// Answers "upper:<text>" with the text upper-cased, refuses anything else; counts one-ways.
    final class Service: MeshService {
        let oneWays = Mutex<[String]>([])
        func handle(request payload: [UInt8], from peer: String, reply: @escaping @Sendable (Result<[UInt8], MeshError>) -> Void) {
            let text = String(decoding: payload, as: UTF8.self)
            guard text.hasPrefix("upper:") else { return reply(.failure(.remote(peer: peer, reason: "unknown request"))) }
            reply(.success(Array("\(text.dropFirst(6).uppercased()) from \(peer)".utf8)))
        }
        func handle(oneWay payload: [UInt8], from peer: String) {
            oneWays.withLock { $0.append("\(peer):\(String(decoding: payload, as: UTF8.self))") }
        }
    }

    static func freePorts(_ n: Int) throws -> [Int] {
        // Bind to port 0 to learn free ports, then release them for the nodes.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        var channels: [any Channel] = []
        for _ in 0..<n { channels.append(try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()) }
        let ports = channels.map { $0.localAddress!.port! }
        for c in channels { try c.close().wait() }
        return ports
    }

    static func configuration(_ id: String, _ ports: [String: Int]) -> MeshConfiguration {
        let ring = HashRing(members: ports.keys)
        var peers: [String: PeerAddress] = [:]
        for (p, port) in ports where p != id { peers[p] = PeerAddress(host: "127.0.0.1", port: port) }
        var c = MeshConfiguration(selfId: id, listen: PeerAddress(host: "127.0.0.1", port: ports[id]!), peers: peers, ringSignature: ring.signature)
        c.heartbeatMs = 50
        c.suspectAfterMs = 200
        c.deadAfterMs = 500
        c.requestTimeoutMs = 500
        c.reconnectBaseMs = 20
        c.reconnectCapMs = 100
        return c
    }

    /// Polls `condition` every 10 ms for at most `seconds` (waiting for a state the nodes reach by
    /// themselves over real sockets and timers; there is nothing to await directly).
    static func eventually(_ seconds: Double = 5, _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    func status(_ node: MeshNode, _ peer: String) -> FailureDetector.Status? { node.statuses.first { $0.peer == peer }?.status }

    @Test func threeNodesJoinAnswerRequestsAndRecoverFromAStoppedPeer() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let ids = ["a", "b", "c"]
        let ports = Dictionary(uniqueKeysWithValues: zip(ids, try Self.freePorts(3)))
        let services = Dictionary(uniqueKeysWithValues: ids.map { ($0, Service()) })
        var nodes: [String: MeshNode] = [:]
        for id in ids {
            nodes[id] = MeshNode(configuration: Self.configuration(id, ports), group: group, logger: Logger(label: "mesh-\(id)"))
            try await nodes[id]!.start(serving: services[id]!)
        }
        #expect(try await Self.eventually { nodes.values.allSatisfy(\.allPeersAlive) })

        // Requests both ways, answered by the right node; a refusal comes back as `remote`.
        let answer = try await nodes["a"]!.request(Array("upper:hi".utf8), to: "c")
        #expect(String(decoding: answer, as: UTF8.self) == "HI from a")
        let back = try await nodes["c"]!.request(Array("upper:yo".utf8), to: "a")
        #expect(String(decoding: back, as: UTF8.self) == "YO from c")
        await #expect(throws: MeshError.remote(peer: "b", reason: "remote(peer: \"a\", reason: \"unknown request\")")) {
            try await nodes["a"]!.request(Array("nope".utf8), to: "b")
        }
        await #expect(throws: MeshError.unknownPeer("z")) { try await nodes["a"]!.request([], to: "z") }
        nodes["b"]!.send(Array("typing".utf8), to: "a")
        #expect(try await Self.eventually { services["a"]!.oneWays.withLock { $0 } == ["b:typing"] })

        // Stop c: a request to it fails at once (no connection), and a and b see it suspect, then dead.
        await nodes["c"]!.stop()
        #expect(try await Self.eventually { status(nodes["a"]!, "c") == .dead && status(nodes["b"]!, "c") == .dead })
        await #expect(throws: MeshError.unreachable(peer: "c")) { try await nodes["a"]!.request(Array("upper:x".utf8), to: "c") }
        #expect(status(nodes["a"]!, "b") == .alive)

        // c comes back on the same port: the others reconnect with backoff and see it alive.
        let c2 = MeshNode(configuration: Self.configuration("c", ports), group: group, logger: Logger(label: "mesh-c2"))
        try await c2.start(serving: services["c"]!)
        nodes["c"] = c2
        #expect(try await Self.eventually { nodes.values.allSatisfy(\.allPeersAlive) })
        let again = try await nodes["a"]!.request(Array("upper:back".utf8), to: "c")
        #expect(String(decoding: again, as: UTF8.self) == "BACK from a")

        for n in nodes.values { await n.stop() }
        try await group.shutdownGracefully()
    }

    @Test func aPeerOnAnotherRingIsNeverAccepted() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let ports = Dictionary(uniqueKeysWithValues: zip(["a", "b"], try Self.freePorts(2)))
        var ca = Self.configuration("a", ports)
        ca.ringSignature ^= 1  // a believes in a different membership
        let a = MeshNode(configuration: ca, group: group, logger: Logger(label: "mesh-a"))
        let b = MeshNode(configuration: Self.configuration("b", ports), group: group, logger: Logger(label: "mesh-b"))
        try await a.start(serving: Service())
        try await b.start(serving: Service())
        // Both keep dialling and refusing; after several heartbeat periods neither is alive to the other.
        #expect(try await Self.eventually(5) { status(a, "b") == .dead && status(b, "a") == .dead })
        await #expect(throws: MeshError.unreachable(peer: "b")) { try await a.request([], to: "b") }
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    @Test func aSilentPeerTimesRequestsOut() async throws {
        // b accepts the connection and the handshake, but its service never replies.
        final class Silent: MeshService {
            func handle(request payload: [UInt8], from peer: String, reply: @escaping @Sendable (Result<[UInt8], MeshError>) -> Void) {}
            func handle(oneWay payload: [UInt8], from peer: String) {}
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let ports = Dictionary(uniqueKeysWithValues: zip(["a", "b"], try Self.freePorts(2)))
        let a = MeshNode(configuration: Self.configuration("a", ports), group: group, logger: Logger(label: "mesh-a"))
        let b = MeshNode(configuration: Self.configuration("b", ports), group: group, logger: Logger(label: "mesh-b"))
        try await a.start(serving: Service())
        try await b.start(serving: Silent())
        #expect(try await Self.eventually { a.allPeersAlive })
        let started = ContinuousClock.now
        await #expect(throws: MeshError.timeout(peer: "b")) { try await a.request(Array("upper:x".utf8), to: "b") }
        #expect(ContinuousClock.now - started >= .milliseconds(450))
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    @Test func oneWayFramesArriveInOrderUnderAWindowedStream() async throws {
        final class Sink: MeshService {
            let got = Mutex<[UInt32]>([])
            func handle(request payload: [UInt8], from peer: String, reply: @escaping @Sendable (Result<[UInt8], MeshError>) -> Void) {}
            func handle(oneWay payload: [UInt8], from peer: String) {
                let n = payload.prefix(4).enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
                got.withLock { $0.append(n) }
            }
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let ports = Dictionary(uniqueKeysWithValues: zip(["a", "b"], try Self.freePorts(2)))
        let sink = Sink()
        let a = MeshNode(configuration: Self.configuration("a", ports), group: group, logger: Logger(label: "mesh-a"))
        let b = MeshNode(configuration: Self.configuration("b", ports), group: group, logger: Logger(label: "mesh-b"))
        try await a.start(serving: Service())
        try await b.start(serving: sink)
        #expect(try await Self.eventually { a.allPeersAlive && b.allPeersAlive })
        let total: UInt32 = 20_000
        var sent: UInt32 = 0
        while sent < total {
            // At most 512 in flight.
            while sent - UInt32(sink.got.withLock { $0.count }) >= 512 { try await Task.sleep(for: .microseconds(100)) }
            var payload = [UInt8](repeating: 0, count: 64)
            for i in 0..<4 { payload[i] = UInt8((sent >> (8 * UInt32(i))) & 0xFF) }
            a.send(payload, to: "b")
            sent += 1
        }
        #expect(try await Self.eventually(10) { sink.got.withLock { $0.count } == Int(total) })
        #expect(sink.got.withLock { $0 } == Array(0..<total))
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }
}
