/// What replay needs of a `messageAppended` record, read without building the message: one string
/// (the conversation id, a dictionary key) instead of five. The rest stays in `payload`, decoded in
/// full only if someone asks for the message (`ChorusEvent.decode`).
public struct MessageSummary: Sendable {
    public var conversationId: String
    public var seq: UInt64
    /// Where the sender's id lies in the payload (UTF-8, not validated here).
    public var from: Range<Int>
    public var ts: Int64
    public var clientMsgIdHash: UInt64
}

extension ChorusEvent {
    /// Reads a `messageAppended` payload's summary. Bounds are checked as in `decode`; UTF-8 of the
    /// skipped fields is checked when the record is decoded in full.
    public static func decodeMessageSummary(_ payload: [UInt8]) throws(EventDecodingError) -> MessageSummary {
        var r = ByteReader(payload)
        let summary: MessageSummary
        do {
            let version = try r.readUInt8()
            guard version == Self.version else { throw EventDecodingError.unsupportedVersion(kind: 8, version: version) }
            let id = try r.readString(bound: stringBound)
            let seq = try r.readVarint()
            _ = try r.readLengthPrefixed(bound: stringBound)  // messageId
            let from = try r.readLengthPrefixed(bound: stringBound)
            _ = try r.readLengthPrefixed(bound: stringBound)  // body
            let ts = try r.readInt64()
            let clientMsgId = try r.readLengthPrefixed(bound: stringBound)
            summary = MessageSummary(
                conversationId: id, seq: seq, from: from.startIndex..<from.endIndex, ts: ts,
                clientMsgIdHash: StableHash.fnv1a64(bytes: clientMsgId))
        } catch let e as EventDecodingError {
            throw e
        } catch let e as ByteReaderError {
            throw .malformed(kind: 8, e)
        } catch {
            throw .invalidValue(kind: 8, "\(error)")
        }
        guard r.isAtEnd else { throw .trailingBytes(kind: 8, count: r.remaining) }
        return summary
    }
}
