import ChorusCore
import ChorusEngine
import Foundation

/// The `/v1/conversations...` routes.
extension APIRouter {
    func routeConversations(_ route: APIRoute, _ parameters: [String], _ r: APIRequest, user: UserRecord) async throws(ChatError) -> APIResponse {
        switch route {
        case .createConversation:
            let body = try r.jsonObject()
            let (core, created) = try await conversations.create(
                by: user.userId, members: try body.stringArray("members"), title: try body.optionalString("title"))
            return .json(created ? 201 : 200, await json(core, for: user.userId))
        case .listConversations:
            var list = await conversations.list(for: user.userId)
            list.sort { ($0.lastActivity, $0.id) > ($1.lastActivity, $1.id) }
            var out: [[String: Any]] = []
            for core in list { out.append(await json(core, for: user.userId)) }
            return .json(200, ["conversations": out])
        case .getConversation:
            let core = try conversations.core(parameters[0])
            guard core.isMember(user.userId) else { throw .notMember }
            return .json(200, await json(core, for: user.userId))
        case .addMember:
            let body = try r.jsonObject()
            let core = try await conversations.changeMember(parameters[0], userId: try body.string("userId"), add: true, by: user.userId)
            return .json(200, await json(core, for: user.userId))
        case .removeMember:
            let core = try await conversations.changeMember(parameters[0], userId: parameters[1], add: false, by: user.userId)
            return .json(200, await json(core, for: user.userId))
        case .history:
            let actor = try conversations.conversation(parameters[0])
            let limit = try Self.intParameter(r, "limit", default: 50, range: 1...200)
            let before = try Self.seqParameter(r, "before")
            let after = try Self.seqParameter(r, "after")
            if before != nil && after != nil { throw .badRequest("use either before or after, not both") }
            let page = try await actor.history(for: user.userId, before: before, after: after, limit: limit)
            return .json(200, ["messages": page.messages.map(Self.json), "hasMore": page.hasMore])
        case .postMessage:
            // Runs on the sender's owner (ClusterGateway.executor), where its one send bucket lives.
            let body = try r.jsonObject()
            let clientMsgId = try body.string("clientMsgId"), text = try body.string("body")
            if case .limited(let ms)? = userSends?.take(user.userId, nowMs: clock.nowMs()) {
                metrics.rateLimited.increment()
                throw .rateLimited(retryAfterMs: ms)
            }
            let sent = try await conversations.send(to: parameters[0], from: user.userId, clientMsgId: clientMsgId, body: text)
            if sent.created { metrics.messagesAccepted.increment() }
            return .json(sent.created ? 201 : 200, Self.json(sent.message))
        default:
            return .error(404, code: "not_found", message: "no such endpoint: \(r.method) \(r.path)")
        }
    }

    func json(_ c: ConversationCore, for userId: String) async -> [String: Any] {
        var out: [String: Any] = [
            "conversationId": c.id, "kind": c.kind.name, "title": c.title, "members": c.members, "lastSeq": c.lastSeq,
            "unread": c.unread(for: userId), "owner": c.owner ?? NSNull(),
        ]
        if let m = c.lastMessage { out["lastMessage"] = Self.json(m) }
        return out
    }

    static func json(_ m: MessageRecord) -> [String: Any] {
        ["conversationId": m.conversationId, "seq": m.seq, "messageId": m.messageId, "from": m.from, "body": m.body, "ts": m.ts,
         "clientMsgId": m.clientMsgId]
    }

    static func intParameter(_ r: APIRequest, _ name: String, default value: Int, range: ClosedRange<Int>) throws(ChatError) -> Int {
        guard let text = r.query[name] else { return value }
        guard let n = Int(text), range.contains(n) else { throw .badRequest("\(name) must be \(range.lowerBound) to \(range.upperBound)") }
        return n
    }

    static func seqParameter(_ r: APIRequest, _ name: String) throws(ChatError) -> UInt64? {
        guard let text = r.query[name] else { return nil }
        guard let n = UInt64(text) else { throw .badRequest("\(name) must be a non-negative integer") }
        return n
    }
}
