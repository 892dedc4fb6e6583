import ChorusCore

/// The newest delivered receipt each user of this node sent to each member of another node, per
/// conversation: what reconciliation re-sends when a receipt was lost with a restart (the fan-out
/// queue lives in memory). Plain state; one entry per user, conversation and remote sender.
public struct DeliveredLedger: Sendable, Equatable {
    /// user -> conversation -> recipient -> seq.
    public private(set) var byUser: [String: [String: [String: UInt64]]] = [:]

    public init() {}

    /// Records a claim's receipts to the recipients `remote` selects (seqs only rise).
    public mutating func note(_ userId: String, _ items: [DeliveredItem], remote: (String) -> Bool) {
        for item in items {
            for r in item.recipients where remote(r) {
                let old = byUser[userId]?[item.conversationId]?[r] ?? 0
                if item.seq > old { byUser[userId, default: [:]][item.conversationId, default: [:]][r] = item.seq }
            }
        }
    }

    /// A user's receipts as `DeliveredItem`s (one per conversation and seq), for a hand-over.
    public func items(of userId: String) -> [DeliveredItem] {
        (byUser[userId] ?? [:]).sorted { $0.key < $1.key }.flatMap { conversation, recipients in
            Dictionary(grouping: recipients, by: \.value).sorted { $0.key < $1.key }.map { seq, pairs in
                DeliveredItem(conversationId: conversation, seq: seq, recipients: pairs.map(\.key).sorted())
            }
        }
    }

    /// Replaces a user's receipts (a hand-over brought them).
    public mutating func replace(_ userId: String, with items: [DeliveredItem]) {
        byUser[userId] = nil
        note(userId, items, remote: { _ in true })
    }

    /// Drops the users `gone` selects (handed to another node).
    public mutating func forget(where gone: (String) -> Bool) {
        for user in byUser.keys where gone(user) { byUser[user] = nil }
    }

    /// Merges another ledger's users in (received in a hand-over), replacing theirs.
    public mutating func adopt(_ other: DeliveredLedger) {
        for (user, conversations) in other.byUser { byUser[user] = conversations }
    }

    /// Receipts to recipients `owned` selects: (recipient, conversation, from, seq).
    public func receipts(to owned: (String) -> Bool) -> [(recipient: String, conversationId: String, from: String, seq: UInt64)] {
        var out: [(String, String, String, UInt64)] = []
        for (user, conversations) in byUser {
            for (conversation, recipients) in conversations {
                for (r, seq) in recipients where owned(r) { out.append((r, conversation, user, seq)) }
            }
        }
        return out
    }

    /// Binary form (engine snapshots).
    func encode(into w: inout ByteWriter) {
        w.writeVarint(UInt64(byUser.count))
        for (user, conversations) in byUser.sorted(by: { $0.key < $1.key }) {
            w.writeString(user)
            w.writeVarint(UInt64(conversations.count))
            for (conversation, recipients) in conversations.sorted(by: { $0.key < $1.key }) {
                w.writeString(conversation)
                w.writeVarint(UInt64(recipients.count))
                for (r, seq) in recipients.sorted(by: { $0.key < $1.key }) {
                    w.writeString(r)
                    w.writeVarint(seq)
                }
            }
        }
    }

    static func decode(from r: inout ByteReader, bound: Int) throws -> DeliveredLedger {
        var ledger = DeliveredLedger()
        let users = try r.readVarint()
        guard users <= UInt64(bound) else { throw EngineSnapshotError.invalid("\(users) delivered ledgers") }
        for _ in 0..<users {
            let user = try r.readString(bound: 256)
            let conversations = try r.readVarint()
            guard conversations <= UInt64(bound) else { throw EngineSnapshotError.invalid("\(conversations) conversations") }
            var byConversation: [String: [String: UInt64]] = [:]
            for _ in 0..<conversations {
                let conversation = try r.readString(bound: 256)
                let count = try r.readVarint()
                guard count <= UInt64(bound) else { throw EngineSnapshotError.invalid("\(count) recipients") }
                var recipients: [String: UInt64] = [:]
                for _ in 0..<count { recipients[try r.readString(bound: 256)] = try r.readVarint() }
                byConversation[conversation] = recipients
            }
            ledger.byUser[user] = byConversation
        }
        return ledger
    }
}
