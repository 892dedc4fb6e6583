import ChorusCluster
import ChorusCore
import ChorusPeer

/// How the engine reaches conversations and inboxes owned by other nodes (docs/CLUSTER.md): the
/// asking side of each `EngineRequest`. `EnginePeerService` is the answering side.
public struct EnginePeers: Sendable {
    public let placement: PlacementCell
    let client: PeerClient

    public init(placement: PlacementCell, client: PeerClient) {
        self.placement = placement
        self.client = client
    }

    /// A send to a conversation owned by `node`; `reply` gets the outcome (the sender's inboxSeq
    /// comes from the sender's owner, via the conversation's fan-out).
    func send(conversationId: String, _ r: SendRequest, to node: String) {
        let send = PeerSend(conversationId: conversationId, from: r.from, clientMsgId: r.clientMsgId, body: r.body, origin: UserInbox.bits(r.origin))
        client.call(.engine(.send(send)), to: node) { result in
            r.reply(result.flatMap { reply in
                guard case .sent(let sent) = reply else { return .failure(PeerReply.unexpected(reply)) }
                return .success(sent)
            })
        }
    }

    func messages(conversationId: String, seqs: [UInt64], at node: String) async throws(ChatError) -> [MessageRecord] {
        let reply = try await client.call(.engine(.messages(conversationId: conversationId, seqs: seqs)), to: node)
        guard case .messages(let found) = reply, found.count <= seqs.count else { throw PeerReply.unexpected(reply) }
        return found
    }

    /// The pair's direct conversation, found or created by the pair's owner `node`.
    func direct(creator: String, other: String, at node: String) async throws(ChatError) -> (ConversationCore, created: Bool) {
        let reply = try await client.call(.engine(.direct(creator: creator, other: other)), to: node)
        guard case .conversation(let c, let created) = reply else { throw PeerReply.unexpected(reply) }
        return (ConversationCore(id: c.id, kind: c.kind, title: c.title, members: c.members, createdAt: c.lastActivity), created)
    }

    func read(conversationId: String, by userId: String, upTo seq: UInt64, at node: String) async throws(ChatError) {
        let reply = try await client.call(.engine(.read(conversationId: conversationId, userId: userId, upTo: seq)), to: node)
        guard case .done = reply else { throw PeerReply.unexpected(reply) }
    }

    func inboxHigh(_ members: [RemoteMember], at node: String) async throws(ChatError) -> [UInt64] {
        let keys = members.map { PeerInboxKey(userId: $0.userId, conversationId: $0.conversationId) }
        return try await seqs(.inboxHigh(keys), count: keys.count, at: node)
    }

    /// For each read receipt, the highest seq the user's inbox holds of that member's read receipts.
    func receiptHigh(_ receipts: [RemoteInboxItem], at node: String) async throws(ChatError) -> [UInt64] {
        let keys = receipts.compactMap { item -> PeerReceiptKey? in
            guard case .receipt(let c, let from, let kind, _) = item.entry else { return nil }
            return PeerReceiptKey(userId: item.userId, conversationId: c, from: from, kind: kind)
        }
        return try await seqs(.receiptHigh(keys), count: keys.count, at: node)
    }

    private func seqs(_ request: EngineRequest, count: Int, at node: String) async throws(ChatError) -> [UInt64] {
        let reply = try await client.call(.engine(request), to: node)
        guard case .seqs(let out) = reply, out.count == count else { throw PeerReply.unexpected(reply) }
        return out
    }

    func sharing(_ userId: String, among: [String], at node: String) async throws(ChatError) -> [String] {
        let reply = try await client.call(.engine(.sharing(userId: userId, among: among)), to: node)
        guard case .users(let ids) = reply else { throw PeerReply.unexpected(reply) }
        return ids
    }

    func usersExist(_ ids: [String], at node: String) async throws(ChatError) -> Bool {
        let reply = try await client.call(.engine(.usersExist(ids)), to: node)
        guard case .allExist(let all) = reply else { throw PeerReply.unexpected(reply) }
        return all
    }

    /// Fan-out's transport: inbox entries for users `node` owns.
    public func appendInboxes(_ items: [RemoteInboxItem], to node: String, reply: @escaping @Sendable (Result<[UInt64], ChatError>) -> Void) {
        client.call(.engine(.inboxAppend(items)), to: node) { result in
            reply(result.flatMap { answer in
                guard case .seqs(let seqs) = answer, seqs.count == items.count else { return .failure(PeerReply.unexpected(answer)) }
                return .success(seqs)
            })
        }
    }
}

extension ConversationCore {
    var peerConversation: PeerConversation {
        PeerConversation(id: id, kind: kind, title: title, lastActivity: lastActivity, members: members)
    }
}
