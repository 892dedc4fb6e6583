import ChorusCore

/// One entry of a user's inbox: a message, or a receipt another member sent.
public enum InboxEntry: Sendable, Equatable {
    case message(conversationId: String, seq: UInt64)
    case receipt(conversationId: String, userId: String, kind: ReceiptKind, seq: UInt64)
}

public enum ReceiptKind: UInt8, Sendable, Equatable {
    case delivered = 1
    case read = 2

    public var name: String { self == .delivered ? "delivered" : "read" }
}

/// A user's inbox as plain state: `inboxSeq` starts at 1 and rises by exactly 1, entries are kept
/// by seq. Pure; the user actor logs each entry before `apply` and before pushing it to sessions.
public struct InboxCore: Sendable {
    public private(set) var entries: [InboxEntry] = []

    public init() {}

    /// The newest `inboxSeq`, 0 when empty (what `hello` reports).
    public var lastSeq: UInt64 { UInt64(entries.count) }

    /// The seq the next entry takes.
    public var nextSeq: UInt64 { lastSeq + 1 }

    /// Applies a durable entry. Entries arrive in seq order; anything else is a broken invariant.
    public mutating func apply(seq: UInt64, _ entry: InboxEntry) throws(InboxError) {
        guard seq == nextSeq else { throw .outOfOrder(expected: nextSeq, got: seq) }
        entries.append(entry)
    }

    /// Entries with `inboxSeq` > `after`, at most `limit`, in order.
    public func entries(after: UInt64, limit: Int) -> [(seq: UInt64, entry: InboxEntry)] {
        guard after < lastSeq, limit > 0 else { return [] }
        let start = Int(after)
        let end = min(entries.count, start + limit)
        return (start..<end).map { (UInt64($0 + 1), entries[$0]) }
    }
}

public enum InboxError: Error, Equatable, Sendable {
    case outOfOrder(expected: UInt64, got: UInt64)
}
