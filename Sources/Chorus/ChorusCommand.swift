import ArgumentParser
import Foundation
import Glibc

/// The `chorus` executable: the server and what operators run beside it (the log's inspection and
/// the load generator). Benchmarks, crash tests and simulations are `chorus-tools`.
@main
struct ChorusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "Chorus: a real-time chat engine.",
        subcommands: [ServeCommand.self, CertCommand.self, WALCommand.self, LoadCommand.self]
    )

    /// Options come from the command line, then from `CHORUS_…` variables. A bad option is a clear
    /// message and exit status 2 (PROTOCOL.md section 5); `--help` exits 0.
    static func main() async {
        let arguments: [String]
        do {
            arguments = try EnvironmentOptions.merge(Array(CommandLine.arguments.dropFirst()), ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Glibc.exit(2)
        }
        let command: ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Glibc.exit(2)
        }
        do {
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var syncCommand = command
                try syncCommand.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// `CHORUS_HTTP=…` stands for `--http …` when the option is not on the command line.
enum EnvironmentOptions {
    static let serveOptions = [
        "http", "data", "node-id", "mesh", "peer", "fsync", "inactivity-after", "smtp", "mail-from", "public-url",
        "session-rate-limit", "login-rate-limit", "max-connections", "heartbeat-ms", "snapshot-every", "admin-token",
        "email-templates", "email-rate", "smtp-connections", "smtp-tls", "smtp-user", "smtp-ca-file", "header-timeout", "idle-timeout",
        "mesh-cert", "mesh-key", "mesh-ca", "tls-cert", "tls-key", "register-rate-limit", "max-pending-hashes", "user-send-rate-limit", "max-sessions-per-user", "token-ttl", "trusted-proxy",
    ]
    static let serveFlags = ["insecure-fast-password-hash", "join", "mesh-insecure"]

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    static func merge(_ arguments: [String], _ environment: [String: String]) throws -> [String] {
        guard arguments.first == "serve" else { return arguments }
        var out = arguments
        func given(_ name: String) -> Bool { arguments.contains { $0 == "--\(name)" || $0.hasPrefix("--\(name)=") } }
        func variable(_ name: String) -> String { "CHORUS_" + name.uppercased().replacingOccurrences(of: "-", with: "_") }
        for name in serveOptions where !given(name) {
            guard let value = environment[variable(name)] else { continue }
            let values = name == "peer" || name == "trusted-proxy" ? value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } : [value]
            // `--name=value`, so a value that starts with "-" is not taken for an option.
            for v in values where !v.isEmpty { out.append("--\(name)=\(v)") }
        }
        for name in serveFlags where !given(name) {
            guard let value = environment[variable(name)]?.lowercased() else { continue }
            switch value {
            case "1", "true", "yes", "on": out.append("--\(name)")
            case "0", "false", "no", "off", "": break
            default: throw Invalid(description: "\(variable(name)) must be true or false, not '\(value)'")
            }
        }
        return out
    }
}
