import ChorusCore
import ChorusEngine

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

    public init(message: String, ref: String? = nil) {
        self.message = message
        self.ref = ref
    }
}

public enum ClientFrameCodec {
    /// Bound on `watch` lists.
    public static let maxWatch = 1000

    /// The clientMsgId of a `send` frame, if the bytes are one (for errors about frames not decoded).
    public static func clientMsgId(in bytes: [UInt8]) -> String? {
        guard let o = Members(bytes), o.string("type") == "send" else { return nil }
        return o.string("clientMsgId")
    }

    /// The members a client frame may have, read into fields of their own (no dictionary, no hashing:
    /// a frame has a handful). Unknown members are validated and skipped; a repeated one, the last wins
    /// (as in a dictionary).
    struct Members {
        var type, clientMsgId, to, conversationId, body, after, upTo, seq, userIds: FlatJSON.Value?

        init?(_ bytes: [UInt8]) {
            var m = Members()
            guard FlatJSON.forEachMember(bytes, { m[$0] = $1 }) else { return nil }
            self = m
        }

        private init() {}

        subscript(name: String) -> FlatJSON.Value? {
            get {
                switch name {
                case "type": type
                case "clientMsgId": clientMsgId
                case "to": to
                case "conversationId": conversationId
                case "body": body
                case "after": after
                case "upTo": upTo
                case "seq": seq
                case "userIds": userIds
                default: nil
                }
            }
            set {
                switch name {
                case "type": type = newValue
                case "clientMsgId": clientMsgId = newValue
                case "to": to = newValue
                case "conversationId": conversationId = newValue
                case "body": body = newValue
                case "after": after = newValue
                case "upTo": upTo = newValue
                case "seq": seq = newValue
                case "userIds": userIds = newValue
                default: break
                }
            }
        }

        func string(_ name: String) -> String? {
            if case .string(let s)? = self[name] { return s }
            return nil
        }
    }

    /// Decodes one text frame's bytes. Unknown fields are ignored; a missing or mistyped field is named.
    public static func decode(_ bytes: [UInt8]) -> Result<ClientFrame, FrameError> {
        guard let o = Members(bytes) else { return .failure(FrameError(message: "frame is not a JSON object")) }
        let ref = o.string("clientMsgId")
        let fields = Fields(object: o, ref: ref)
        do {
            guard o["type"] != nil else { throw FrameError(message: "missing field 'type'") }
            let type = try fields.string("type")
            switch type {
            case "send":
                let clientMsgId = try fields.string("clientMsgId")
                let body = try fields.string("body")
                if o["to"] != nil { return .success(.send(clientMsgId: clientMsgId, target: .user(try fields.string("to")), body: body)) }
                guard o["conversationId"] != nil else { throw FrameError(message: "missing field 'to' or 'conversationId'", ref: ref) }
                return .success(.send(clientMsgId: clientMsgId, target: .conversation(try fields.string("conversationId")), body: body))
            case "sync": return .success(.sync(after: try fields.count("after")))
            case "received": return .success(.received(upTo: try fields.count("upTo")))
            case "read": return .success(.read(conversationId: try fields.string("conversationId"), seq: try fields.count("seq")))
            case "typing": return .success(.typing(conversationId: try fields.string("conversationId")))
            case "watch":
                let ids = try fields.strings("userIds")
                guard ids.count <= maxWatch else { throw FrameError(message: "field 'userIds' holds at most \(maxWatch) ids") }
                return .success(.watch(userIds: ids))
            case "ping": return .success(.ping)
            default: throw FrameError(message: "unknown type '\(type)'", ref: ref)
            }
        } catch let error as FrameError {
            return .failure(error)
        } catch {
            return .failure(FrameError(message: "frame could not be decoded", ref: ref))
        }
    }

    /// Typed access to a frame's members; a missing or mistyped one throws a `FrameError` naming it.
    private struct Fields {
        let object: Members
        let ref: String?

        func missing(_ name: String) -> FrameError { FrameError(message: "missing field '\(name)'", ref: ref) }

        func string(_ name: String) throws(FrameError) -> String {
            guard let v = object[name] else { throw missing(name) }
            guard case .string(let s) = v else { throw FrameError(message: "field '\(name)' must be a string", ref: ref) }
            return s
        }

        func count(_ name: String) throws(FrameError) -> UInt64 {
            guard let v = object[name] else { throw missing(name) }
            guard case .integer(let n) = v, n >= 0 else {
                throw FrameError(message: "field '\(name)' must be a non-negative integer", ref: ref)
            }
            return UInt64(n)
        }

        func strings(_ name: String) throws(FrameError) -> [String] {
            guard let v = object[name] else { throw missing(name) }
            guard case .array(let items) = v else { throw FrameError(message: "field '\(name)' must be an array of strings", ref: ref) }
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item else { throw FrameError(message: "field '\(name)' must be an array of strings", ref: ref) }
                out.append(s)
            }
            return out
        }
    }
}
