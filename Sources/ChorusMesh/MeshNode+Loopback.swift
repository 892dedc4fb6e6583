import ChorusCluster
import Dispatch
import Logging
import NIOCore
import NIOPosix

extension MeshNode {
    /// Two nodes, "a" and "b", of one ring on loopback ports, started and connected to each other:
    /// for benchmarks and tools that measure the mesh itself. Blocks until each sees the other.
    public static func connectedPairOnLoopback(
        group: any EventLoopGroup, services: (a: any MeshService, b: any MeshService), logLevel: Logger.Level = .error
    ) throws -> (a: MeshNode, b: MeshNode) {
        var ports: [String: Int] = [:]
        for id in ["a", "b"] {
            let probe = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
            ports[id] = probe.localAddress!.port!
            try probe.close().wait()
        }
        let ring = HashRing(members: ["a", "b"])
        func config(_ id: String, _ other: String) -> MeshConfiguration {
            MeshConfiguration(
                selfId: id, listen: PeerAddress(host: "127.0.0.1", port: ports[id]!),
                peers: [other: PeerAddress(host: "127.0.0.1", port: ports[other]!)], ringSignature: ring.signature)
        }
        var logger = Logger(label: "mesh-pair")
        logger.logLevel = logLevel
        let a = MeshNode(configuration: config("a", "b"), group: group, logger: logger)
        let b = MeshNode(configuration: config("b", "a"), group: group, logger: logger)
        let started = DispatchSemaphore(value: 0)
        Task.detached {
            _ = try? await a.start(serving: services.a)
            _ = try? await b.start(serving: services.b)
            started.signal()
        }
        started.wait()
        // Connections and handshakes complete on the loops; nothing to await from here but the state.
        while !(a.allPeersAlive && b.allPeersAlive) { usleep(10_000) }
        return (a, b)
    }
}
