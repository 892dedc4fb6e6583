import ChorusCore
import ChorusPeer

/// The answering side of `EnginePeers`: what this node's engine does for other nodes (every
/// `EngineRequest`), and the reconciliation a peer gets when it becomes reachable.
public final class EnginePeerService: EngineRequestHandler {
    let conversations: Conversations
    let accounts: Accounts
    let writer: RemoteInboxWriter

    public init(conversations: Conversations, accounts: Accounts, writer: RemoteInboxWriter) {
        self.conversations = conversations
        self.accounts = accounts
        self.writer = writer
    }

    /// Runs on the receiving connection's loop, in arrival order: sends and inbox appends are
    /// handed on before this returns, so they keep the link's order.
    public func handle(_ request: EngineRequest, from peer: String, reply: @escaping PeerReplyHandler) {
        switch request {
        case .authenticate(let token):
            answer(reply) { [accounts] () async throws(ChatError) in .user(try await accounts.authenticate(token: token)) }
        case .send(let s):
            var request = SendRequest(from: s.from, clientMsgId: s.clientMsgId, body: s.body) { result in
                reply(result.map(PeerReply.sent))
            }
            request.originBits = s.origin
            conversations.submit(request, to: s.conversationId)
        case .messages(let id, let seqs):
            answer(reply) { [conversations] () async throws(ChatError) in .messages(await conversations.messages(id, seqs: seqs)) }
        case .direct(let creator, let other):
            answer(reply) { [conversations] () async throws(ChatError) in
                let (core, created) = try await conversations.create(by: creator, members: [other], title: nil)
                return .conversation(core.peerConversation, created: created)
            }
        case .read(let id, let user, let seq):
            answer(reply) { [conversations] () async throws(ChatError) in
                try await conversations.read(id, by: user, upTo: seq)
                return .done
            }
        case .inboxHigh(let keys):
            reply(.success(.seqs(keys.map { writer.highest(user: $0.userId, conversation: $0.conversationId) })))
        case .receiptHigh(let keys):
            reply(.success(.seqs(keys.map {
                writer.highest(like: RemoteInboxItem(userId: $0.userId, entry: .receipt(conversationId: $0.conversationId, from: $0.from, kind: $0.kind, seq: 0)))
            })))
        case .usersExist(let ids):
            answer(reply) { [accounts] () async throws(ChatError) in
                for id in ids where await accounts.user(id: id) == nil { return .allExist(false) }
                return .allExist(true)
            }
        case .sharing(let userId, let among):
            answer(reply) { [conversations] () async throws(ChatError) in .users(await conversations.sharing(userId, among: among)) }
        case .inboxAppend(let items):
            writer.append(items) { result in reply(result.map(PeerReply.seqs)) }
        }
    }

    /// Puts back what the peer's users may have missed while it was unreachable.
    public func peerReachable(_ peer: String) {
        Task { [conversations] in await conversations.reconcile(with: peer) }
    }

    private func answer(_ reply: @escaping PeerReplyHandler, _ work: @escaping @Sendable () async throws(ChatError) -> PeerReply) {
        Task {
            do throws(ChatError) { reply(.success(try await work())) } catch { reply(.failure(error)) }
        }
    }
}
