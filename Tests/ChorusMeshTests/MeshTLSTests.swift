import ChorusCluster
import ChorusMesh
import Logging
import NIOCore
import NIOPosix
import Testing

/// Mutual TLS between real `MeshNode`s on loopback (PROTOCOL.md section 6): nodes with certificates
/// of the cluster's CA that name them join; a certificate of another CA, or one naming a different
/// node than the one claimed, never does.
@Suite(.serialized) struct MeshTLSTests {
    typealias Service = MeshNodeTests.Service

    static func tls(_ id: String, _ ca: MeshCertificates.Issued, name: String? = nil) throws -> MeshTLS {
        let node = try MeshCertificates.makeNode(id: name ?? id, caCertificatePEM: ca.certificatePEM, caKeyPEM: ca.keyPEM)
        return try MeshTLS(certificatePEM: node.certificatePEM, keyPEM: node.keyPEM, caPEM: ca.certificatePEM)
    }

    func status(_ node: MeshNode, _ peer: String) -> FailureDetector.Status? { node.statuses.first { $0.peer == peer }?.status }

    /// Starts nodes "a" and "b" with the TLS settings given; returns them running.
    func pair(_ a: MeshTLS, _ b: MeshTLS, group: any EventLoopGroup) async throws -> (MeshNode, MeshNode) {
        let ports = Dictionary(uniqueKeysWithValues: zip(["a", "b"], try MeshNodeTests.freePorts(2)))
        var ca = MeshNodeTests.configuration("a", ports)
        ca.tls = a
        var cb = MeshNodeTests.configuration("b", ports)
        cb.tls = b
        let na = MeshNode(configuration: ca, group: group, logger: Logger(label: "mesh-a"))
        let nb = MeshNode(configuration: cb, group: group, logger: Logger(label: "mesh-b"))
        try await na.start(serving: Service())
        try await nb.start(serving: Service())
        return (na, nb)
    }

    @Test func nodesWithCertificatesOfTheClusterCAJoinAndAnswer() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let ca = try MeshCertificates.makeCA()
        let (a, b) = try await pair(try Self.tls("a", ca), try Self.tls("b", ca), group: group)
        #expect(try await MeshNodeTests.eventually { a.allPeersAlive && b.allPeersAlive })
        let answer = try await a.request(Array("upper:secret".utf8), to: "b")
        #expect(String(decoding: answer, as: UTF8.self) == "SECRET from a")
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    @Test func aCertificateOfAnotherCAIsNeverAccepted() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let ca = try MeshCertificates.makeCA(), rogue = try MeshCertificates.makeCA()
        let (a, b) = try await pair(try Self.tls("a", ca), try Self.tls("b", rogue), group: group)
        #expect(try await MeshNodeTests.eventually(5) { status(a, "b") == .dead && status(b, "a") == .dead })
        await #expect(throws: MeshError.unreachable(peer: "b")) { try await a.request([], to: "b") }
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    @Test func aCertificateNamingAnotherNodeIsNeverAccepted() async throws {
        // b holds a valid certificate of the CA, but for "c": it cannot act as b.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let ca = try MeshCertificates.makeCA()
        let (a, b) = try await pair(try Self.tls("a", ca), try Self.tls("b", ca, name: "c"), group: group)
        #expect(try await MeshNodeTests.eventually(5) { status(a, "b") == .dead && status(b, "a") == .dead })
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    @Test func certificatesHaveTheShapeTheMeshChecks() throws {
        let ca = try MeshCertificates.makeCA()
        let node = try MeshCertificates.makeNode(id: "n1", caCertificatePEM: ca.certificatePEM, caKeyPEM: ca.keyPEM)
        let other = try MeshCertificates.makeCA()
        #expect(throws: MeshCertificates.Failure.self) {
            try MeshCertificates.makeNode(id: "n1", caCertificatePEM: ca.certificatePEM, caKeyPEM: other.keyPEM)
        }
        #expect(throws: MeshCertificates.Failure.self) { try MeshCertificates.makeNode(id: "bad id", caCertificatePEM: ca.certificatePEM, caKeyPEM: ca.keyPEM) }
        // The key must be the certificate's.
        #expect(throws: MeshTLS.Failure.self) { try MeshTLS(certificatePEM: node.certificatePEM, keyPEM: ca.keyPEM, caPEM: ca.certificatePEM) }
        _ = try MeshTLS(certificatePEM: node.certificatePEM, keyPEM: node.keyPEM, caPEM: ca.certificatePEM)
    }
}
