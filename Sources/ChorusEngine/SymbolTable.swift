import ChorusCore

import Synchronization

/// Interns the ids inbox entries refer to (conversations, users) as dense 32-bit numbers, shared by
/// every inbox of the node. Grows with the number of distinct ids, never with the number of entries.
/// Thread-safe; numbers are assigned in first-use order and never reused.
public final class SymbolTable: Sendable {
    private struct Storage: ~Copyable {
        var strings: [String] = []
        var numbers: [String: UInt32] = [:]
    }

    private let storage = Mutex(Storage())

    public init(strings: [String] = []) {
        storage.withLock { s in
            s.strings = strings
            s.numbers.reserveCapacity(strings.count)
            for (i, string) in strings.enumerated() { s.numbers[string] = UInt32(i) }
        }
    }

    /// The number of `string`, assigned on first use.
    public func intern(_ string: String) -> UInt32 {
        storage.withLock { s in
            if let n = s.numbers[string] { return n }
            precondition(s.strings.count < 0x7FFF_FFFE, "symbol table full")
            let n = UInt32(s.strings.count)
            s.strings.append(string)
            s.numbers[string] = n
            return n
        }
    }

    public func string(_ number: UInt32) -> String { storage.withLock { $0.strings[Int(number)] } }

    /// Every string in number order (for snapshots).
    public var strings: [String] { storage.withLock { $0.strings } }

    /// Resolves packed entries under one lock.
    public func unpack(_ packed: [(seq: UInt64, entry: PackedInboxEntry)]) -> [(seq: UInt64, entry: InboxEntry)] {
        storage.withLock { s in
            packed.map { p in
                let id = s.strings[Int(p.entry.conversation)]
                guard !p.entry.isMessage else { return (p.seq, .message(conversationId: id, seq: p.entry.seq)) }
                let user = s.strings[Int(p.entry.receipt & 0x7FFF_FFFF) - 1]
                let kind: ReceiptKind = p.entry.receipt & 0x8000_0000 != 0 ? .read : .delivered
                return (p.seq, .receipt(conversationId: id, userId: user, kind: kind, seq: p.entry.seq))
            }
        }
    }

    public func pack(_ entry: InboxEntry) -> PackedInboxEntry {
        switch entry {
        case .message(let id, let seq): return .message(conversation: intern(id), seq: seq)
        case .receipt(let id, let user, let kind, let seq):
            return .receipt(conversation: intern(id), user: intern(user), kind: kind, seq: seq)
        }
    }
}
