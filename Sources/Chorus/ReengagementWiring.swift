import ChorusCLI
import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusGateway
import ChorusReengagement
import ChorusWAL
import Foundation
import Logging
import ServiceLifecycle

/// The accounts as the re-engagement timers see them: this node's users, by table index.
struct AccountsDirectory: ReengagementDirectory {
    let accounts: Accounts
    let placement: PlacementCell

    func allUsers() async -> [ReengagementUser] {
        await accounts.indexedUsers(where: { placement.isLocal(user: $0) }).map { Self.user($0.index, $0.user, $0.lastLogin) }
    }

    func user(_ index: UInt32) async -> ReengagementUser? {
        guard let (u, login) = await accounts.user(atIndex: Int32(index)), placement.isLocal(user: u.userId) else { return nil }
        return Self.user(Int32(index), u, login)
    }

    func users(_ indices: [UInt32]) async -> [ReengagementUser?] {
        let found = await accounts.users(atIndices: indices.map { Int32($0) })
        return zip(indices, found).map { index, entry in
            guard let (u, login) = entry, placement.isLocal(user: u.userId) else { return nil }
            return Self.user(Int32(index), u, login)
        }
    }

    func user(id: String) async -> ReengagementUser? {
        guard let i = await accounts.tableIndex(of: id) else { return nil }
        return await user(UInt32(i))
    }

    static func user(_ i: Int32, _ u: UserRecord, _ login: Int64) -> ReengagementUser {
        // A user who never logged in after registering: registering counts as the login.
        ReengagementUser(index: UInt32(i), userId: u.userId, name: u.displayName, email: u.email, lastLoginAt: max(login, u.createdAt))
    }
}

/// Without `--smtp`: each email is written, whole (RFC 5322), to `<data>/outbox/<Message-ID>.eml`,
/// durably (temporary file, fsync, rename), and counts as sent once it is there.
struct DirectoryMailer: Mailer {
    let directory: String

    func send(_ message: EmailMessage, to recipient: String) async -> MailOutcome {
        let name = String(message.messageId.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0) })
        do {
            try DurableFile.createDirectory(directory)
            try DurableFile.write(Array(message.rendered().utf8), to: "\(directory)/\(name).eml")
            return .accepted
        } catch {
            return .retryLater("cannot write the outbox file: \(error)")
        }
    }
}

/// The timer actor's clock: a tick a second until shutdown (the wheel's resolution).
struct ReengagementLoop: Service {
    let service: ReengagementService
    let clock: any WallClock

    func run() async throws {
        await service.start()
        // Graceful shutdown cancels the sleep: the node stops at once, not at the next tick.
        try? await cancelWhenGracefulShutdown {
            // A tick a second, counted from each tick's start: a tick that sent for longer than a
            // second (a burst of due emails) is followed by the next one at once, not a second later.
            let pace = ContinuousClock()
            while !Task.isCancelled {
                let started = pace.now
                await service.tick(now: clock.nowMs())
                try await Task.sleep(until: started + .seconds(1), clock: pace)
            }
        }
    }
}

/// The node's secret for unsubscribe tokens: `<data>/secret` (32 random bytes, made at first start),
/// or the hex of `CHORUS_EMAIL_SECRET` (the same on every node of a cluster, so links keep working
/// when a membership change moves a user).
func loadEmailSecret(dataDirectory: String) throws -> [UInt8] {
    if let hex = ProcessInfo.processInfo.environment["CHORUS_EMAIL_SECRET"], hex.count >= 64 {
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex, let next = hex.index(i, offsetBy: 2, limitedBy: hex.endIndex), let b = UInt8(hex[i..<next], radix: 16) {
            bytes.append(b)
            i = next
        }
        if bytes.count >= 32 { return bytes }
    }
    let path = dataDirectory + "/secret"
    if let existing = try DurableFile.read(path), existing.count >= 32 { return existing }
    var rng = SystemRandomNumberGenerator()
    let fresh = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
    try DurableFile.createDirectory(dataDirectory)
    try DurableFile.write(fresh, to: path)
    return fresh
}

/// `GET /v1/unsubscribe?token=T` shows a page with a button and changes nothing (mail scanners fetch
/// links); `POST` (the button, or a mail client's RFC 8058 one-click) unsubscribes, idempotently.
func unsubscribeHandler(_ service: ReengagementService, clock: any WallClock) -> @Sendable (APIRequest) async -> APIResponse {
    { r in
        guard let token = r.query["token"], service.verify(token: token) != nil else {
            return .error(400, code: "bad_token", message: "this unsubscribe link is not valid")
        }
        if r.method == "GET" {
            let safe = EmailTemplates.htmlEscaped(token)
            return page("""
                <h1>Unsubscribe</h1>
                <p>Stop re-engagement emails from Chorus?</p>
                <form method="post" action="/v1/unsubscribe?token=\(safe)"><button type="submit">Unsubscribe</button></form>
                """)
        }
        let outcome: Result<Bool, ChatError>
        do throws(ChatError) { outcome = .success(try await service.unsubscribe(token: token, now: clock.nowMs())) } catch { outcome = .failure(error) }
        switch outcome {
        case .success(true): return page("<h1>Unsubscribed</h1><p>You will get no more re-engagement emails.</p>")
        case .success(false): return .error(400, code: "bad_token", message: "this unsubscribe link is not valid")
        case .failure(let e): return .error(e)
        }
    }
}

private func page(_ body: String) -> APIResponse {
    let html = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Chorus</title></head><body>\(body)</body></html>"
    return APIResponse(
        status: 200,
        headers: [("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", "default-src 'none'; form-action 'self'")],
        body: Array(html.utf8))
}

/// `--email-templates DIR`: each of `subject.txt`, `body.txt`, `body.html` present replaces the
/// standard one; a directory with none of them is refused (a typo, most likely).
enum EmailTemplateFiles {
    static func load(_ dir: String) throws -> EmailTemplates {
        let standard = EmailTemplates.standard
        var found = 0
        func read(_ name: String) -> String? {
            guard let data = FileManager.default.contents(atPath: dir + "/" + name) else { return nil }
            found += 1
            return String(decoding: data, as: UTF8.self)
        }
        let subject = read("subject.txt").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? standard.subject
        let text = read("body.txt") ?? standard.text
        let html = read("body.html") ?? standard.html
        guard found > 0 else { throw ConfigParsing.Failure("no subject.txt, body.txt or body.html in \(dir)") }
        do {
            return try EmailTemplates(subject: subject, text: text, html: html)
        } catch {
            throw ConfigParsing.Failure("\(error)")
        }
    }
}
