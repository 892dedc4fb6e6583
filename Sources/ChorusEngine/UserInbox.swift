import ChorusCore
import Synchronization

/// Receives a user's inbox entries live, in inboxSeq order (a WebSocket session). Must not block.
public protocol InboxListener: AnyObject, Sendable {
    func deliver(inboxSeq: UInt64, entry: InboxEntry)
}

/// One user's inbox and the sessions listening to it.
///
/// Entries are assigned only from the log's completion path (serial, in LSN order) or from replay
/// (LSN order), so every node run assigns the same inboxSeq to the same entry. Attaching a listener
/// and reading `lastSeq` happen under the same lock as assignment: an entry reaches a session either
/// live (seq > the `hello` value) or by `sync`, never both, never neither.
public final class UserInbox: Sendable {
    public let userId: String
    private let state = Mutex<(core: InboxCore, listeners: [ObjectIdentifier: any InboxListener])>((InboxCore(), [:]))

    public init(userId: String) { self.userId = userId }

    public var lastSeq: UInt64 { state.withLock { $0.core.lastSeq } }

    /// Assigns the next inboxSeq to `entry` and pushes it to listening sessions; returns the seq.
    @discardableResult
    public func append(_ entry: InboxEntry) -> UInt64 {
        let (seq, listeners) = state.withLock { s -> (UInt64, [any InboxListener]) in
            let seq = s.core.nextSeq
            try! s.core.apply(seq: seq, entry)  // nextSeq is always in order
            return (seq, Array(s.listeners.values))
        }
        for l in listeners { l.deliver(inboxSeq: seq, entry: entry) }
        return seq
    }

    /// Registers a session for live entries; returns the inboxSeq its `hello` reports.
    public func attach(_ listener: any InboxListener) -> UInt64 {
        state.withLock { s in
            s.listeners[ObjectIdentifier(listener)] = listener
            return s.core.lastSeq
        }
    }

    public func detach(_ listener: any InboxListener) {
        _ = state.withLock { $0.listeners.removeValue(forKey: ObjectIdentifier(listener)) }
    }

    public func entries(after: UInt64, limit: Int) -> [(seq: UInt64, entry: InboxEntry)] {
        state.withLock { $0.core.entries(after: after, limit: limit) }
    }
}

/// Every user's inbox, created on first use.
public final class InboxDirectory: Sendable {
    private let inboxes = Mutex<[String: UserInbox]>([:])

    public init() {}

    public func inbox(_ userId: String) -> UserInbox {
        inboxes.withLock { all in
            if let i = all[userId] { return i }
            let i = UserInbox(userId: userId)
            all[userId] = i
            return i
        }
    }
}
