import ChorusCluster
import ChorusCore

/// How the engine reaches conversations and inboxes owned by other nodes (docs/CLUSTER.md): the
/// client side of each engine request, over the `PeerTransport` port. Payloads start with their
/// `PeerKind`; messages travel as their log encoding.
public struct EnginePeers: Sendable {
    public let placement: PlacementCell
    let transport: any PeerTransport

    public init(placement: PlacementCell, transport: any PeerTransport) {
        self.placement = placement
        self.transport = transport
    }

    /// A send to a conversation owned by `node`; `reply` gets the outcome (the sender's inboxSeq
    /// comes from the sender's owner, via the conversation's fan-out).
    func send(conversationId: String, _ r: SendRequest, to node: String) {
        var w = ByteWriter(capacity: 64 + r.body.utf8.count)
        w.write(PeerKind.conversationSend.rawValue)
        w.writeString(conversationId); w.writeString(r.from); w.writeString(r.clientMsgId); w.writeString(r.body)
        w.write(UserInbox.bits(r.origin))
        transport.request(w.bytes, to: node) { result in
            r.reply(result.flatMap { answer in
                PeerAnswer.decode(answer).flatMap { body in
                    var rd = ByteReader(Array(body))
                    guard let created = try? rd.readBool(), let seq = try? rd.readUInt64(), let m = try? Self.readMessage(&rd) else {
                        return .failure(.unavailable("malformed peer answer"))
                    }
                    return .success(SentMessage(message: m, inboxSeq: seq, created: created))
                }
            })
        }
    }

    func messages(conversationId: String, seqs: [UInt64], at node: String) async throws(ChatError) -> [MessageRecord] {
        var w = ByteWriter(capacity: 32 + seqs.count * 2)
        w.write(PeerKind.conversationMessages.rawValue)
        w.writeString(conversationId)
        w.writeVarint(UInt64(seqs.count))
        for s in seqs { w.writeVarint(s) }
        var r = ByteReader(Array(try PeerAnswer.decode(try await transport.request(w.bytes, to: node)).get()))
        do {
            let n = try r.readVarint()
            guard n <= UInt64(seqs.count) else { throw ChatError.unavailable("malformed peer answer") }
            var out: [MessageRecord] = []
            for _ in 0..<n { out.append(try Self.readMessage(&r)) }
            return out
        } catch {
            throw .unavailable("malformed peer answer")
        }
    }

    /// The pair's direct conversation, found or created by the pair's owner `node`.
    func direct(creator: String, other: String, at node: String) async throws(ChatError) -> (ConversationCore, created: Bool) {
        var w = ByteWriter(capacity: 48)
        w.write(PeerKind.conversationDirect.rawValue); w.writeString(creator); w.writeString(other)
        var r = ByteReader(Array(try PeerAnswer.decode(try await transport.request(w.bytes, to: node)).get()))
        guard let core = try? Self.readConversation(&r), let created = try? r.readBool() else { throw .unavailable("malformed peer answer") }
        return (core, created)
    }

    func read(conversationId: String, by userId: String, upTo seq: UInt64, at node: String) async throws(ChatError) {
        var w = ByteWriter(capacity: 48)
        w.write(PeerKind.conversationRead.rawValue); w.writeString(conversationId); w.writeString(userId); w.write(seq)
        _ = try PeerAnswer.decode(try await transport.request(w.bytes, to: node)).get()
    }

    func inboxHigh(_ members: [RemoteMember], at node: String) async throws(ChatError) -> [UInt64] {
        var w = ByteWriter(capacity: 16 + members.count * 32)
        w.write(PeerKind.inboxHigh.rawValue)
        w.writeVarint(UInt64(members.count))
        for m in members { w.writeString(m.userId); w.writeString(m.conversationId) }
        var r = ByteReader(Array(try PeerAnswer.decode(try await transport.request(w.bytes, to: node)).get()))
        var out: [UInt64] = []
        for _ in members {
            guard let v = try? r.readUInt64() else { throw .unavailable("malformed peer answer") }
            out.append(v)
        }
        return out
    }

