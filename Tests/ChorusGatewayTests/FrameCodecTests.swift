import ChorusCore
import ChorusEngine
import ChorusGateway
import Testing

@Suite struct ClientFrameCodecTests {
    func decode(_ text: String) -> Result<ClientFrame, FrameError> { ClientFrameCodec.decode(Array(text.utf8)) }

    @Test func decodesEveryFrameType() {
        #expect(decode(#"{"type":"send","clientMsgId":"c1","to":"u2","body":"hi","extra":[1]}"#)
            == .success(.send(clientMsgId: "c1", target: .user("u2"), body: "hi")))
        #expect(decode(#"{"type":"send","clientMsgId":"c1","conversationId":"k","body":"h\u00e9"}"#)
            == .success(.send(clientMsgId: "c1", target: .conversation("k"), body: "hé")))
        #expect(decode(#"{"type":"sync","after":0}"#) == .success(.sync(after: 0)))
        #expect(decode(#"{"type":"received","upTo":9}"#) == .success(.received(upTo: 9)))
        #expect(decode(#"{"type":"read","conversationId":"k","seq":3}"#) == .success(.read(conversationId: "k", seq: 3)))
        #expect(decode(#"{"type":"typing","conversationId":"k"}"#) == .success(.typing(conversationId: "k")))
        #expect(decode(#"{"type":"watch","userIds":["a","b"]}"#) == .success(.watch(userIds: ["a", "b"])))
        #expect(decode(#" { "type" : "ping" } "#) == .success(.ping))
    }

    /// Members are read into fields of their own: a repeated one counts as its last value (as in a
    /// dictionary), unknown ones of any shape are skipped, and a broken one late in a frame still
    /// makes the whole frame invalid.
    @Test func repeatedAndUnknownMembers() {
        #expect(decode(#"{"type":"ping","type":"sync","after":3,"after":4}"#) == .success(.sync(after: 4)))
        #expect(decode(#"{"x":{"y":[1,{"z":null}]},"type":"typing","conversationId":"k","seq":"not read"}"#)
            == .success(.typing(conversationId: "k")))
        #expect(decode(#"{"type":"ping","extra":tru}"#) == .failure(FrameError(message: "frame is not a JSON object")))
        #expect(ClientFrameCodec.clientMsgId(in: Array(#"{"type":"send","clientMsgId":"c7","body":5}"#.utf8)) == "c7")
        #expect(ClientFrameCodec.clientMsgId(in: Array(#"{"type":"sync","clientMsgId":"c7"}"#.utf8)) == nil)
    }

    @Test func namesTheFieldThatIsWrong() {
        #expect(decode("nope") == .failure(FrameError(message: "frame is not a JSON object")))
        #expect(decode(#"["type"]"#) == .failure(FrameError(message: "frame is not a JSON object")))
        #expect(decode(#"{"kind":"ping"}"#) == .failure(FrameError(message: "missing field 'type'")))
        #expect(decode(#"{"type":7}"#) == .failure(FrameError(message: "field 'type' must be a string")))
        #expect(decode(#"{"type":"dance","clientMsgId":"c"}"#) == .failure(FrameError(message: "unknown type 'dance'", ref: "c")))
        #expect(decode(#"{"type":"send","clientMsgId":"c","to":"u"}"#) == .failure(FrameError(message: "missing field 'body'", ref: "c")))
        #expect(decode(#"{"type":"send","body":"b","to":"u"}"#) == .failure(FrameError(message: "missing field 'clientMsgId'")))
        #expect(decode(#"{"type":"send","clientMsgId":"c","body":"b"}"#)
            == .failure(FrameError(message: "missing field 'to' or 'conversationId'", ref: "c")))
        #expect(decode(#"{"type":"sync","after":-1}"#) == .failure(FrameError(message: "field 'after' must be a non-negative integer")))
        #expect(decode(#"{"type":"sync","after":1.5}"#) == .failure(FrameError(message: "field 'after' must be a non-negative integer")))
        #expect(decode(#"{"type":"read","conversationId":"k"}"#) == .failure(FrameError(message: "missing field 'seq'")))
        #expect(decode(#"{"type":"watch","userIds":["a",2]}"#) == .failure(FrameError(message: "field 'userIds' must be an array of strings")))
        let many = "[" + (0...ClientFrameCodec.maxWatch).map { "\"u\($0)\"" }.joined(separator: ",") + "]"
        #expect(decode(#"{"type":"watch","userIds":"# + many + "}")
            == .failure(FrameError(message: "field 'userIds' holds at most \(ClientFrameCodec.maxWatch) ids")))
    }
}

@Suite struct ServerFrameTests {
    let record = MessageRecord(
        conversationId: "k1", seq: 4, from: "u1", body: "say \"hi\"\n", ts: 1_700_000_000_000, clientMsgId: "c9")

    @Test func framesAreExactBytes() {
        func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }
        #expect(text(ServerFrame.hello(userId: "u1", sessionId: "s1", inboxSeq: 0, heartbeatMs: 30000))
            == #"{"type":"hello","userId":"u1","sessionId":"s1","inboxSeq":0,"heartbeatMs":30000}"#)
        #expect(text(ServerFrame.ack(record, inboxSeq: 7))
            == #"{"type":"ack","clientMsgId":"c9","conversationId":"k1","seq":4,"messageId":"k1:4","ts":1700000000000,"inboxSeq":7}"#)
        #expect(text(ServerFrame.message(record, inboxSeq: 8))
            == #"{"type":"message","inboxSeq":8,"conversationId":"k1","seq":4,"messageId":"k1:4","from":"u1","body":"say \"hi\"\n","ts":1700000000000,"clientMsgId":"c9"}"#)
        #expect(text(ServerFrame.receipt(.receipt(conversationId: "k1", userId: "u2", kind: .read, seq: 4), inboxSeq: 9))
            == #"{"type":"receipt","inboxSeq":9,"conversationId":"k1","userId":"u2","kind":"read","seq":4}"#)
        #expect(text(ServerFrame.error(.rateLimited(retryAfterMs: 250), ref: "c9")).hasPrefix(#"{"type":"error","code":"rate_limited","message":"#))
        #expect(text(ServerFrame.error(.rateLimited(retryAfterMs: 250), ref: "c9")).hasSuffix(#","ref":"c9","retryAfterMs":250}"#))
        #expect(text(ServerFrame.presence(userId: "u2", online: false, lastSeen: 5)) == #"{"type":"presence","userId":"u2","status":"offline","lastSeen":5}"#)
        #expect(text(ServerFrame.typing(conversationId: "k1", userId: "u2")) == #"{"type":"typing","conversationId":"k1","userId":"u2"}"#)
        #expect(text(ServerFrame.synced(inboxSeq: 3)) == #"{"type":"synced","inboxSeq":3}"#)
        #expect(text(ServerFrame.pong) == #"{"type":"pong"}"#)
    }
}
