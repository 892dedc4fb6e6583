/// How a mail server answered.
public enum MailOutcome: Sendable, Equatable {
    case accepted
    /// 4xx, no connection, a timeout: try again later.
    case retryLater(String)
    /// 5xx for the recipient: never again to this address.
    case refused(String)
}

/// Delivers a rendered email (SMTP, or files in a directory).
public protocol Mailer: Sendable {
    func send(_ message: EmailMessage, to recipient: String) async -> MailOutcome
}
