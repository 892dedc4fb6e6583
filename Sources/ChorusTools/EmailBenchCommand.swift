import ArgumentParser
import ChorusCLI
import ChorusCore
import ChorusMail
import ChorusReengagement
import Logging
import NIOPosix

/// `chorus-tools email-bench`: hands `--count` rendered re-engagement emails to an SMTP server
/// through `--connections` reused connections, as the sender does, and prints the rate.
struct EmailBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "email-bench", abstract: "Measure the SMTP sender's rate.", shouldDisplay: false)

    @Option(help: "SMTP server HOST:PORT.") var smtp: String
    @Option(help: "Emails to send.") var count = 10_000
    @Option(help: "Connections used at once.") var connections = 1

    func run() async throws {
        let (host, port) = try ConfigParsing.hostPort(smtp, allowEphemeral: false)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "email-bench")
        let mailer = SMTPMailer(
            settings: SMTPSettings(host: host, port: port, sender: "chorus@bench.example"), group: group, logger: logger, connections: connections)
        let message = EmailMessage(
            from: "chorus@bench.example", to: "user@bench.example", subject: "bench, your conversations are waiting", dateMs: 1_795_000_000_000,
            messageId: "<reengage.u_bench.1@bench.example>", unsubscribeURL: "http://bench.example/v1/unsubscribe?token=u_bench.x",
            text: EmailTemplates.standard.text, html: EmailTemplates.standard.html)
        let started = ContinuousClock.now
        // As the sender does: `connections` sends in flight on one mailer's connections.
        let accepted = await withTaskGroup(of: Int.self) { tasks in
            for k in 0..<connections {
                let share = count / connections + (k < count % connections ? 1 : 0)
                tasks.addTask {
                    var ok = 0
                    for _ in 0..<share where await mailer.send(message, to: "user@bench.example") == .accepted { ok += 1 }
                    return ok
                }
            }
            return await tasks.reduce(0, +)
        }
        await mailer.close()
        let seconds = Double((ContinuousClock.now - started).components.attoseconds) / 1e18 + Double((ContinuousClock.now - started).components.seconds)
        Output.line("accepted \(accepted) of \(count) in \(String(format: "%.2f", seconds)) s: \(Int(Double(accepted) / seconds)) emails/s over \(connections) connection(s)")
        try await group.shutdownGracefully()
    }
}
