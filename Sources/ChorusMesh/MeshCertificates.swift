import Crypto
import Foundation
import SwiftASN1
import X509

/// The certificates of a cluster's mesh: one CA per cluster, one certificate per node whose only
/// DNS subject alternative name is the node id (PROTOCOL.md section 6). Keys are P-256.
public enum MeshCertificates {
    /// A certificate and its private key, both PEM.
    public struct Issued: Sendable {
        public let certificatePEM: String
        public let keyPEM: String
    }

    public enum Failure: Error, CustomStringConvertible {
        case invalidNodeId(String)
        case unreadableCA(String)
        case encoding(String)

        public var description: String {
            switch self {
            case .invalidNodeId(let id): "'\(id)' is not a node id (1-64 printable ASCII characters, no spaces)"
            case .unreadableCA(let why): "the CA certificate or key cannot be read: \(why)"
            case .encoding(let why): "cannot encode the certificate: \(why)"
            }
        }
    }

    /// A new self-signed CA, valid for `days`.
    public static func makeCA(name: String = "Chorus mesh CA", days: Int = 3650, now: Date = Date()) throws(Failure) -> Issued {
        let key = P256.Signing.PrivateKey()
        let signer = Certificate.PrivateKey(key)
        do {
            let subject = try DistinguishedName { CommonName(name) }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: signer.publicKey)
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: signer.publicKey,
                notValidBefore: now - 300, notValidAfter: now + Double(days) * 86_400,
                issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: signer)
            return Issued(certificatePEM: try certificate.serializeAsPEM().pemString, keyPEM: key.pemRepresentation)
        } catch {
            throw .encoding("\(error)")
        }
    }

    /// A certificate for node `id`, signed by the CA, usable as TLS server and client, valid for `days`.
    public static func makeNode(id: String, caCertificatePEM: String, caKeyPEM: String, days: Int = 825, now: Date = Date()) throws(Failure) -> Issued {
        guard MeshHello.isValidNodeId(id) else { throw .invalidNodeId(id) }
        let ca: Certificate
        let caKey: Certificate.PrivateKey
        do {
            ca = try Certificate(pemEncoded: caCertificatePEM)
            caKey = try Certificate.PrivateKey(pemEncoded: caKeyPEM)
        } catch {
            throw .unreadableCA("\(error)")
        }
        guard caKey.publicKey == ca.publicKey else { throw .unreadableCA("the key is not the certificate's") }
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        do {
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames([.dnsName(id)])
                SubjectKeyIdentifier(hash: publicKey)
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
                notValidBefore: now - 300, notValidAfter: now + Double(days) * 86_400,
                issuer: ca.subject, subject: try DistinguishedName { CommonName(id) }, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: extensions, issuerPrivateKey: caKey)
            return Issued(certificatePEM: try certificate.serializeAsPEM().pemString, keyPEM: key.pemRepresentation)
        } catch {
            throw .encoding("\(error)")
        }
    }

    /// The DNS names of the first certificate of a PEM file (empty if unreadable).
    public static func dnsNames(pemFile path: String) -> [String] {
        guard let pem = try? String(contentsOfFile: path, encoding: .utf8),
              let certificate = try? Certificate(pemEncoded: pem)
        else { return [] }
        return names(of: certificate)
    }

    /// The DNS subject alternative names of a DER certificate (empty if it has none or does not parse).
    public static func dnsNames(der: [UInt8]) -> [String] {
        guard let certificate = try? Certificate(derEncoded: der) else { return [] }
        return names(of: certificate)
    }

    private static func names(of certificate: Certificate) -> [String] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { if case .dnsName(let name) = $0 { name } else { nil } }
    }
}
