import ChorusCLI
import ArgumentParser
import ChorusCore
import ChorusLoad
import Foundation

/// `chorus load`: drives a running server with real WebSocket clients and prints a JSON report.
struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load a running server with WebSocket clients in pairs; print JSON results.",
        discussion: """
            Run the server with --insecure-fast-password-hash --login-rate-limit off and a
            --session-rate-limit above the per-connection rate. Users <prefix>0... are registered
            or reused. Latencies count from each message's intended send time (open loop).
            """
    )

    @Option(help: "Server HTTP address HOST:PORT; repeat for nodes of one cluster (connection i uses target i mod count).")
    var target: [String] = ["127.0.0.1:8080"]
    @Option(help: "WebSocket connections (even; at most 19000 per process here).") var connections = 100
    @Option(help: "Messages per second over all connections; 0 = closed loop (see --window).") var rate = 1000.0
    @Option(help: "Closed loop: messages in flight per connection.") var window = 1
    @Option(help: "Seconds of sending.") var duration = 10.0
    @Option(help: "Seconds at the start left out of the latency histograms.") var warmup = 1.0
    @Option(help: "Seconds to wait for outstanding acks and deliveries.") var drain = 10.0
    @Option(help: "Message body bytes.") var bodyBytes = 100
    @Option(help: "Username prefix.") var userPrefix = "load"
    @Option(help: "Password of the load users.") var password = "load-password"
    @Option(help: "Server PID, to report its RSS per connection.") var serverPid: Int32?
    @Option(help: "Event-loop threads.") var eventLoops = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard connections >= 2, connections % 2 == 0, connections <= 19_000 else {
            throw ValidationError("--connections must be even, 2...19000 (file limit 20,000 per process)")
        }
        guard rate >= 0, window >= 1, window <= 10_000, duration > 0, warmup >= 0, warmup < duration, drain >= 0 else {
            throw ValidationError("--rate >= 0, --window 1...10000, --duration > 0, 0 <= --warmup < --duration")
        }
        guard (40...4096).contains(bodyBytes) else { throw ValidationError("--body-bytes must be 40...4096") }
        guard !target.isEmpty, target.allSatisfy({ (try? ConfigParsing.hostPort($0)) != nil }) else {
            throw ValidationError("--target must be HOST:PORT")
        }
    }

    func run() throws {
        var o = LoadOptions()
        let (host, port) = try ConfigParsing.hostPort(target[0])
        o.host = host
        o.port = port
        o.moreTargets = try target.dropFirst().map { try ConfigParsing.hostPort($0) }
        o.connections = connections
        o.rate = rate
        o.window = window
        o.durationSeconds = duration
        o.warmupSeconds = warmup
        o.drainSeconds = drain
        o.bodyBytes = bodyBytes
        o.userPrefix = userPrefix
        o.password = password
        o.serverPid = serverPid
        o.eventLoops = eventLoops
        let report = try LoadRunner(options: o) { FileHandle.standardError.write(Data("load: \($0)\n".utf8)) }.run()
        print(report.json())
    }
}
