import ArgumentParser
import ChorusCLI
import ChorusMesh
import Foundation
import Glibc

/// `chorus cert ...`: the certificates of a cluster's mutual-TLS mesh (docs/SECURITY.md). Built in,
/// so an operator needs no openssl recipe and every node's certificate has the one shape the mesh
/// checks: a DNS name equal to the node id, signed by the cluster's CA.
struct CertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "Create the mesh's certificates: a CA per cluster, a certificate per node.",
        subcommands: [CA.self, NodeCert.self]
    )

    struct CA: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ca", abstract: "Create a cluster CA: DIR/ca.pem (give to every node) and DIR/ca-key.pem (keep offline).")

        @Option(help: "Directory to write to (created 0700 if missing).") var out: String
        @Option(help: "Days the CA is valid.") var days = 3650

        func run() throws {
            guard (1...36_500).contains(days) else { throw ValidationError("--days: 1...36500") }
            let issued = try MeshCertificates.makeCA(days: days)
            try CertFiles.write(issued, certificate: "\(out)/ca.pem", key: "\(out)/ca-key.pem")
            Output.line("wrote \(out)/ca.pem and \(out)/ca-key.pem")
        }
    }

    struct NodeCert: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "node", abstract: "Create DIR/ID.pem and DIR/ID-key.pem for node ID, signed by the CA in --ca.")

        @Option(help: "The node id (its --node-id).") var id: String
        @Option(help: "Directory holding ca.pem and ca-key.pem.") var ca: String
        @Option(help: "Directory to write to (created 0700 if missing).") var out: String
        @Option(help: "Days the certificate is valid.") var days = 825

        func run() throws {
            guard (1...36_500).contains(days) else { throw ValidationError("--days: 1...36500") }
            guard MeshHello.isValidNodeId(id) else { throw ValidationError("--id: 1-64 printable ASCII characters, no spaces") }
            let caPEM = try CertFiles.read("\(ca)/ca.pem"), keyPEM = try CertFiles.read("\(ca)/ca-key.pem")
            let issued = try MeshCertificates.makeNode(id: id, caCertificatePEM: caPEM, caKeyPEM: keyPEM, days: days)
            try CertFiles.write(issued, certificate: "\(out)/\(id).pem", key: "\(out)/\(id)-key.pem")
            Output.line("wrote \(out)/\(id).pem and \(out)/\(id)-key.pem")
        }
    }
}

/// Files of `chorus cert`: never overwritten; keys 0600, certificates 0644, new directories (and
/// their missing parents) 0700.
enum CertFiles {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func read(_ path: String) throws -> String {
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch { throw Failure(description: "cannot read \(path)") }
    }

    static func write(_ issued: MeshCertificates.Issued, certificate: String, key: String) throws {
        let directory = (certificate as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw Failure(description: "cannot create \(directory): \(error.localizedDescription)")
        }
        for path in [certificate, key] where access(path, F_OK) == 0 { throw Failure(description: "\(path) exists; not overwritten") }
        try create(key, issued.keyPEM, mode: 0o600)
        try create(certificate, issued.certificatePEM, mode: 0o644)
    }

    private static func create(_ path: String, _ text: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
        guard fsync(fd) == 0 else { throw Failure(description: "cannot sync \(path): \(String(cString: strerror(errno)))") }
    }
}
