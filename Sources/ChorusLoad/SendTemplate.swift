/// The fixed parts of one connection's `send` frames and the values its frames are matched on, as
/// bytes. Ids and bodies are plain ASCII (`[a-z0-9:-x]`), so the server writes them unescaped.
struct SendTemplate {
    /// `{"type":"send","clientMsgId":"<prefix>`
    let head: [UInt8]
    /// `","conversationId":"<id>","body":"<runId>:`
    let middle: [UInt8]
    /// `:<padding>"}`
    let tail: [UInt8]
    let clientMsgIdPrefix: [UInt8]
    let conversationId: [UInt8]
    let runIdColon: [UInt8]

    init(runId: String, clientMsgIdPrefix: String, conversationId: String, padding: String) {
        head = Array(#"{"type":"send","clientMsgId":"\#(clientMsgIdPrefix)"#.utf8)
        middle = Array(#"","conversationId":"\#(conversationId)","body":"\#(runId):"#.utf8)
        tail = Array(#":\#(padding)"}"#.utf8)
        self.clientMsgIdPrefix = Array(clientMsgIdPrefix.utf8)
        self.conversationId = Array(conversationId.utf8)
        runIdColon = Array("\(runId):".utf8)
    }
}
