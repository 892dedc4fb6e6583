import ChorusCluster
import ChorusCore
import ChorusPeer
import ChorusReplication
import ChorusTestKit
import Testing

/// One value of every request, event and reply, with the fields that vary filled in.
enum Samples {
    static let message = MessageRecord(conversationId: "c1", seq: 42, from: "u1", body: "héllo", ts: 1_700_000_000_123, clientMsgId: "m-1")
    static let membership = ClusterMembership(epoch: 3, members: ["n1": "127.0.0.1:7001", "n2": "127.0.0.1:7002"])

    static let requests: [PeerRequest] = [
        .engine(.authenticate(token: "u1.secret")),
        .engine(.send(PeerSend(conversationId: "c1", from: "u1", clientMsgId: "m-1", body: "hi", origin: 0xDEAD_BEEF))),
        .engine(.messages(conversationId: "c1", seqs: [1, 2, 300])),
        .engine(.direct(creator: "u1", other: "u2")),
        .engine(.read(conversationId: "c1", userId: "u2", upTo: 9)),
        .engine(.inboxAppend([
            RemoteInboxItem(userId: "u2", entry: .message(message), origin: 1, previous: 41),
            RemoteInboxItem(userId: "u3", entry: .receipt(conversationId: "c1", from: "u2", kind: .delivered, seq: 42)),
        ])),
        .engine(.usersExist(["u2", "u3"])),
        .engine(.sharing(userId: "u1", among: ["u2", "u3"])),
        .engine(.inboxHigh([PeerInboxKey(userId: "u2", conversationId: "c1")])),
        .engine(.receiptHigh([PeerReceiptKey(userId: "u2", conversationId: "c1", from: "u3", kind: .read)])),
        .session(.open(proxy: 77, token: "u1.secret")),
        .session(.presence(users: ["u1", "u2"], watch: true)),
        .session(.typing(conversationId: "c1", userId: "u1")),
        .session(.sessionCount(userId: "u1")),
        .forward(.http(ForwardedHTTP(
            method: "POST", uri: "/v1/sessions?x=1", headers: [.init(name: "Content-Type", value: "application/json")], body: Array("{}".utf8),
            clientAddress: "127.0.0.9", local: true))),
        .forward(.info),
        .membership(.prepare(membership)),
        .membership(.status(epoch: 4)),
        .membership(.commit(membership)),
        .membership(.abort(membership)),
        .membership(.handover(epoch: 4, events: [.messageHandedIn(message), .loggedIn(userId: "u1", at: 5)])),
        .replication(.fence(partition: PartitionId(63)!, epoch: 7)),
        .replication(.append(
            partition: PartitionId(5)!,
            AppendRequest(epoch: 7, prevIndex: 10, prevEpoch: 6, entryEpochs: [6, 7], commitIndex: 9, leaderLastIndex: 14),
            records: [ReplicatedRecord(kind: 8, payload: ChorusEvent.messageAppended(message).encode()), ReplicatedRecord(kind: 2, payload: [])])),
        .replication(.append(partition: PartitionId(0)!, AppendRequest(epoch: 1, prevIndex: 0, prevEpoch: 0, entryEpochs: [], commitIndex: 0), records: [])),
    ]

