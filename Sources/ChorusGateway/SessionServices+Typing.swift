import ChorusCore
import ChorusEngine

extension SessionServices {
    /// `typing` from a session of `userId` (on its owner): relayed by the conversation's node to the
    /// other members' sessions, on their owners. Ephemeral: nothing is logged, a lost one is lost.
    /// The refusal (`not_member`, `unknown_conversation`, `unavailable`) comes back as on one node.
    func typing(in conversationId: String, by userId: String) async -> ChatError? {
        if let cluster, !cluster.placement.isLocal(conversation: conversationId) {
            do throws(ChatError) {
                let reply = try await cluster.client.call(
                    .session(.typing(conversationId: conversationId, userId: userId)), to: cluster.placement.owner(ofConversation: conversationId))
                guard case .done = reply else { return .unavailable("unexpected peer reply") }
                return nil
            } catch {
                return error
            }
        }
        let core: ConversationCore
        do { core = try conversations.core(conversationId) } catch { return error }
        guard core.isMember(userId) else { return .notMember }
        let frame = ServerFrame.typing(conversationId: conversationId, userId: userId)
        var remote: [String: [String]] = [:]
        for member in core.members where member != userId {
            if let cluster, !cluster.placement.isLocal(user: member) {
                remote[cluster.placement.owner(ofUser: member), default: []].append(member)
            } else {
                for s in registry.sessions(of: member) { s.sendFromAnyThread(frame) }
            }
        }
        if let cluster {
            for (node, users) in remote { cluster.client.tell(.userPush(users: users, frame: frame), to: node) }
        }
        return nil
    }
}
