import ChorusCore
import ChorusEngine

/// Server frames as JSON text, written directly (no Foundation on the hot path).
public enum ServerFrame {
    public static func hello(userId: String, sessionId: String, inboxSeq: UInt64, heartbeatMs: Int) -> [UInt8] {
        var w = JSONObjectWriter()
        w.string("type", "hello")
        w.string("userId", userId)
        w.string("sessionId", sessionId)
        w.integer("inboxSeq", inboxSeq)
        w.integer("heartbeatMs", heartbeatMs)
        return w.finished()
    }

    public static func message(_ m: MessageRecord, inboxSeq: UInt64) -> [UInt8] {
        var out = bytes(capacity: messageCapacity(m))
        message(m, inboxSeq: inboxSeq, into: &out)
        return out
    }

    /// Bytes a `message` frame of `m` takes at most, unless its strings need escapes.
    public static func messageCapacity(_ m: MessageRecord) -> Int { 200 + m.body.utf8.count }

    /// Appends a `message` frame to `out`.
    public static func message(_ m: MessageRecord, inboxSeq: UInt64, into out: inout some ByteSink) {
        var w = JSONMembers(opening: &out)
        w.string("type", "message", into: &out)
        w.integer("inboxSeq", inboxSeq, into: &out)
        w.string("conversationId", m.conversationId, into: &out)
        w.integer("seq", m.seq, into: &out)
        w.string("messageId", m.conversationId, UInt8(ascii: ":"), m.seq, into: &out)
        w.string("from", m.from, into: &out)
        w.string("body", m.body, into: &out)
        w.integer("ts", m.ts, into: &out)
        w.string("clientMsgId", m.clientMsgId, into: &out)
        w.close(&out)
    }

    public static func receipt(_ entry: InboxEntry, inboxSeq: UInt64) -> [UInt8] {
        var out = bytes(capacity: frameCapacity)
        receipt(entry, inboxSeq: inboxSeq, into: &out)
        return out
    }

    /// Appends a `receipt` frame to `out` (nothing for an entry that is not a receipt).
    public static func receipt(_ entry: InboxEntry, inboxSeq: UInt64, into out: inout some ByteSink) {
        guard case .receipt(let conversationId, let userId, let kind, let seq) = entry else { return }
        var w = JSONMembers(opening: &out)
        w.string("type", "receipt", into: &out)
        w.integer("inboxSeq", inboxSeq, into: &out)
        w.string("conversationId", conversationId, into: &out)
        w.string("userId", userId, into: &out)
        w.string("kind", kind.name, into: &out)
        w.integer("seq", seq, into: &out)
        w.close(&out)
    }

    public static func ack(_ m: MessageRecord, inboxSeq: UInt64) -> [UInt8] {
        var out = bytes(capacity: frameCapacity)
        ack(m, inboxSeq: inboxSeq, into: &out)
        return out
    }

    private static func bytes(capacity: Int) -> [UInt8] {
        var b: [UInt8] = []
        b.reserveCapacity(capacity)
        return b
    }

    /// Room for the small frames (ack, receipt) with ids of ordinary length.
    public static let frameCapacity = 160

    /// Appends an `ack` frame to `out`.
    public static func ack(_ m: MessageRecord, inboxSeq: UInt64, into out: inout some ByteSink) {
        var w = JSONMembers(opening: &out)
        w.string("type", "ack", into: &out)
        w.string("clientMsgId", m.clientMsgId, into: &out)
        w.string("conversationId", m.conversationId, into: &out)
        w.integer("seq", m.seq, into: &out)
        w.string("messageId", m.conversationId, UInt8(ascii: ":"), m.seq, into: &out)
        w.integer("ts", m.ts, into: &out)
        w.integer("inboxSeq", inboxSeq, into: &out)
        w.close(&out)
    }

    public static func presence(userId: String, online: Bool, lastSeen: Int64) -> [UInt8] {
        var w = JSONObjectWriter()
        w.string("type", "presence")
        w.string("userId", userId)
        w.string("status", online ? "online" : "offline")
        w.integer("lastSeen", lastSeen)
        return w.finished()
    }

    /// Presence of a user the session may not see: never pushed again.
    public static func presenceUnknown(userId: String) -> [UInt8] {
        var w = JSONObjectWriter()
        w.string("type", "presence")
        w.string("userId", userId)
        w.string("status", "unknown")
        return w.finished()
    }

    public static func typing(conversationId: String, userId: String) -> [UInt8] {
        var w = JSONObjectWriter()
        w.string("type", "typing")
        w.string("conversationId", conversationId)
        w.string("userId", userId)
        return w.finished()
    }

    public static func synced(inboxSeq: UInt64) -> [UInt8] {
        var w = JSONObjectWriter()
        w.string("type", "synced")
        w.integer("inboxSeq", inboxSeq)
        return w.finished()
    }

    public static let pong: [UInt8] = Array(#"{"type":"pong"}"#.utf8)

    public static func error(code: String, message: String, ref: String? = nil, retryAfterMs: Int? = nil) -> [UInt8] {
        var w = JSONObjectWriter()
        w.string("type", "error")
        w.string("code", code)
        w.string("message", message)
        if let ref { w.string("ref", ref) }
        if let retryAfterMs { w.integer("retryAfterMs", retryAfterMs) }
        return w.finished()
    }

    public static func error(_ e: ChatError, ref: String? = nil) -> [UInt8] {
        var retry: Int?
        if case .rateLimited(let ms) = e { retry = ms }
        return error(code: e.code, message: e.message, ref: ref, retryAfterMs: retry)
    }
}