    static let events: [PeerEvent] = [
        .sessionFrame(proxy: 77, text: true, bytes: Array(#"{"type":"send"}"#.utf8)),
        .sessionFrame(proxy: 77, text: false, bytes: []),
        .sessionPush(proxy: 77, frames: [[1, 2, 3], [], [4]]),
        .sessionClose(proxy: 77, code: 4001, reason: "token revoked"),
        .userPush(users: ["u1", "u2"], frame: Array(#"{"type":"typing"}"#.utf8)),
        .presence(userId: "u1", PresenceStatus(online: true, lastSeen: 1_700_000_000_000)),
    ]

    static let replies: [PeerReply] = [
        .done,
        .user(UserRecord(userId: "u1", username: "ann", email: "ann@example.com", displayName: "Ann", passwordHash: "", createdAt: 12)),
        .sent(SentMessage(message: message, inboxSeq: 8, created: true)),
        .messages([message, message]),
        .conversation(PeerConversation(id: "c1", kind: .group, title: "team", lastActivity: 99, members: ["u1", "u2"]), created: false),
        .seqs([1, 0, 1 << 40]),
        .allExist(true),
        .users(["u2"]), .users([]),
        .presence([PresenceStatus(online: false, lastSeen: 3)]),
        .http(ForwardedResponse(status: 201, headers: [.init(name: "Content-Type", value: "application/json")], body: Array("{}".utf8))),
        .info(httpAddress: "127.0.0.1:8080"),
        .phase(.idle), .phase(.transferring), .phase(.ready), .phase(.failed("disk full")),
        .fenced(.promised(LogPosition(lastEpoch: 3, lastIndex: 99), incarnation: 0xABCD)), .fenced(.rebuilding), .fenced(.stale(promised: 4)), .fenced(.leading),
        .replica(.accepted(epoch: 3, lastIndex: 100)), .replica(.stale(promised: 9)),
        .replica(.mismatch(epoch: 3, history: EpochHistory(floor: 4, floorEpoch: 1, runs: [.init(epoch: 2, start: 5), .init(epoch: 3, start: 9)], lastIndex: 12)!)),
    ]

    static let answers: [Result<PeerReply, ChatError>] = replies.map { .success($0) } + [
        .failure(.notMember), .failure(.rateLimited(retryAfterMs: 250)), .failure(.unavailable("node n3 cannot be reached")),
        .failure(.badRequest("x")), .failure(.bodyTooLarge(limit: 4096)),
    ]
}

@Suite struct PeerCodecTests {
    @Test func everyRequestRoundTrips() throws {
        for r in Samples.requests { #expect(try PeerCodec.decodeRequest(PeerCodec.encode(r)) == r) }
    }

    @Test func everyEventRoundTrips() throws {
        for e in Samples.events { #expect(try PeerCodec.decodeEvent(PeerCodec.encode(e)) == e) }
    }

    @Test func everyAnswerRoundTrips() throws {
        for a in Samples.answers { #expect(try PeerCodec.decodeAnswer(PeerCodec.encode(a)) == a) }
    }

    @Test func layoutsAreExactBytes() {
        // kind 16 | "c1" | "u1" | "m-1" | "hi" | origin u64 LE
        #expect(PeerCodec.encode(Samples.requests[1]) == [16, 2, 0x63, 0x31, 2, 0x75, 0x31, 3, 0x6D, 0x2D, 0x31, 2, 0x68, 0x69, 0xEF, 0xBE, 0xAD, 0xDE, 0, 0, 0, 0])
        // kind 17 | "c1" | count 3 | varints 1, 2, 300
        #expect(PeerCodec.encode(Samples.requests[2]) == [17, 2, 0x63, 0x31, 3, 1, 2, 0xAC, 0x02])
        #expect(PeerCodec.encode(.forward(.info)) == [7])
        #expect(PeerCodec.encode(.membership(.status(epoch: 4))) == [30, 4, 0, 0, 0, 0, 0, 0, 0])
        // kind 6 | proxy u64 | code u16 4001 | "bye"
        #expect(PeerCodec.encode(.sessionClose(proxy: 1, code: 4001, reason: "bye")) == [6, 1, 0, 0, 0, 0, 0, 0, 0, 0xA1, 0x0F, 3, 0x62, 0x79, 0x65])
        // ok | tag seqs | count 2 | u64 LE
        #expect(PeerCodec.encode(.success(.seqs([1, 2]))) == [0, 5, 2, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])
        #expect(PeerCodec.encode(.success(.done)) == [0, 0])
        // failure | "not_member" | ""
        #expect(PeerCodec.encode(.failure(.notMember)) == [1, 10] + Array("not_member".utf8) + [0])
    }

    @Test func replicationLayoutsAreExactBytes() {
        // kind 35 | partition u16 63 | epoch u64 7
        #expect(PeerCodec.encode(.replication(.fence(partition: PartitionId(63)!, epoch: 7))) == [35, 63, 0, 7, 0, 0, 0, 0, 0, 0, 0])
        // ok | tag fenced | promised | lastEpoch 3 | lastIndex 99 | incarnation 2
        #expect(PeerCodec.encode(.success(.fenced(.promised(LogPosition(lastEpoch: 3, lastIndex: 99), incarnation: 2)))) == [0, 12, 0, 3, 0, 0, 0, 0, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])
    }

    /// Appends no real leader sends are refused at decoding, so the follower's rules never see them.
    @Test func appendsWithImpossibleEpochsAreRefused() {
        let p = PartitionId(1)!
        let bad: [AppendRequest] = [
            AppendRequest(epoch: 3, prevIndex: 4, prevEpoch: 4, entryEpochs: [], commitIndex: 0),  // previous entry newer than the sender
            AppendRequest(epoch: 3, prevIndex: 4, prevEpoch: 2, entryEpochs: [3, 2], commitIndex: 0),  // falling
            AppendRequest(epoch: 3, prevIndex: 4, prevEpoch: 2, entryEpochs: [1], commitIndex: 0),  // below the previous entry
            AppendRequest(epoch: 3, prevIndex: 4, prevEpoch: 2, entryEpochs: [4], commitIndex: 0),  // above the sender
            AppendRequest(epoch: 3, prevIndex: 0, prevEpoch: 0, entryEpochs: [0], commitIndex: 0),  // epoch 0
            AppendRequest(epoch: 3, prevIndex: 0, prevEpoch: 1, entryEpochs: [], commitIndex: 0),  // an epoch before the log's start
            AppendRequest(epoch: 3, prevIndex: 4, prevEpoch: 2, entryEpochs: [3], commitIndex: 0, leaderLastIndex: 4),  // past the leader's end
        ]
        for a in bad {
            let records = a.entryEpochs.map { _ in ReplicatedRecord(kind: 2, payload: []) }
            let bytes = PeerCodec.encode(.replication(.append(partition: p, a, records: records)))
            #expect(throws: PeerDecodingError.self) { try PeerCodec.decodeRequest(bytes) }
        }
        // A partition past the last one, and an impossible epoch history.
        #expect(throws: PeerDecodingError.self) { try PeerCodec.decodeRequest([35, 64, 0, 7, 0, 0, 0, 0, 0, 0, 0]) }
        let history: [UInt8] = [0, 13, 1] + [3, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0] + [5, 0, 0, 0, 0, 0, 0, 0] + [1] + [1, 0, 0, 0, 0, 0, 0, 0] + [2, 0, 0, 0, 0, 0, 0, 0]
        #expect(throws: PeerDecodingError.self) { try PeerCodec.decodeAnswer(history) }
    }

    @Test func everyTruncationIsRefusedNeverCrashes() {
        for r in Samples.requests {
            let bytes = PeerCodec.encode(r)
            for cut in 0..<bytes.count { #expect(throws: PeerDecodingError.self) { try PeerCodec.decodeRequest(Array(bytes[..<cut])) } }
        }
        for e in Samples.events {
            let bytes = PeerCodec.encode(e)
            for cut in 0..<bytes.count { #expect(throws: PeerDecodingError.self) { try PeerCodec.decodeEvent(Array(bytes[..<cut])) } }
        }
        for a in Samples.answers {
            let bytes = PeerCodec.encode(a)
            for cut in 0..<bytes.count { #expect(throws: PeerDecodingError.self) { try PeerCodec.decodeAnswer(Array(bytes[..<cut])) } }
        }
    }

    @Test func trailingBytesAreRefused() {
        for r in Samples.requests { #expect(throws: PeerDecodingError.trailingBytes(1)) { try PeerCodec.decodeRequest(PeerCodec.encode(r) + [0]) } }
        for e in Samples.events { #expect(throws: PeerDecodingError.trailingBytes(1)) { try PeerCodec.decodeEvent(PeerCodec.encode(e) + [0]) } }
        for a in Samples.answers { #expect(throws: PeerDecodingError.trailingBytes(2)) { try PeerCodec.decodeAnswer(PeerCodec.encode(a) + [0, 0]) } }
    }

    @Test func unknownKindsAreRefused() {
        #expect(throws: PeerDecodingError.unknownKind(0)) { try PeerCodec.decodeRequest([0]) }
        #expect(throws: PeerDecodingError.unknownKind(255)) { try PeerCodec.decodeRequest([255, 1, 2]) }
        #expect(throws: PeerDecodingError.unknownKind(99)) { try PeerCodec.decodeAnswer([0, 99]) }
        #expect(throws: PeerDecodingError.unknownKind(2)) { try PeerCodec.decodeAnswer([2]) }
        // A request's kind is not an event's, and the reverse.
        for r in Samples.requests {
            let bytes = PeerCodec.encode(r)
            #expect(throws: PeerDecodingError.unknownKind(bytes[0])) { try PeerCodec.decodeEvent(bytes) }
        }
        for e in Samples.events {
            let bytes = PeerCodec.encode(e)
            #expect(throws: PeerDecodingError.unknownKind(bytes[0])) { try PeerCodec.decodeRequest(bytes) }
        }
    }

    @Test func countsAndLengthsOverTheirBoundsAreRefusedBeforeReading() {
        var w = ByteWriter()
        w.write(UInt8(20))  // usersExist
        w.writeVarint(UInt64(PeerBounds.usersAsked + 1))
        #expect(throws: PeerDecodingError.malformed(.lengthOverBound(length: UInt64(PeerBounds.usersAsked + 1), bound: PeerBounds.usersAsked))) {
            try PeerCodec.decodeRequest(w.bytes)
        }
        var big = ByteWriter()
        big.write(UInt8(2))  // authenticate: a token over its bound
        big.writeVarint(UInt64(PeerBounds.token + 1))
        #expect(throws: PeerDecodingError.malformed(.lengthOverBound(length: UInt64(PeerBounds.token + 1), bound: PeerBounds.token))) {
            try PeerCodec.decodeRequest(big.bytes + Array(repeating: 0x61, count: PeerBounds.token + 1))
        }
        // A count of 2^63 claimed by a tiny frame: refused by its bound, nothing allocated.
        #expect(throws: PeerDecodingError.self) { try PeerCodec.decodeEvent([5, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) }
        // A malformed varint (11 continuation bytes).
        #expect(throws: PeerDecodingError.malformed(.malformedVarint)) { try PeerCodec.decodeRequest([17, 0] + Array(repeating: 0xFF, count: 11)) }
    }

    @Test func invalidFieldsAreRefused() throws {
        // A conversation kind that does not exist.
        var w = ByteWriter()
        w.write(UInt8(0)); w.write(UInt8(4)); w.writeString("c1"); w.write(UInt8(9))
        #expect(throws: PeerDecodingError.invalid("conversation kind 9")) { try PeerCodec.decodeAnswer(w.bytes) }
        // An inbox entry kind that does not exist.
        var i = ByteWriter()
        i.write(UInt8(19)); i.writeVarint(1); i.writeString("u1"); i.write(UInt64(0)); i.write(UInt8(7))
        #expect(throws: PeerDecodingError.invalid("inbox entry kind 7")) { try PeerCodec.decodeRequest(i.bytes) }
        // A receipt kind that does not exist.
        var k = ByteWriter()
        k.write(UInt8(27)); k.writeVarint(1); k.writeString("u1"); k.writeString("c1"); k.writeString("u2"); k.write(UInt8(9))
        #expect(throws: PeerDecodingError.invalid("receipt kind 9")) { try PeerCodec.decodeRequest(k.bytes) }
        // Invalid UTF-8 in a string.
        #expect(throws: PeerDecodingError.malformed(.invalidUTF8)) { try PeerCodec.decodeRequest([2, 2, 0xC3, 0x28]) }
        // An unknown error code arrives as `unavailable`, keeping its text.
        var e = ByteWriter()
        e.write(UInt8(1)); e.writeString("brand_new_code"); e.writeString("why")
        #expect(try PeerCodec.decodeAnswer(e.bytes) == .failure(.unavailable("why")))
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 0x5EED)
        for _ in 0..<20_000 {
            let n = Int.random(in: 0..<48, using: &rng)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if !bytes.isEmpty, Bool.random(using: &rng) { bytes[0] = [1, 2, 3, 16, 17, 19, 28, 29, 5, 23][Int.random(in: 0..<10, using: &rng)] }
            _ = try? PeerCodec.decodeRequest(bytes)
            _ = try? PeerCodec.decodeEvent(bytes)
            _ = try? PeerCodec.decodeAnswer(bytes)
        }
    }
}
