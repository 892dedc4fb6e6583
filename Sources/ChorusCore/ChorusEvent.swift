
/// Every durable state change of a node. The log stores `kind` and `encode()`; replay calls `decode`.
/// Each payload starts with a version byte so an event's layout can grow.
public enum ChorusEvent: Sendable, Equatable {
    case userRegistered(UserRecord)
    case loggedIn(userId: String, at: Int64)
    case tokenIssued(tokenHash: [UInt8], userId: String, expiresAt: Int64)
    case tokenRevoked(tokenHash: [UInt8], at: Int64)
    case conversationCreated(conversationId: String, kind: ConversationKind, title: String, members: [String], createdAt: Int64)
    case memberAdded(conversationId: String, userId: String, at: Int64)
    case memberRemoved(conversationId: String, userId: String, at: Int64)
    case messageAppended(MessageRecord)
    /// A user read a conversation up to `seq`.
    case readUpTo(userId: String, conversationId: String, seq: UInt64)
    /// A user holds its inbox up to `inboxUpTo`; each item is a delivered receipt (the highest seq held
    /// in that conversation) for the listed senders' inboxes.
    case delivered(userId: String, inboxUpTo: UInt64, items: [DeliveredItem])
    /// Entry `inboxSeq` of a user's inbox: a message (`receiptFrom` nil) or a receipt from another member.
    case inboxAppended(userId: String, inboxSeq: UInt64, conversationId: String, seq: UInt64, receiptFrom: String?, receiptKind: UInt8)
    /// A membership change handed this user over to this node: it replaces whatever this node held
    /// of the user (account, tokens, an empty inbox that the `inboxAppended` records after it fill,
    /// and the newest delivered receipt sent to each member of another node, for reconciliation).
    case userHandedIn(UserRecord, lastLogin: Int64, tokens: [TokenRecord], delivered: [DeliveredItem])
    /// A conversation handed over to this node; replaces any older copy. Its messages follow as
    /// `messageHandedIn`; members' inboxes are not touched (they have their entries already).
    case conversationHandedIn(conversationId: String, kind: ConversationKind, title: String, members: [String], lastActivity: Int64, reads: [ReadPosition])
    /// A message of a handed-over conversation (the `messageAppended` layout).
    case messageHandedIn(MessageRecord)
    /// A re-engagement email is due for the period that started at `periodStart` (a login); its
    /// Message-ID is fixed here, for ever.
    case emailQueued(userId: String, periodStart: Int64, messageId: String, to: String, at: Int64)
    /// The mail server accepted it (or it was written to the outbox directory).
    case emailSent(messageId: String, at: Int64)
    /// The mail server refused it for good (5xx): not retried, the address is suppressed.
    case emailFailed(messageId: String, at: Int64, reason: String)
    /// The user asked for no more re-engagement email (one-click unsubscribe).
    case unsubscribed(userId: String, at: Int64)

    /// The record kind in the log.
    public var kind: UInt16 {
        switch self {
        case .userRegistered: 1
        case .loggedIn: 2
        case .tokenIssued: 3
        case .tokenRevoked: 4
        case .conversationCreated: 5
        case .memberAdded: 6
        case .memberRemoved: 7
        case .messageAppended: 8
        case .readUpTo: 9
        case .inboxAppended: 10
        case .delivered: 11
        case .userHandedIn: 12
        case .conversationHandedIn: 13
        case .messageHandedIn: 14
        case .emailQueued: 15
        case .emailSent: 16
        case .emailFailed: 17
        case .unsubscribed: 18
        }
    }
}

/// Why an event record could not be decoded (a bug or a newer format, never silently skipped).
public enum EventDecodingError: Error, Equatable, Sendable {
    case unknownKind(UInt16)
    case unsupportedVersion(kind: UInt16, version: UInt8)
    case malformed(kind: UInt16, ByteReaderError)
    case trailingBytes(kind: UInt16, count: Int)
    case invalidValue(kind: UInt16, String)
}

extension ChorusEvent {
    static let version: UInt8 = 1
    /// Bound on any string field (ids, names, bodies are far below it).
    static let stringBound = 16_384
    static let listBound = 100_000

    /// Bytes to reserve for `encode`: enough for a message in one allocation (the hot path).
    private var capacityHint: Int {
        switch self {
        case .messageAppended(let m), .messageHandedIn(let m):
            // Strings with their varint lengths, the seq twice (varint and in the id), ts, version.
            64 + 2 * m.conversationId.utf8.count + m.from.utf8.count + m.body.utf8.count + m.clientMsgId.utf8.count
        default: 96
        }
    }

