import NIOSSL

/// Listener settings and bounds of the HTTP/WebSocket gateway. Every bound says what happens at it.
public struct GatewayConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Open connections accepted; past it new connections get `503` and are closed.
    public var maxConnections = 19_000
    /// Largest WebSocket message after reassembly; a bigger frame closes the connection with 1009.
    public var maxFrameBytes = 65_536
    /// Largest HTTP request body; a bigger one gets `413`.
    public var maxRequestBodyBytes = 65_536
    /// A connection must deliver a complete request head (and then its body) this soon after it
    /// opens or its previous request was read; past it the connection is closed (`--header-timeout`).
    public var headerTimeoutMs: Int64 = 10_000
    /// A keep-alive connection with no request this long after its last response is closed
    /// (`--idle-timeout`).
    public var idleTimeoutMs: Int64 = 60_000
    /// Header fields in one request head; more is `431` and the connection is closed.
    public var maxHeaderCount = 100
    /// Bytes of all header names and values of one request head; more is `431` and a close.
    public var maxHeaderBytes = 16_384
    /// Frames queued to one session and not yet written; past it the session is closed with 4008
    /// ("outbound queue overflow") and the client recovers with `sync`.
    public var maxOutboundFrames = 1_024
    /// HTTPS and WSS only on the listener (`--tls-cert`, `--tls-key`); nil is plain HTTP.
    public var tls: NIOSSLContext?
    /// Peers (reverse proxies) whose `X-Forwarded-For` gives the client's address (`--trusted-proxy`).
    public var trustedProxies: [CIDR] = []

    public init() {}
}

/// The client listener's TLS (PROTOCOL.md section 6, "Client TLS"): a certificate chain and key
/// from PEM files; TLS 1.2 or later.
public enum GatewayTLS {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func context(certificateFile: String, keyFile: String) throws(Failure) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(certificateFile) } catch {
            throw Failure(description: "--tls-cert: cannot read \(certificateFile): \(error)")
        }
        do { key = try NIOSSLPrivateKey(file: keyFile, format: .pem) } catch {
            throw Failure(description: "--tls-key: cannot read \(keyFile): \(error)")
        }
        guard !chain.isEmpty else { throw Failure(description: "--tls-cert: \(certificateFile) holds no certificate") }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw Failure(description: "--tls-cert/--tls-key: \(error) (is the key the certificate's?)")
        }
    }
}
