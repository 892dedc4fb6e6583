import ChorusReengagement
import Logging
import NIOCore
import NIOSSL

/// Where and how to deliver (`--smtp HOST:PORT`; the user from `--smtp-user`, the password from
/// `CHORUS_SMTP_PASSWORD`, never on the command line). Credentials are sent only over TLS.
public struct SMTPSettings: Sendable {
    public var host: String
    public var port: Int
    /// The envelope sender (MAIL FROM), a bare address.
    public var sender: String
    /// Our name in EHLO.
    public var heloName = "chorus.local"
    public var username: String?
    public var password: String?
    /// Every step (connect, greeting, each command, the data) must answer within this.
    public var stepTimeout: TimeAmount = .seconds(30)
    /// STARTTLS: used when the server offers it (`opportunistic`), demanded (`required`), or never.
    public var tls: TLSMode = .opportunistic
    /// A PEM file of CA certificates to trust instead of the system's (a private relay's CA).
    public var caFile: String?

    public enum TLSMode: String, Sendable, CaseIterable {
        case off, opportunistic, required
    }

    public init(host: String, port: Int, sender: String) {
        self.host = host
        self.port = port
        self.sender = sender
    }
}

/// Delivers over SMTP (RFC 5321): up to `connections` connections (4 by default), each opened on
/// demand and reused for every message, one transaction at a time (RSET after a failed one), EHLO, AUTH PLAIN or LOGIN when configured,
/// MAIL / RCPT / DATA with dot-stuffing, a timeout on every step. Outcomes: 250 after the data is
/// `accepted`; a 5xx to RCPT or to the data is `refused` (the address is suppressed); a 4xx, a
/// timeout, a dropped or refused connection, or a 5xx to MAIL FROM (our own configuration) is
/// `retryLater`. STARTTLS (RFC 3207) when the server offers it, or required (`--smtp-tls`);
/// certificates are verified (the system's roots, or `--smtp-ca-file`).
public actor SMTPMailer: Mailer {
    let settings: SMTPSettings
    let group: any EventLoopGroup
    let logger: Logger
    /// Connection slots not in use (nil: not opened yet, or dropped); one transaction per slot at a
    /// time. Callers beyond `connections` wait for a slot.
    var idle: [SMTPConnection?]
    var waiting: [CheckedContinuation<SMTPConnection?, Never>] = []

    public init(settings: SMTPSettings, group: any EventLoopGroup, logger: Logger, connections: Int = 4) {
        self.settings = settings
        self.group = group
        self.logger = logger
        idle = Array(repeating: nil, count: max(1, connections))
    }

    public func send(_ message: EmailMessage, to recipient: String) async -> MailOutcome {
        var c = await acquire()
        let outcome: MailOutcome
        do {
            if c == nil || c?.channel.isActive != true { c = try await open() }
            outcome = try await transaction(c!, message, to: Self.address(recipient))
        } catch {
            c?.close()
            c = nil
            outcome = .retryLater("\(error)")
        }
        release(c)
        return outcome
    }

    private func acquire() async -> SMTPConnection? {
        if let slot = idle.popLast() { return slot }
        return await withCheckedContinuation { waiting.append($0) }
    }

    private func release(_ c: SMTPConnection?) {
        if waiting.isEmpty { idle.append(c) } else { waiting.removeFirst().resume(returning: c) }
    }

    /// Closes the idle connections (QUIT first, politely).
    public func close() async {
        let open = idle.compactMap { $0 }
        idle = Array(repeating: nil, count: idle.count)
        for c in open {
            _ = try? await c.command("QUIT", timeout: .seconds(2))
            c.close()
        }
    }

    private func transaction(_ c: SMTPConnection, _ message: EmailMessage, to recipient: String) async throws -> MailOutcome {
        let t = settings.stepTimeout
        let mail = try await c.command("MAIL FROM:<\(Self.address(settings.sender))>", timeout: t)
        guard mail.isPositive else {
            logger.error("the SMTP server refused our sender", metadata: ["reply": "\(mail.text)"])
            return try await abort(c, .retryLater("MAIL FROM: \(mail.text)"))
        }
        let rcpt = try await c.command("RCPT TO:<\(recipient)>", timeout: t)
        guard rcpt.isPositive else {
            return try await abort(c, rcpt.isPermanent ? .refused("RCPT TO: \(rcpt.text)") : .retryLater("RCPT TO: \(rcpt.text)"))
        }
        let data = try await c.command("DATA", timeout: t)
        guard data.code == 354 else { return try await abort(c, .retryLater("DATA: \(data.text)")) }
        let done = try await c.exchange(smtpDataPayload(message.rendered()), timeout: t, step: "end of data")
        if done.isPositive { return .accepted }
        return done.isPermanent ? .refused("data: \(done.text)") : .retryLater("data: \(done.text)")
    }

    /// Ends a failed transaction (RSET) so the connection serves the next message; a connection
    /// that refuses RSET is dropped.
    private func abort(_ c: SMTPConnection, _ outcome: MailOutcome) async throws -> MailOutcome {
        let reset = try await c.command("RSET", timeout: settings.stepTimeout)
        guard reset.isPositive else { throw SMTPError.protocolError("RSET: \(reset.text)") }
        return outcome
    }

    /// A new connection: greeting, EHLO, AUTH if configured.
    private func open() async throws -> SMTPConnection {
        let t = settings.stepTimeout
        let c = try await SMTPConnection.connect(host: settings.host, port: settings.port, group: group, timeout: t)
        do {
            let greeting = try await c.exchange(nil, timeout: t, step: "greeting")
            guard greeting.code == 220 else { throw SMTPError.protocolError("greeting: \(greeting.text)") }
            var ehlo = try await c.command("EHLO \(settings.heloName)", timeout: t)
            guard ehlo.code == 250 else { throw SMTPError.protocolError("EHLO: \(ehlo.text)") }
            let offered = ehlo.extensions.contains("STARTTLS")
            let credentials = settings.username.flatMap { u in settings.password.map { (u, $0) } }
            if credentials != nil && (settings.tls == .off || !offered) {
                throw SMTPError.protocolError("AUTH is sent only over TLS, and the server does not offer STARTTLS")
            }
            if settings.tls == .required && !offered { throw SMTPError.protocolError("the server does not offer STARTTLS (required)") }
            if settings.tls != .off && offered {
                let go = try await c.command("STARTTLS", timeout: t)
                guard go.code == 220 else { throw SMTPError.protocolError("STARTTLS: \(go.text)") }
                try await c.startTLS(context: try tlsContext(), serverHostname: Self.isIPAddress(settings.host) ? nil : settings.host)
                // RFC 3207: everything learnt before TLS is forgotten; EHLO again.
                ehlo = try await c.command("EHLO \(settings.heloName)", timeout: t)
                guard ehlo.code == 250 else { throw SMTPError.protocolError("EHLO after STARTTLS: \(ehlo.text)") }
            }
            if let (user, password) = credentials { try await authenticate(c, ehlo, user, password) }
        } catch {
            c.close()
            throw error
        }
        return c
    }

    private func authenticate(_ c: SMTPConnection, _ ehlo: SMTPReply, _ user: String, _ password: String) async throws {
        let t = settings.stepTimeout
        let mechanisms = Set(ehlo.lines.first { $0.uppercased().hasPrefix("AUTH") }?.uppercased().split(separator: " ").dropFirst().map(String.init) ?? [])
        if mechanisms.contains("PLAIN") {
            let token = EmailMessage.base64(Array(("\0" + user + "\0" + password).utf8))
            let r = try await c.command("AUTH PLAIN \(token)", timeout: t)
            guard r.code == 235 else { throw SMTPError.protocolError("AUTH PLAIN: \(r.text)") }
        } else if mechanisms.contains("LOGIN") {
            guard try await c.command("AUTH LOGIN", timeout: t).code == 334,
                try await c.command(EmailMessage.base64(Array(user.utf8)), timeout: t).code == 334
            else { throw SMTPError.protocolError("AUTH LOGIN refused") }
            let r = try await c.command(EmailMessage.base64(Array(password.utf8)), timeout: t)
            guard r.code == 235 else { throw SMTPError.protocolError("AUTH LOGIN: \(r.text)") }
        } else {
            throw SMTPError.protocolError("the server offers no AUTH PLAIN or LOGIN")
        }
    }

    /// Certificates verified against the system's roots, or `caFile`'s; built once.
    private var context: NIOSSLContext?
    private func tlsContext() throws -> NIOSSLContext {
        if let context { return context }
        var config = TLSConfiguration.makeClientConfiguration()
        if let caFile = settings.caFile { config.trustRoots = .file(caFile) }
        let made = try NIOSSLContext(configuration: config)
        context = made
        return made
    }

    static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil }
    }

    /// A bare address: no CR, LF, angle brackets or spaces can reach a command line.
    static func address(_ s: String) -> String {
        String(s.unicodeScalars.filter { $0.value > 0x20 && $0.value != 0x7F && $0 != "<" && $0 != ">" })
    }
}
