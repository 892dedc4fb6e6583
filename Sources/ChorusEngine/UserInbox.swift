import ChorusCore
import Synchronization

/// Receives a user's inbox entries live, in inboxSeq order (a WebSocket session). Must not block.
public protocol InboxListener: AnyObject, Sendable {
    /// `message` is the message a `.message` entry refers to (nil for receipts).
    func deliver(inboxSeq: UInt64, entry: InboxEntry, message: MessageRecord?)
}

/// One user's inbox and the sessions listening to it.
///
/// Entries are assigned only from the log's completion path (serial, in LSN order) or from replay
/// (LSN order), so every node run assigns the same inboxSeq to the same entry. Attaching a listener
/// and reading `lastSeq` happen under the same lock as assignment: an entry reaches a session either
/// live (seq > the `hello` value) or by `sync`, never both, never neither.
///
/// It does not keep its user's id (the directory's key): with the coded entries (three words) it
/// stays in one 80-byte allocation, which a million idle users notice.
public final class UserInbox: Sendable {
    private let symbols: SymbolTable
    private let state = Mutex<(core: InboxCore, listeners: [any InboxListener], receivedUpTo: UInt64)>(
        (InboxCore(), [], 0))

    public init(symbols: SymbolTable) {
        self.symbols = symbols
    }

    public var lastSeq: UInt64 { state.withLock { $0.core.lastSeq } }

    /// Assigns the next inboxSeq to `entry` and pushes it to listening sessions except `origin` (the
    /// session that sent the message gets an `ack` instead); returns the seq.
    @discardableResult
    public func append(_ entry: InboxEntry, message: MessageRecord? = nil, except origin: ObjectIdentifier? = nil) -> UInt64 {
        append(entry, message: message, exceptBits: Self.bits(origin))
    }

    /// A session's identity as a number that can travel to another node and back (0: none).
    public static func bits(_ origin: ObjectIdentifier?) -> UInt64 { origin.map { UInt64(UInt(bitPattern: $0)) } ?? 0 }

    /// `append` with the origin as `bits(origin)`.
    @discardableResult
    public func append(_ entry: InboxEntry, message: MessageRecord?, exceptBits origin: UInt64) -> UInt64 {
        let packed = symbols.pack(entry)
        let (seq, listeners) = state.withLock { s -> (UInt64, [any InboxListener]) in
            let seq = s.core.nextSeq
            try! s.core.apply(seq: seq, packed)  // nextSeq is always in order
            // Most inboxes have no session listening (always during replay): skip the copy then.
            if s.listeners.isEmpty { return (seq, []) }
            return (seq, origin == 0 ? s.listeners : s.listeners.filter { Self.bits(ObjectIdentifier($0)) != origin })
        }
        for l in listeners { l.deliver(inboxSeq: seq, entry: entry, message: message) }
        return seq
    }

    /// Entries and the received claim, for a snapshot.
    var snapshotState: (entries: InboxEntries, receivedUpTo: UInt64) {
        state.withLock { ($0.core.entries, $0.receivedUpTo) }
    }

    /// Restores a snapshot's entries (before anything else touches this inbox).
    func restore(entries: InboxEntries, receivedUpTo: UInt64) {
        state.withLock { s in
            s.core = InboxCore(entries: entries)
            s.receivedUpTo = receivedUpTo
        }
    }

    /// Replay's append: an entry already packed, no listeners to tell.
    public func appendReplayed(_ packed: PackedInboxEntry) {
        state.withLock { s in try! s.core.apply(seq: s.core.nextSeq, packed) }
    }

    /// Registers a session for live entries; returns the inboxSeq its `hello` reports.
    public func attach(_ listener: any InboxListener) -> UInt64 {
        state.withLock { s in
            // A session's few sessions: an array is smaller than a dictionary and as fast at this size.
            if !s.listeners.contains(where: { $0 === listener }) { s.listeners.append(listener) }
            return s.core.lastSeq
        }
    }

    public func detach(_ listener: any InboxListener) {
        state.withLock { $0.listeners.removeAll { $0 === listener } }
    }

    /// The inboxSeq of a message's entry (newest first search; 0 if absent).
    public func seq(of m: MessageRecord) -> UInt64 { seq(of: .message(conversationId: m.conversationId, seq: m.seq)) }

    /// Claims the entries in (previous claim, min(upTo, lastSeq)] for delivered receipts; nil when the
    /// claim moves nothing. Claims only move forward, so two sessions never report one entry twice.
    public func claimReceived(upTo: UInt64) -> (range: ClosedRange<UInt64>, entries: [(seq: UInt64, entry: InboxEntry)])? {
        state.withLock { s in
            let top = min(upTo, s.core.lastSeq)
            guard top > s.receivedUpTo else { return nil }
            let range = (s.receivedUpTo + 1)...top
            let entries = s.core.entries(after: s.receivedUpTo, limit: Int(top - s.receivedUpTo))
            s.receivedUpTo = top
            return (range, symbols.unpack(entries))
        }
    }

    /// Gives a claim back (its receipts could not be made): the next claim covers its entries again,
    /// unless a later claim has moved past it meanwhile.
    public func unclaim(_ range: ClosedRange<UInt64>) {
        state.withLock { s in if s.receivedUpTo == range.upperBound { s.receivedUpTo = range.lowerBound - 1 } }
    }

    /// Replay of a `delivered` event.
    public func noteReceived(upTo: UInt64) {
        state.withLock { $0.receivedUpTo = max($0.receivedUpTo, upTo) }
    }

    /// The highest seq among entries of the same kind as `entry` (the same conversation; for a
    /// receipt also the same member and kind): a scan from the newest, 0 if none.
    public func lastSeq(like entry: InboxEntry) -> UInt64 {
        let probe = symbols.pack(entry)
        return state.withLock { s in
            s.core.entries.last { $0.conversation == probe.conversation && $0.receipt == probe.receipt }?.entry.seq ?? 0
        }
    }

    /// The inboxSeq of an entry (newest first search; 0 if absent).
    public func seq(of entry: InboxEntry) -> UInt64 {
        let target = symbols.pack(entry)
        return state.withLock { s in s.core.lastSeq { $0 == target } }
    }

    public func entries(after: UInt64, limit: Int) -> [(seq: UInt64, entry: InboxEntry)] {
        symbols.unpack(state.withLock { $0.core.entries(after: after, limit: limit) })
    }
}

/// Every user's inbox, created on first use.
public final class InboxDirectory: Sendable {
    private let inboxes = Mutex<[String: UserInbox]>([:])
    /// The ids every inbox's entries refer to.
    public let symbols: SymbolTable

    public init(symbols: SymbolTable = SymbolTable()) { self.symbols = symbols }

    /// Every inbox created so far, with its user's id.
    public var all: [(userId: String, inbox: UserInbox)] { inboxes.withLock { $0.map { ($0.key, $0.value) } } }

    public func inbox(_ userId: String) -> UserInbox {
        inboxes.withLock { all in
            if let i = all[userId] { return i }
            let i = UserInbox(symbols: symbols)
            all[userId] = i
            return i
        }
    }
}