    /// For each read receipt, the highest seq the user's inbox holds of that member's read receipts.
    func receiptHigh(_ receipts: [RemoteInboxItem], at node: String) async throws(ChatError) -> [UInt64] {
        var w = ByteWriter(capacity: 16 + receipts.count * 48)
        w.write(PeerKind.receiptHigh.rawValue)
        w.writeVarint(UInt64(receipts.count))
        for item in receipts {
            guard case .receipt(let c, let from, let kind, _) = item.entry else { continue }
            w.writeString(item.userId); w.writeString(c); w.writeString(from); w.write(kind.rawValue)
        }
        var r = ByteReader(Array(try PeerAnswer.decode(try await transport.request(w.bytes, to: node)).get()))
        var out: [UInt64] = []
        for _ in receipts {
            guard let v = try? r.readUInt64() else { throw .unavailable("malformed peer answer") }
            out.append(v)
        }
        return out
    }

    func usersExist(_ ids: [String], at node: String) async throws(ChatError) -> Bool {
        var w = ByteWriter(capacity: 16 + ids.count * 16)
        w.write(PeerKind.usersExist.rawValue)
        w.writeVarint(UInt64(ids.count))
        for id in ids { w.writeString(id) }
        var r = ByteReader(Array(try PeerAnswer.decode(try await transport.request(w.bytes, to: node)).get()))
        guard let all = try? r.readBool() else { throw .unavailable("malformed peer answer") }
        return all
    }

    /// Fan-out's transport: inbox entries for users `node` owns.
    public func appendInboxes(_ items: [RemoteInboxItem], to node: String, reply: @escaping @Sendable (Result<[UInt64], ChatError>) -> Void) {
        var w = ByteWriter(capacity: 16 + items.count * 128)
        w.write(PeerKind.inboxAppend.rawValue)
        w.writeVarint(UInt64(items.count))
        for item in items {
            w.writeString(item.userId)
            w.write(item.origin)
            switch item.entry {
            case .message(let m):
                w.write(UInt8(0))
                w.writeLengthPrefixed(ChorusEvent.messageAppended(m).encode())
            case .receipt(let c, let from, let kind, let seq):
                w.write(UInt8(1)); w.writeString(c); w.writeString(from); w.write(kind.rawValue); w.write(seq)
            }
        }
        transport.request(w.bytes, to: node) { result in
            reply(result.flatMap { answer in
                PeerAnswer.decode(answer).flatMap { body in
                    var r = ByteReader(Array(body))
                    var seqs: [UInt64] = []
                    for _ in items { guard let s = try? r.readUInt64() else { return .failure(.unavailable("malformed peer answer")) }; seqs.append(s) }
                    return .success(seqs)
                }
            })
        }
    }

    static func readItem(_ r: inout ByteReader) throws -> RemoteInboxItem {
        let user = try r.readString(bound: 256)
        let origin = try r.readUInt64()
        switch try r.readUInt8() {
        case 0: return RemoteInboxItem(userId: user, message: try readMessage(&r), origin: origin)
        case 1:
            let c = try r.readString(bound: 256)
            let from = try r.readString(bound: 256)
            guard let kind = ReceiptKind(rawValue: try r.readUInt8()) else { throw ChatError.badRequest("receipt kind") }
            return RemoteInboxItem(userId: user, entry: .receipt(conversationId: c, from: from, kind: kind, seq: try r.readUInt64()), origin: origin)
        default: throw ChatError.badRequest("inbox entry kind")
        }
    }

    static func writeMessage(_ m: MessageRecord, to w: inout ByteWriter) { w.writeLengthPrefixed(ChorusEvent.messageAppended(m).encode()) }

    static func readMessage(_ r: inout ByteReader) throws -> MessageRecord {
        guard case .messageAppended(let m) = try ChorusEvent.decode(kind: 8, payload: Array(try r.readLengthPrefixed(bound: 1 << 20))) else {
            throw ChatError.unavailable("not a message")
        }
        return m
    }

    static func writeConversation(_ c: ConversationCore, to w: inout ByteWriter) {
        w.writeString(c.id); w.write(c.kind.rawValue); w.writeString(c.title); w.write(c.lastActivity)
        w.writeVarint(UInt64(c.members.count))
        for m in c.members { w.writeString(m) }
    }

    static func readConversation(_ r: inout ByteReader) throws -> ConversationCore {
        let id = try r.readString(bound: 256)
        guard let kind = ConversationKind(rawValue: try r.readUInt8()) else { throw ChatError.unavailable("bad kind") }
        let title = try r.readString(bound: 4096)
        let createdAt = try r.readInt64()
        let n = try r.readVarint()
        guard n <= 100_000 else { throw ChatError.unavailable("too many members") }
        var members: [String] = []
        for _ in 0..<n { members.append(try r.readString(bound: 256)) }
        return ConversationCore(id: id, kind: kind, title: title, members: members, createdAt: createdAt)
    }
}
