/// When an HTTP connection must next show progress (PROTOCOL.md section 6, "Connections before a
/// session"): a complete request within the header timeout of the connection opening or of the
/// previous request; the next request within the idle timeout of the last response. A WebSocket
/// upgrade ends the rules (heartbeats govern a session). Pure: events in, the deadline out.
struct ConnectionDeadlines: Sendable, Equatable {
    let headerTimeoutMs: Int64
    let idleTimeoutMs: Int64
    /// Requests read and not yet answered.
    private(set) var unanswered = 0
    private(set) var readingRequest = false

    init(headerTimeoutMs: Int64, idleTimeoutMs: Int64) {
        self.headerTimeoutMs = headerTimeoutMs
        self.idleTimeoutMs = idleTimeoutMs
    }

    /// What the shell does with its one timer.
    enum Timer: Sendable, Equatable {
        /// Close the connection unless the next event comes within this many milliseconds.
        case arm(Int64)
        /// No deadline: the server owes the client an answer.
        case stop
    }

    enum Event: Sendable, Equatable {
        case opened
        /// A request head arrived (the body, if any, follows).
        case head
        /// A request's end arrived.
        case end
        /// A response was written whole.
        case responded
    }

    mutating func on(_ event: Event) -> Timer {
        switch event {
        case .opened:
            return .arm(headerTimeoutMs)
        case .head:
            // The body must follow within the same allowance as a head.
            readingRequest = true
            return .arm(headerTimeoutMs)
        case .end:
            readingRequest = false
            unanswered += 1
            return .stop
        case .responded:
            unanswered = max(0, unanswered - 1)
            if readingRequest { return .arm(headerTimeoutMs) }
            return unanswered == 0 ? .arm(idleTimeoutMs) : .stop
        }
    }
}
