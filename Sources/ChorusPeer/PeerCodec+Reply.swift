import ChorusCluster
import ChorusCore

extension PeerCodec {
    static func write(_ reply: PeerReply, to w: inout ByteWriter) {
        switch reply {
        case .done:
            w.write(PeerReplyTag.done.rawValue)
        case .user(let u):
            w.write(PeerReplyTag.user.rawValue)
            w.writeString(u.userId); w.writeString(u.username); w.writeString(u.email); w.writeString(u.displayName); w.write(u.createdAt)
        case .sent(let s):
            w.write(PeerReplyTag.sent.rawValue); w.write(s.created); w.write(s.inboxSeq); writeMessage(s.message, to: &w)
        case .messages(let ms):
            w.write(PeerReplyTag.messages.rawValue)
            w.writeList(ms) { writeMessage($1, to: &$0) }
        case .conversation(let c, let created):
            w.write(PeerReplyTag.conversation.rawValue)
            w.writeString(c.id); w.write(c.kind.rawValue); w.writeString(c.title); w.write(c.lastActivity)
            w.writeList(c.members) { $0.writeString($1) }
            w.write(created)
        case .seqs(let seqs):
            w.write(PeerReplyTag.seqs.rawValue)
            w.writeList(seqs) { $0.write($1) }
        case .allExist(let all):
            w.write(PeerReplyTag.allExist.rawValue); w.write(all)
        case .users(let ids):
            w.write(PeerReplyTag.users.rawValue)
            w.writeList(ids) { $0.writeString($1) }
        case .presence(let statuses):
            w.write(PeerReplyTag.presence.rawValue)
            w.writeList(statuses) { w, s in w.write(s.online); w.write(s.lastSeen) }
        case .http(let response):
            w.write(PeerReplyTag.http.rawValue)
            w.write(UInt16(clamping: response.status))
            writeHeaders(response.headers, to: &w)
            w.writeLengthPrefixed(response.body)
        case .info(let address):
            w.write(PeerReplyTag.info.rawValue); w.writeString(address)
        case .phase(let phase):
            w.write(PeerReplyTag.phase.rawValue)
            switch phase {
            case .idle: w.write(UInt8(0)); w.writeString("")
            case .transferring: w.write(UInt8(1)); w.writeString("")
            case .ready: w.write(UInt8(2)); w.writeString("")
            case .failed(let why): w.write(UInt8(3)); w.writeString(why)
            }
        case .fenced(let answer): write(answer, to: &w)
        case .replica(let reply): write(reply, to: &w)
        }
    }

    static func readReply(_ r: inout PeerReader) throws(PeerDecodingError) -> PeerReply {
        let byte = try r.u8()
        guard let tag = PeerReplyTag(rawValue: byte) else { throw .unknownKind(byte) }
        switch tag {
        case .done: return .done
        case .user:
            return .user(UserRecord(
                userId: try r.string(PeerBounds.id), username: try r.string(PeerBounds.id), email: try r.string(512),
                displayName: try r.string(1024), passwordHash: "", createdAt: try r.i64()))
        case .sent:
            let created = try r.bool()
            let inboxSeq = try r.u64()
            return .sent(SentMessage(message: try readMessage(&r), inboxSeq: inboxSeq, created: created))
        case .messages: return .messages(try r.list(PeerBounds.seqsAsked, readMessage))
        case .conversation:
            let id = try r.string(PeerBounds.id)
            let raw = try r.u8()
            guard let kind = ConversationKind(rawValue: raw) else { throw .invalid("conversation kind \(raw)") }
            let title = try r.string(PeerBounds.title)
            let last = try r.i64()
            let members = try r.list(PeerBounds.members) { (r: inout PeerReader) throws(PeerDecodingError) in try r.string(PeerBounds.id) }
            return .conversation(PeerConversation(id: id, kind: kind, title: title, lastActivity: last, members: members), created: try r.bool())
        case .seqs: return .seqs(try r.list(PeerBounds.replyNumbers) { (r: inout PeerReader) throws(PeerDecodingError) in try r.u64() })
        case .allExist: return .allExist(try r.bool())
        case .users: return .users(try r.list(PeerBounds.usersAsked) { (r: inout PeerReader) throws(PeerDecodingError) in try r.string(PeerBounds.id) })
        case .presence:
            return .presence(try r.list(PeerBounds.usersAsked) { (r: inout PeerReader) throws(PeerDecodingError) in
                PresenceStatus(online: try r.bool(), lastSeen: try r.i64())
            })
        case .http:
            let status = Int(try r.u16())
            let headers = try readHeaders(&r)
            return .http(ForwardedResponse(status: status, headers: headers, body: try r.bytes(PeerBounds.body)))
        case .info: return .info(httpAddress: try r.string(PeerBounds.address))
        case .phase:
            let code = try r.u8()
            let why = try r.string(PeerBounds.errorText)
            switch code {
            case 0: return .phase(.idle)
            case 1: return .phase(.transferring)
            case 2: return .phase(.ready)
            case 3: return .phase(.failed(why))
            default: throw .invalid("membership phase \(code)")
            }
        case .fenced: return .fenced(try readFenceAnswer(&r))
        case .replica: return .replica(try readReplicaReply(&r))
        }
    }
}
