import ChorusCore
import ChorusEngine
import Foundation

/// A frame a client may send (PROTOCOL.md section 3), decoded and validated. Pure: no NIO.
public enum ClientFrame: Equatable, Sendable {
    case send(clientMsgId: String, target: SendTarget, body: String)
    case sync(after: UInt64)
    case received(upTo: UInt64)
    case read(conversationId: String, seq: UInt64)
    case typing(conversationId: String)
    case watch(userIds: [String])
    case ping

    public enum SendTarget: Equatable, Sendable {
        case user(String)
        case conversation(String)
    }
}

/// Why a frame was refused: becomes `{"type":"error","code":"bad_frame",...}` (with `ref` when known).
public struct FrameError: Error, Equatable, Sendable {
    public var message: String
    public var ref: String?
}

public enum ClientFrameCodec {
    /// Bound on `watch` lists.
    public static let maxWatch = 1000

    /// Decodes one text frame's bytes. Unknown fields are ignored; a missing or mistyped field is named.
    public static func decode(_ bytes: [UInt8]) -> Result<ClientFrame, FrameError> {
        let data = Data(bytes)
        let decoder = JSONDecoder()
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            return .failure(FrameError(message: "frame is not a JSON object"))
        }
        let head: Head
        do { head = try decoder.decode(Head.self, from: data) } catch { return .failure(describe(error, ref: nil)) }
        guard let type = head.type else { return .failure(FrameError(message: "missing field 'type'")) }
        do {
            switch type {
            case "send":
                let f = try decoder.decode(Send.self, from: data)
                if let to = f.to { return .success(.send(clientMsgId: f.clientMsgId, target: .user(to), body: f.body)) }
                guard let id = f.conversationId else {
                    return .failure(FrameError(message: "missing field 'to' or 'conversationId'", ref: f.clientMsgId))
                }
                return .success(.send(clientMsgId: f.clientMsgId, target: .conversation(id), body: f.body))
            case "sync": return .success(.sync(after: try decoder.decode(Sync.self, from: data).after))
            case "received": return .success(.received(upTo: try decoder.decode(Received.self, from: data).upTo))
            case "read":
                let f = try decoder.decode(Read.self, from: data)
                return .success(.read(conversationId: f.conversationId, seq: f.seq))
            case "typing": return .success(.typing(conversationId: try decoder.decode(Typing.self, from: data).conversationId))
            case "watch":
                let f = try decoder.decode(Watch.self, from: data)
                guard f.userIds.count <= maxWatch else { return .failure(FrameError(message: "field 'userIds' holds at most \(maxWatch) ids")) }
                return .success(.watch(userIds: f.userIds))
            case "ping": return .success(.ping)
            default: return .failure(FrameError(message: "unknown type '\(type)'", ref: head.clientMsgId))
            }
        } catch {
            return .failure(describe(error, ref: head.clientMsgId))
        }
    }

    private struct Head: Decodable {
        var type: String?
        var clientMsgId: String?

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decodeIfPresent(String.self, forKey: .type)
            clientMsgId = try? c.decodeIfPresent(String.self, forKey: .clientMsgId)
        }

        enum CodingKeys: String, CodingKey { case type, clientMsgId }
    }

    private struct Send: Decodable { var clientMsgId: String; var body: String; var to: String?; var conversationId: String? }
    private struct Sync: Decodable { var after: UInt64 }
    private struct Received: Decodable { var upTo: UInt64 }
    private struct Read: Decodable { var conversationId: String; var seq: UInt64 }
    private struct Typing: Decodable { var conversationId: String }
    private struct Watch: Decodable { var userIds: [String] }

    /// Names the field a decoding error is about.
    private static func describe(_ error: any Error, ref: String?) -> FrameError {
        switch error {
        case DecodingError.keyNotFound(let key, _):
            return FrameError(message: "missing field '\(key.stringValue)'", ref: ref)
        case DecodingError.typeMismatch(let type, let context), DecodingError.valueNotFound(let type, let context):
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return FrameError(message: "field '\(field)' must be \(type == UInt64.self ? "a non-negative integer" : "\(type)".lowercased())", ref: ref)
        case DecodingError.dataCorrupted(let context):
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return FrameError(message: field.isEmpty ? "frame is not valid JSON" : "field '\(field)' is out of range", ref: ref)
        default:
            return FrameError(message: "frame could not be decoded", ref: ref)
        }
    }
}

/// Server frames as JSON text.
public enum ServerFrame {
    public static func encode(_ object: [String: Any]) -> [UInt8] {
        [UInt8]((try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8))
    }

    public static func hello(userId: String, sessionId: String, inboxSeq: UInt64, heartbeatMs: Int) -> [UInt8] {
        encode(["type": "hello", "userId": userId, "sessionId": sessionId, "inboxSeq": inboxSeq, "heartbeatMs": heartbeatMs])
    }

    public static func message(_ m: MessageRecord, inboxSeq: UInt64) -> [UInt8] {
        encode(["type": "message", "inboxSeq": inboxSeq, "conversationId": m.conversationId, "seq": m.seq, "messageId": m.messageId,
                "from": m.from, "body": m.body, "ts": m.ts, "clientMsgId": m.clientMsgId])
    }

    public static func receipt(_ entry: InboxEntry, inboxSeq: UInt64) -> [UInt8] {
        guard case .receipt(let conversationId, let userId, let kind, let seq) = entry else { return [] }
        return encode(["type": "receipt", "inboxSeq": inboxSeq, "conversationId": conversationId, "userId": userId,
                       "kind": kind.name, "seq": seq])
    }

    public static func ack(_ m: MessageRecord, inboxSeq: UInt64) -> [UInt8] {
        encode(["type": "ack", "clientMsgId": m.clientMsgId, "conversationId": m.conversationId, "seq": m.seq,
                "messageId": m.messageId, "ts": m.ts, "inboxSeq": inboxSeq])
    }

    public static func error(code: String, message: String, ref: String? = nil, retryAfterMs: Int? = nil) -> [UInt8] {
        var o: [String: Any] = ["type": "error", "code": code, "message": message]
        if let ref { o["ref"] = ref }
        if let retryAfterMs { o["retryAfterMs"] = retryAfterMs }
        return encode(o)
    }

    public static func error(_ e: ChatError, ref: String? = nil) -> [UInt8] {
        var retry: Int?
        if case .rateLimited(let ms) = e { retry = ms }
        return error(code: e.code, message: e.message, ref: ref, retryAfterMs: retry)
    }
}
