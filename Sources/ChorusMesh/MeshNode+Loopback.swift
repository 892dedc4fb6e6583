import ChorusCluster
import Dispatch
import Logging
import NIOCore
import NIOPosix

extension MeshNode {
    /// Two nodes, "a" and "b", of one ring on loopback ports, started and connected to each other:
    /// for benchmarks and tools that measure the mesh itself. Blocks until each sees the other.
    /// `mutualTLS` secures the pair with certificates of a CA made for it.
    public static func connectedPairOnLoopback(
        group: any EventLoopGroup, services: (a: any MeshService, b: any MeshService), mutualTLS: Bool = false, logLevel: Logger.Level = .error
    ) throws -> (a: MeshNode, b: MeshNode) {
        var ports: [String: Int] = [:]
        for id in ["a", "b"] {
            let probe = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
            ports[id] = probe.localAddress!.port!
            try probe.close().wait()
        }
        let ring = HashRing(members: ["a", "b"])
        let ca = mutualTLS ? try MeshCertificates.makeCA() : nil
        func config(_ id: String, _ other: String) throws -> MeshConfiguration {
            var c = MeshConfiguration(
                selfId: id, listen: PeerAddress(host: "127.0.0.1", port: ports[id]!),
                peers: [other: PeerAddress(host: "127.0.0.1", port: ports[other]!)], ringSignature: ring.signature)
            if let ca {
                let node = try MeshCertificates.makeNode(id: id, caCertificatePEM: ca.certificatePEM, caKeyPEM: ca.keyPEM)
                c.tls = try MeshTLS(certificatePEM: node.certificatePEM, keyPEM: node.keyPEM, caPEM: ca.certificatePEM)
            }
            return c
        }
        var logger = Logger(label: "mesh-pair")
        logger.logLevel = logLevel
        let a = MeshNode(configuration: try config("a", "b"), group: group, logger: logger)
        let b = MeshNode(configuration: try config("b", "a"), group: group, logger: logger)
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
