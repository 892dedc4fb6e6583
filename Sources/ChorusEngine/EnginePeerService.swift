import ChorusCore

/// The server side of `EnginePeers`: what this node does for the others' engines. Answers are
/// `PeerAnswer`s; a malformed request is `bad_request`.
public final class EnginePeerService: Sendable {
    let conversations: Conversations
    let accounts: Accounts
    let writer: RemoteInboxWriter

    public init(conversations: Conversations, accounts: Accounts, writer: RemoteInboxWriter) {
        self.conversations = conversations
        self.accounts = accounts
        self.writer = writer
    }

    /// Handles `kind` (16...20); false if it is not an engine request. Must be called on the
    /// receiving connection's loop, in arrival order (inbox appends rely on it).
    public func handle(_ kind: PeerKind, _ r: inout ByteReader, reply: @escaping @Sendable (Result<[UInt8], ChatError>) -> Void) -> Bool {
        let bad: @Sendable () -> Void = { reply(.success(PeerAnswer.failure(.badRequest("malformed peer request")))) }
        switch kind {
        case .conversationSend:
            guard let id = try? r.readString(bound: 256), let from = try? r.readString(bound: 256),
                let clientMsgId = try? r.readString(bound: 1024), let body = try? r.readString(bound: 1 << 20), let origin = try? r.readUInt64()
            else { bad(); return true }
            var request = SendRequest(from: from, clientMsgId: clientMsgId, body: body) { result in
                switch result {
                case .success(let sent):
                    var w = ByteWriter(capacity: 96 + sent.message.body.utf8.count)
                    w.write(sent.created); w.write(sent.inboxSeq)
                    EnginePeers.writeMessage(sent.message, to: &w)
                    reply(.success(PeerAnswer.ok(w.bytes)))
                case .failure(let e):
                    reply(.success(PeerAnswer.failure(e)))
                }
            }
            request.originBits = origin
            conversations.submit(request, to: id)
        case .conversationMessages:
            guard let id = try? r.readString(bound: 256), let n = try? r.readVarint(), n <= 4096 else { bad(); return true }
            var seqs: [UInt64] = []
            for _ in 0..<n {
                guard let s = try? r.readVarint() else { bad(); return true }
                seqs.append(s)
            }
            Task {
                let found = await conversations.messages(id, seqs: seqs)
                var w = ByteWriter(capacity: 64 + found.count * 128)
                w.writeVarint(UInt64(found.count))
                for m in found { EnginePeers.writeMessage(m, to: &w) }
                reply(.success(PeerAnswer.ok(w.bytes)))
            }
        case .conversationDirect:
            guard let creator = try? r.readString(bound: 256), let other = try? r.readString(bound: 256) else { bad(); return true }
            Task {
                do throws(ChatError) {
                    let (core, created) = try await conversations.create(by: creator, members: [other], title: nil)
                    var w = ByteWriter(capacity: 96)
                    EnginePeers.writeConversation(core, to: &w)
                    w.write(created)
                    reply(.success(PeerAnswer.ok(w.bytes)))
                } catch {
                    reply(.success(PeerAnswer.failure(error)))
                }
            }
        case .conversationRead:
            guard let id = try? r.readString(bound: 256), let user = try? r.readString(bound: 256), let seq = try? r.readUInt64() else {
                bad(); return true
            }
            Task {
                do throws(ChatError) {
                    try await conversations.read(id, by: user, upTo: seq)
                    reply(.success(PeerAnswer.ok()))
                } catch {
                    reply(.success(PeerAnswer.failure(error)))
                }
            }
        case .inboxHigh:
            guard let n = try? r.readVarint(), n <= 20_000 else { bad(); return true }
            var w = ByteWriter(capacity: Int(n) * 8)
            for _ in 0..<n {
                guard let user = try? r.readString(bound: 256), let c = try? r.readString(bound: 256) else { bad(); return true }
                w.write(writer.highest(user: user, conversation: c))
            }
            reply(.success(PeerAnswer.ok(w.bytes)))
        case .receiptHigh:
            guard let n = try? r.readVarint(), n <= 20_000 else { bad(); return true }
            var w = ByteWriter(capacity: Int(n) * 8)
            for _ in 0..<n {
                guard let user = try? r.readString(bound: 256), let c = try? r.readString(bound: 256), let from = try? r.readString(bound: 256),
                    let raw = try? r.readUInt8(), let kind = ReceiptKind(rawValue: raw)
                else {
                    bad(); return true
                }
                w.write(writer.highest(like: RemoteInboxItem(userId: user, entry: .receipt(conversationId: c, from: from, kind: kind, seq: 0))))
            }
            reply(.success(PeerAnswer.ok(w.bytes)))
        case .usersExist:
            guard let n = try? r.readVarint(), n <= 1000 else { bad(); return true }
            var ids: [String] = []
            for _ in 0..<n {
                guard let id = try? r.readString(bound: 256) else { bad(); return true }
                ids.append(id)
            }
            Task {
                var all = true
                for id in ids where await accounts.user(id: id) == nil { all = false }
                var w = ByteWriter(capacity: 1)
                w.write(all)
                reply(.success(PeerAnswer.ok(w.bytes)))
            }
        case .inboxAppend:
            guard let n = try? r.readVarint(), n <= 100_000 else { bad(); return true }
            var items: [RemoteInboxItem] = []
            for _ in 0..<n {
                guard let item = try? EnginePeers.readItem(&r) else { bad(); return true }
                items.append(item)
            }
            writer.append(items) { result in
                switch result {
                case .success(let seqs):
                    var w = ByteWriter(capacity: seqs.count * 8)
                    for s in seqs { w.write(s) }
                    reply(.success(PeerAnswer.ok(w.bytes)))
                case .failure(let e):
                    reply(.success(PeerAnswer.failure(e)))
                }
            }
        default:
            return false
        }
        return true
    }
}
