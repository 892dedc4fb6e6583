import ChorusCore

/// One entry of a user's inbox: a message, or a receipt another member sent.
public enum InboxEntry: Sendable, Equatable {
    case message(conversationId: String, seq: UInt64)
    case receipt(conversationId: String, userId: String, kind: ReceiptKind, seq: UInt64)
}

/// An inbox entry as stored: 16 bytes, ids as `SymbolTable` numbers. Most of a node's memory is
/// inbox entries (one per member per message), so they hold no strings.
public struct PackedInboxEntry: Sendable, Equatable, BitwiseCopyable {
    public var conversation: UInt32
    /// 0 for a message; else bit 31 set for a read receipt, and the low 31 bits the sender's symbol + 1.
    public var receipt: UInt32
    public var seq: UInt64

    public init(conversation: UInt32, receipt: UInt32 = 0, seq: UInt64) {
        self.conversation = conversation
        self.receipt = receipt
        self.seq = seq
    }

    public static func message(conversation: UInt32, seq: UInt64) -> Self { Self(conversation: conversation, seq: seq) }

    public static func receipt(conversation: UInt32, user: UInt32, kind: ReceiptKind, seq: UInt64) -> Self {
        precondition(user < 0x7FFF_FFFF, "user symbols fit 31 bits")
        return Self(conversation: conversation, receipt: (user + 1) | (kind == .read ? 0x8000_0000 : 0), seq: seq)
    }

    public var isMessage: Bool { receipt == 0 }
}

/// A user's inbox as plain state: `inboxSeq` starts at 1 and rises by exactly 1, entries are kept
/// by seq (coded, `InboxEntries`). Pure; the user's inbox assigns each entry on the log's
/// completion path (or in replay).
public struct InboxCore: Sendable {
    public private(set) var entries = InboxEntries()

    public init(entries: InboxEntries = InboxEntries()) { self.entries = entries }

    /// The newest `inboxSeq`, 0 when empty (what `hello` reports).
    public var lastSeq: UInt64 { UInt64(entries.count) }

    /// The seq the next entry takes.
    public var nextSeq: UInt64 { lastSeq + 1 }

    /// Applies a durable entry. Entries arrive in seq order; anything else is a broken invariant.
    public mutating func apply(seq: UInt64, _ entry: PackedInboxEntry) throws(InboxError) {
        guard seq == nextSeq else { throw .outOfOrder(expected: nextSeq, got: seq) }
        entries.append(entry)
    }

    /// Entries with `inboxSeq` > `after`, at most `limit`, in order.
    public func entries(after: UInt64, limit: Int) -> [(seq: UInt64, entry: PackedInboxEntry)] {
        guard after < lastSeq, limit > 0 else { return [] }
        let start = Int(after)
        let end = start + min(entries.count - start, limit)
        return entries[start..<end].enumerated().map { (UInt64(start + $0.offset + 1), $0.element) }
    }

    /// The inboxSeq of the newest entry that satisfies `match`, 0 if none.
    public func lastSeq(where match: (PackedInboxEntry) -> Bool) -> UInt64 {
        entries.last(where: match).map { UInt64($0.index + 1) } ?? 0
    }
}

public enum InboxError: Error, Equatable, Sendable {
    case outOfOrder(expected: UInt64, got: UInt64)
}
