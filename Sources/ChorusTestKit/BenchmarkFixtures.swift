import ChorusCore

/// The chat traffic the benchmarks measure, one definition for every benchmark target.
public enum BenchmarkFixtures {
    /// A client's `send` frame as it arrives (unmasked JSON).
    public static let sendFrame = Array(
        #"{"type":"send","clientMsgId":"k2v7-1042-88","conversationId":"c_abcdefghijklm","body":"see you at the station at half past six, bring the tickets"}"#.utf8)

    /// A delivered message (its body needs escaping).
    public static let messageRecord = MessageRecord(
        conversationId: "c_abcdefghijklm", seq: 1042, from: "u_abcdefghijklm",
        body: "see you at the station at \"half past six\", bring the tickets", ts: 1_795_000_000_000, clientMsgId: "k2v7-1042-88")
}
