import ChorusCore

/// What a round's child tasks report: a mail server's answer, or a batch of outcomes logged.
enum RoundStep: Sendable {
    case answered(messageId: String, MailOutcome)
    case logged([ChorusEvent], ok: Bool)
}

extension ReengagementService {
    /// Emails handed to the mailer in one round (the outcomes of at most this many are in flight).
    static let sendRound = 512

    /// Sends what is pending and due, within the rate, in rounds of at most `sendRound` emails.
    func sendPending(now: Int64) async -> Int {
        var total = 0
        while budget >= 1 {
            let (sent, goOn) = await sendRound(now: now, limit: min(Int(budget), Self.sendRound))
            total += sent
            guard goOn else { break }  // nothing sent or settled, or the log refused
        }
        if total == 0 { metrics.outboxDepth.record(outbox.pending.count) }
        return total
    }

    /// One round: up to `limit` emails, `settings.concurrency` at a time (the mailer gives each its
    /// own connection). Outcomes are logged while the round goes on, one append in flight at a time,
    /// each taking every outcome waiting once `settings.outcomesPerAppend` are (the rest when all
    /// are answered). So a crash between a mail server's 250 and its record resends at most about
    /// that many emails, not a round, and a burst costs one fsync per that many (an append per
    /// answer would fsync continually, slowing chat acks and the sends themselves). If the log
    /// refuses, no more emails are handed over (they could not be recorded). `goOn`: some outcomes
    /// were logged.
    func sendRound(now: Int64, limit: Int) async -> (sent: Int, goOn: Bool) {
        var batch: [(id: String, to: String, message: EmailMessage)] = []
        for id in outbox.pending {
            guard batch.count < limit else { break }
            if let r = retries[id], r.at > now { continue }
            guard outbox.shouldSend(id), let email = outbox.emails[id] else { continue }
            guard let user = await directory.user(id: email.userId) else { continue }
            batch.append((id, email.to, render(email, user: user, now: now)))
        }
        guard !batch.isEmpty else { return (0, false) }
        budget -= Double(batch.count)
        let mailer = self.mailer
        let (handed, settled, stopped) = await withTaskGroup(of: RoundStep.self) { tasks in
            var handed = 0, answered = 0, settled = 0, stopped = false, appending = false
            let enough = max(1, settings.outcomesPerAppend)
            var waiting: [ChorusEvent] = []
            for _ in 0..<min(max(1, settings.concurrency), batch.count) {
                let item = batch[handed]
                handed += 1
                tasks.addTask { .answered(messageId: item.id, await mailer.send(item.message, to: item.to)) }
            }
            for await step in tasks {
                switch step {
                case .answered(let id, let outcome):
                    answered += 1
                    if let record = settle(id, outcome, now: now) { waiting.append(record) }
                    if !stopped, handed < batch.count {
                        let item = batch[handed]
                        handed += 1
                        tasks.addTask { .answered(messageId: item.id, await mailer.send(item.message, to: item.to)) }
                    }
                case .logged(let records, let ok):
                    appending = false
                    guard ok else { stopped = true; continue }
                    settled += records.count
                    for r in records {
                        if case .emailSent = r { metrics.sent.increment() } else { metrics.failed.increment() }
                    }
                }
                if !appending, !stopped, !waiting.isEmpty, waiting.count >= enough || answered == handed {
                    let records = waiting
                    waiting = []
                    appending = true
                    tasks.addTask { .logged(records, ok: await self.log(records)) }
                }
            }
            return (handed, settled, stopped)
        }
        metrics.outboxDepth.record(outbox.pending.count)
        // Another round only if this one got somewhere: a mail server that is down is not tried
        // with every pending email in one tick.
        return (handed, !stopped && settled > 0)
    }

    /// The record a mail server's answer calls for (none for a retry, which is only scheduled).
    private func settle(_ id: String, _ outcome: MailOutcome, now: Int64) -> ChorusEvent? {
        switch outcome {
        case .accepted:
            retries[id] = nil
            return .emailSent(messageId: id, at: now)
        case .retryLater(let why):
            let attempts = (retries[id]?.attempts ?? 0) + 1
            let delay = settings.retry.delayMs(afterAttempt: attempts, random: &random)
            retries[id] = (attempts, now + delay)
            metrics.retried.increment()
            logger.warning("email will be retried", metadata: ["messageId": "\(id)", "attempt": "\(attempts)", "inMs": "\(delay)", "reason": "\(why)"])
            return nil
        case .refused(let why):
            retries[id] = nil
            logger.warning("email refused for good; address suppressed", metadata: ["messageId": "\(id)", "reason": "\(why)"])
            return .emailFailed(messageId: id, at: now, reason: why)
        }
    }

    func render(_ email: Outbox.Email, user: ReengagementUser, now: Int64) -> EmailMessage {
        let base = settings.publicURL.hasSuffix("/") ? String(settings.publicURL.dropLast()) : settings.publicURL
        let unsubscribe = base + "/v1/unsubscribe?token=" + tokens.token(for: user.userId)
        let parts = settings.templates.render(["name": user.name, "loginURL": base + "/", "unsubscribeURL": unsubscribe])
        return EmailMessage(
            from: settings.from, to: email.to, subject: parts.subject, dateMs: now, messageId: email.messageId,
            unsubscribeURL: unsubscribe, text: parts.text, html: parts.html)
    }
}
