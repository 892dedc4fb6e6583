import NIOCore
import NIOSSL

/// Mutual TLS 1.3 on the mesh (PROTOCOL.md section 6): both sides present a certificate chained to
/// the cluster's CA, and nothing else is trusted (not the system's roots). The chain is checked by
/// BoringSSL; which node the certificate names is `MeshHandshake.verify`'s rule, applied by
/// `MeshPeerHandler` once the handshake completes.
public struct MeshTLS: Sendable {
    let server: NIOSSLContext
    let client: NIOSSLContext

    public enum Failure: Error, CustomStringConvertible {
        case unreadable(option: String, path: String, reason: String)
        case invalid(String)

        public var description: String {
            switch self {
            case .unreadable(let option, let path, let reason): "\(option): cannot read \(path): \(reason)"
            case .invalid(let reason): "mesh TLS: \(reason)"
            }
        }
    }

    /// Reads the node's certificate (chain), its key and the CA's certificate from PEM files.
    public init(certificateFile: String, keyFile: String, caFile: String) throws(Failure) {
        func read<T>(_ option: String, _ path: String, _ load: () throws -> T) throws(Failure) -> T {
            do { return try load() } catch { throw .unreadable(option: option, path: path, reason: "\(error)") }
        }
        let chain = try read("--mesh-cert", certificateFile) { try NIOSSLCertificate.fromPEMFile(certificateFile) }
        let key = try read("--mesh-key", keyFile) { try NIOSSLPrivateKey(file: keyFile, format: .pem) }
        let ca = try read("--mesh-ca", caFile) { try NIOSSLCertificate.fromPEMFile(caFile) }
        try self.init(chain: chain, key: key, ca: ca)
    }

    /// The same from PEM text (tests issue certificates in memory).
    public init(certificatePEM: String, keyPEM: String, caPEM: String) throws(Failure) {
        do {
            try self.init(
                chain: try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8)),
                key: try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem),
                ca: try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        } catch let e as Failure {
            throw e
        } catch {
            throw .invalid("\(error)")
        }
    }

    private init(chain: [NIOSSLCertificate], key: NIOSSLPrivateKey, ca: [NIOSSLCertificate]) throws(Failure) {
        guard !chain.isEmpty else { throw .invalid("--mesh-cert holds no certificate") }
        guard !ca.isEmpty else { throw .invalid("--mesh-ca holds no certificate") }
        func configure(_ base: TLSConfiguration) -> TLSConfiguration {
            var c = base
            c.minimumTLSVersion = .tlsv13
            c.maximumTLSVersion = .tlsv13
            c.certificateChain = chain.map { .certificate($0) }
            c.privateKey = .privateKey(key)
            c.trustRoots = .certificates(ca)
            // The chain is verified; the name is checked against membership, not a hostname.
            c.certificateVerification = .noHostnameVerification
            return c
        }
        do {
            server = try NIOSSLContext(configuration: configure(.makeServerConfiguration(certificateChain: [], privateKey: .privateKey(key))))
            client = try NIOSSLContext(configuration: configure(.makeClientConfiguration()))
        } catch {
            throw .invalid("\(error)")
        }
    }

    /// The TLS handler that opens a connection: the server side on accepted ones, the client side
    /// on dialled ones.
    func handler(inbound: Bool) throws -> NIOSSLHandler {
        inbound ? NIOSSLServerHandler(context: server) : try NIOSSLClientHandler(context: client, serverHostname: nil)
    }

    /// The DNS names of the verified peer certificate on `pipeline` (empty without one).
    static func peerNames(_ pipeline: ChannelPipeline.SynchronousOperations) -> [String] {
        guard let certificate = try? pipeline.nioSSL_peerCertificate(), let der = try? certificate.toDERBytes() else { return [] }
        return MeshCertificates.dnsNames(der: der)
    }
}