    /// The compact binary payload (no JSON in the log).
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: capacityHint)
        w.write(Self.version)
        switch self {
        case .userRegistered(let u):
            Self.write(u, to: &w)
        case .loggedIn(let userId, let at):
            w.writeString(userId); w.write(at)
        case .tokenIssued(let hash, let userId, let expiresAt):
            w.writeLengthPrefixed(hash); w.writeString(userId); w.write(expiresAt)
        case .tokenRevoked(let hash, let at):
            w.writeLengthPrefixed(hash); w.write(at)
        case .conversationCreated(let id, let kind, let title, let members, let createdAt):
            Self.writeConversationHead(id, kind, title, members, to: &w)
            w.write(createdAt)
        case .memberAdded(let id, let userId, let at), .memberRemoved(let id, let userId, let at):
            w.writeString(id); w.writeString(userId); w.write(at)
        case .messageAppended(let m), .messageHandedIn(let m):
            w.writeString(m.conversationId); w.writeVarint(m.seq); w.writeString(m.conversationId, UInt8(ascii: ":"), m.seq)
            w.writeString(m.from); w.writeString(m.body); w.write(m.ts); w.writeString(m.clientMsgId)
        case .readUpTo(let userId, let id, let seq):
            w.writeString(userId); w.writeString(id); w.writeVarint(seq)
        case .delivered(let userId, let upTo, let items):
            w.writeString(userId); w.writeVarint(upTo)
            Self.write(items, to: &w)
        case .inboxAppended(let userId, let inboxSeq, let id, let seq, let from, let receiptKind):
            w.writeString(userId); w.writeVarint(inboxSeq); w.writeString(id); w.writeVarint(seq)
            w.write(from != nil)
            if let from { w.writeString(from); w.write(receiptKind) }
        case .userHandedIn(let u, let lastLogin, let tokens, let delivered):
            Self.write(u, to: &w); w.write(lastLogin)
            w.writeVarint(UInt64(tokens.count))
            for t in tokens { w.writeLengthPrefixed(t.hash); w.write(t.expiresAt) }
            Self.write(delivered, to: &w)
        case .emailQueued(let userId, let periodStart, let messageId, let to, let at):
            w.writeString(userId); w.write(periodStart); w.writeString(messageId); w.writeString(to); w.write(at)
        case .emailSent(let messageId, let at):
            w.writeString(messageId); w.write(at)
        case .emailFailed(let messageId, let at, let reason):
            w.writeString(messageId); w.write(at); w.writeString(reason)
        case .unsubscribed(let userId, let at):
            w.writeString(userId); w.write(at)
        case .conversationHandedIn(let id, let kind, let title, let members, let lastActivity, let reads):
            Self.writeConversationHead(id, kind, title, members, to: &w)
            w.write(lastActivity)
            w.writeVarint(UInt64(reads.count))
            for r in reads { w.writeString(r.userId); w.writeVarint(r.seq) }
        }
        return w.bytes
    }

    /// Decodes one record's payload; throws on anything but an exact, complete encoding.
    public static func decode(kind: UInt16, payload: [UInt8]) throws(EventDecodingError) -> ChorusEvent {
        var r = ByteReader(payload)
        let event: ChorusEvent
        do {
            let version = try r.readUInt8()
            guard version == Self.version else { throw EventDecodingError.unsupportedVersion(kind: kind, version: version) }
            func s() throws(ByteReaderError) -> String { try r.readString(bound: stringBound) }
            switch kind {
            case 1: event = .userRegistered(try Self.readUser(&r))
            case 2: event = .loggedIn(userId: try s(), at: try r.readInt64())
            case 3:
                event = .tokenIssued(
                    tokenHash: Array(try r.readLengthPrefixed(bound: 32)), userId: try s(), expiresAt: try r.readInt64())
            case 4: event = .tokenRevoked(tokenHash: Array(try r.readLengthPrefixed(bound: 32)), at: try r.readInt64())
            case 5:
                let (id, convKind, title, members) = try Self.readConversationHead(&r, kind: kind)
                event = .conversationCreated(conversationId: id, kind: convKind, title: title, members: members, createdAt: try r.readInt64())
            case 6: event = .memberAdded(conversationId: try s(), userId: try s(), at: try r.readInt64())
            case 7: event = .memberRemoved(conversationId: try s(), userId: try s(), at: try r.readInt64())
            case 8, 14:
                let conversationId = try s(), seq = try r.readVarint()
                _ = try s()  // the messageId, kept in the record's format; always conversationId:seq
                let m = MessageRecord(
                    conversationId: conversationId, seq: seq, from: try s(), body: try s(), ts: try r.readInt64(), clientMsgId: try s())
                event = kind == 8 ? .messageAppended(m) : .messageHandedIn(m)
            case 9: event = .readUpTo(userId: try s(), conversationId: try s(), seq: try r.readVarint())
            case 10:
                let userId = try s(), inboxSeq = try r.readVarint(), id = try s(), seq = try r.readVarint()
                let isReceipt = try r.readBool()
                let from = isReceipt ? try s() : nil
                let receiptKind = isReceipt ? try r.readUInt8() : 0
                event = .inboxAppended(userId: userId, inboxSeq: inboxSeq, conversationId: id, seq: seq, receiptFrom: from, receiptKind: receiptKind)
            case 11:
                let userId = try s(), upTo = try r.readVarint()
                event = .delivered(userId: userId, inboxUpTo: upTo, items: try Self.readDelivered(&r, kind: kind))
            case 12:
                let u = try Self.readUser(&r)
                let lastLogin = try r.readInt64()
                let count = try r.readVarint()
                guard count <= UInt64(listBound) else { throw EventDecodingError.invalidValue(kind: kind, "\(count) tokens") }
                var tokens: [TokenRecord] = []
                for _ in 0..<count { tokens.append(TokenRecord(hash: Array(try r.readLengthPrefixed(bound: 32)), expiresAt: try r.readInt64())) }
                event = .userHandedIn(u, lastLogin: lastLogin, tokens: tokens, delivered: try Self.readDelivered(&r, kind: kind))
            case 13:
                let (id, convKind, title, members) = try Self.readConversationHead(&r, kind: kind)
                let lastActivity = try r.readInt64()
                let readCount = try r.readVarint()
                guard readCount <= UInt64(listBound) else { throw EventDecodingError.invalidValue(kind: kind, "\(readCount) reads") }
                var reads: [ReadPosition] = []
                for _ in 0..<readCount { reads.append(ReadPosition(userId: try s(), seq: try r.readVarint())) }
                event = .conversationHandedIn(
                    conversationId: id, kind: convKind, title: title, members: members, lastActivity: lastActivity, reads: reads)
            case 15:
                event = .emailQueued(userId: try s(), periodStart: try r.readInt64(), messageId: try s(), to: try s(), at: try r.readInt64())
            case 16: event = .emailSent(messageId: try s(), at: try r.readInt64())
            case 17: event = .emailFailed(messageId: try s(), at: try r.readInt64(), reason: try s())
            case 18: event = .unsubscribed(userId: try s(), at: try r.readInt64())
            default: throw EventDecodingError.unknownKind(kind)
            }
        } catch let e as EventDecodingError {
            throw e
        } catch let e as ByteReaderError {
            throw .malformed(kind: kind, e)
        } catch {
            throw .invalidValue(kind: kind, "\(error)")
        }
        guard r.isAtEnd else { throw .trailingBytes(kind: kind, count: r.remaining) }
        return event
    }

    static func write(_ items: [DeliveredItem], to w: inout ByteWriter) {
        w.writeVarint(UInt64(items.count))
        for item in items {
            w.writeString(item.conversationId); w.writeVarint(item.seq); w.writeVarint(UInt64(item.recipients.count))
            for r in item.recipients { w.writeString(r) }
        }
    }

    static func readDelivered(_ r: inout ByteReader, kind: UInt16) throws -> [DeliveredItem] {
        let count = try r.readVarint()
        guard count <= UInt64(listBound) else { throw EventDecodingError.invalidValue(kind: kind, "\(count) items") }
        var items: [DeliveredItem] = []
        for _ in 0..<count {
            let id = try r.readString(bound: stringBound), seq = try r.readVarint(), n = try r.readVarint()
            guard n <= UInt64(listBound) else { throw EventDecodingError.invalidValue(kind: kind, "\(n) recipients") }
            var recipients: [String] = []
            for _ in 0..<n { recipients.append(try r.readString(bound: stringBound)) }
            items.append(DeliveredItem(conversationId: id, seq: seq, recipients: recipients))
        }
        return items
    }

    static func write(_ u: UserRecord, to w: inout ByteWriter) {
        w.writeString(u.userId); w.writeString(u.username); w.writeString(u.email)
        w.writeString(u.displayName); w.writeString(u.passwordHash); w.write(u.createdAt)
    }

    static func readUser(_ r: inout ByteReader) throws -> UserRecord {
        func s() throws -> String { try r.readString(bound: stringBound) }
        return UserRecord(
            userId: try s(), username: try s(), email: try s(), displayName: try s(), passwordHash: try s(), createdAt: try r.readInt64())
    }

    static func writeConversationHead(_ id: String, _ kind: ConversationKind, _ title: String, _ members: [String], to w: inout ByteWriter) {
        w.writeString(id); w.write(kind.rawValue); w.writeString(title)
        w.writeVarint(UInt64(members.count))
        for m in members { w.writeString(m) }
    }

    static func readConversationHead(_ r: inout ByteReader, kind: UInt16) throws -> (String, ConversationKind, String, [String]) {
        let id = try r.readString(bound: stringBound)
        let rawKind = try r.readUInt8()
        guard let convKind = ConversationKind(rawValue: rawKind) else {
            throw EventDecodingError.invalidValue(kind: kind, "conversation kind \(rawKind)")
        }
        let title = try r.readString(bound: stringBound)
        let count = try r.readVarint()
        guard count <= UInt64(listBound) else { throw EventDecodingError.invalidValue(kind: kind, "\(count) members") }
        var members: [String] = []
        for _ in 0..<count { members.append(try r.readString(bound: stringBound)) }
        return (id, convKind, title, members)
    }
}
