/// A message with the sender's inbox entry for it (what an `ack` carries).
public struct SentMessage: Sendable, Equatable {
    public var message: MessageRecord
    /// The entry in the sender's own inbox; 0 when answered from the dedup window.
    public var inboxSeq: UInt64
    /// False when this was a repeat of an earlier `clientMsgId`.
    public var created: Bool

    public init(message: MessageRecord, inboxSeq: UInt64, created: Bool) {
        self.message = message
        self.inboxSeq = inboxSeq
        self.created = created
    }
}
