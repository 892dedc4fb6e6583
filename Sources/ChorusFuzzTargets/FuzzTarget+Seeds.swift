import ChorusCluster
import ChorusCore
import ChorusGateway
import ChorusMesh
import ChorusPeer
import ChorusReplication
import ChorusWAL
import NIOCore

extension FuzzTarget {
    /// Valid inputs to start from, built with the encoders (`chorus-tools fuzz --export-seeds`
    /// writes them to `Tests/fuzz-corpus/<target>/`).
    public var seeds: [[UInt8]] {
        let message = MessageRecord(conversationId: "c_abcdefghijklm", seq: 7, from: "u_abcdefghijklm", body: "hello ✓", ts: 1_700_000_000_000, clientMsgId: "m1")
        switch self {
        case .webSocket:
            func masked(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
                let key: [UInt8] = [1, 2, 3, 4]
                var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
                if payload.count < 126 { out.append(0x80 | UInt8(payload.count)) } else { out += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] }
                return out + key + payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
            }
            let send = Array(#"{"type":"send","clientMsgId":"m1","conversationId":"c1","body":"hi"}"#.utf8)
            return [
                masked(1, send), masked(9, [1, 2]), masked(8, [0x03, 0xE8]),
                masked(1, Array(send[..<10]), fin: false) + masked(9, []) + masked(0, Array(send[10...])),
                masked(1, Array(repeating: 0x61, count: 300)), masked(2, [0, 1, 2]),
            ]
        case .flatJSON, .clientFrame:
            return [
                #"{"type":"send","clientMsgId":"m1","to":"u_abc","body":"hi \"there\" \u00e9 \ud83d\ude00"}"#,
                #"{"type":"watch","userIds":["u1","u2","u3"]}"#, #"{"type":"sync","after":12}"#,
                #"{"type":"read","conversationId":"c1","seq":3}"#, #"{"type":"ping"}"#, #"{"type":"typing","conversationId":"c1"}"#,
                #"{"a":[1,2.5,-3e7,true,false,null,{"b":"c"}],"d":"\n\t"}"#,
            ].map { Array($0.utf8) }
        case .httpRequest:
            return [
                "/v1/conversations/c1/messages?limit=50&before=10\nAuthorization: Bearer u_abc.xyz\nX-Forwarded-For: 203.0.113.9, 10.0.0.1\n{\"clientMsgId\":\"m1\",\"body\":\"hi\"}",
                "/v1/ws?token=u_abc.secret%20x&x=%ZZ\nauthorization: bearer t\n2001:db8::1/64",
            ].map { Array($0.utf8) }
        case .mesh:
            let hello = MeshHello(ringSignature: 0x0102_0304_0506_0708, nodeId: "n1").encoded()
            let frames = [
                MeshFrame(type: .request, ring: 9, correlation: 1, payload: PeerCodec.encode(.engine(.authenticate(token: "u1.t")))),
                MeshFrame(type: .heartbeat, ring: 9, correlation: 2), MeshFrame(type: .oneWay, ring: 9, correlation: 0, payload: [1, 2, 3]),
            ].map { $0.encoded() }
            return [hello + frames.joined(), frames.joined().map { $0 }, hello]
        case .peer:
            let requests: [PeerRequest] = [
                .engine(.send(PeerSend(conversationId: "c1", from: "u1", clientMsgId: "m1", body: "hi", origin: 3))),
                .engine(.inboxAppend([RemoteInboxItem(userId: "u2", entry: .message(message), origin: 1)])),
                .engine(.sharing(userId: "u1", among: ["u2", "u3"])), .session(.presence(users: ["u1"], watch: true)),
                .membership(.handover(epoch: 2, events: [.messageHandedIn(message), .loggedIn(userId: "u1", at: 5)])),
                .replication(.fence(partition: PartitionId(7)!, epoch: 3)),
                .replication(.append(
                    partition: PartitionId(7)!, AppendRequest(epoch: 3, prevIndex: 4, prevEpoch: 2, entryEpochs: [2, 3], commitIndex: 4, leaderLastIndex: 6),
                    records: [ReplicatedRecord(kind: 8, payload: ChorusEvent.messageAppended(message).encode()), ReplicatedRecord(kind: 2, payload: [1])])),
            ]
            let events: [PeerEvent] = [.sessionPush(proxy: 1, frames: [[1, 2], [3]]), .presence(userId: "u1", PresenceStatus(online: true, lastSeen: 9))]
            let history = EpochHistory(floor: 2, floorEpoch: 1, runs: [.init(epoch: 2, start: 3), .init(epoch: 4, start: 6)], lastIndex: 9)!
            let answers: [Result<PeerReply, ChatError>] = [
                .success(.sent(SentMessage(message: message, inboxSeq: 4, created: true))), .failure(.rateLimited(retryAfterMs: 5)),
                .success(.fenced(.promised(LogPosition(lastEpoch: 4, lastIndex: 9), incarnation: 77))), .success(.replica(.mismatch(epoch: 5, history: history))),
            ]
            return requests.map { PeerCodec.encode($0) } + events.map { PeerCodec.encode($0) } + answers.map { PeerCodec.encode($0) }
        case .walBlock:
            let events: [ChorusEvent] = [.messageAppended(message), .loggedIn(userId: "u1", at: 5), .tokenRevoked(tokenHash: Array(repeating: 7, count: 16), at: 3)]
            var raw: [UInt8] = []
            for e in events { BlockCodec.appendRecord(kind: e.kind, payload: e.encode(), to: &raw) }
            var plain: [UInt8] = [], compressed: [UInt8] = []
            BlockCodec.encodeBlock(firstLSN: 1, recordCount: events.count, raw: raw, into: &plain, compressor: BlockCompressor())
            var big: [UInt8] = []
            for _ in 0..<40 { BlockCodec.appendRecord(kind: events[0].kind, payload: events[0].encode(), to: &big) }
            BlockCodec.encodeBlock(firstLSN: 4, recordCount: 40, raw: big, into: &compressed, compressor: BlockCompressor())
            return [plain, compressed]
        case .walEvent:
            let events: [ChorusEvent] = [
                .messageAppended(message), .userRegistered(UserRecord(userId: "u1", username: "ann", email: "a@example.com", displayName: "Ann", passwordHash: "x", createdAt: 1)),
                .memberAdded(conversationId: "c1", userId: "u2", at: 3), .tokenIssued(tokenHash: Array(repeating: 1, count: 32), userId: "u1", expiresAt: 9),
            ]
            let p = PartitionId(7)!
            let replication: [ReplicationRecord] = [
                .replicated(partition: p, epoch: 2, index: 1, kind: 8, payload: ChorusEvent.messageAppended(message).encode()),
                .committed(partition: p, index: 1), .truncated(partition: p, after: 0), .promised(partition: p, epoch: 3),
                .reset(partition: p, history: EpochHistory(floor: 0, floorEpoch: 0, runs: [.init(epoch: 1, start: 1)], lastIndex: 2)!),
                .snapshotEvent(partition: p, kind: 2, payload: ChorusEvent.loggedIn(userId: "u1", at: 5).encode()),
            ]
            return events.map { [UInt8(truncatingIfNeeded: $0.kind), UInt8(truncatingIfNeeded: $0.kind >> 8)] + $0.encode() }
                + replication.map { [UInt8(truncatingIfNeeded: $0.kind), UInt8(truncatingIfNeeded: $0.kind >> 8)] + $0.encode() }
        case .smtp:
            return ["220 mail.example ESMTP", "250-mail.example\n250-STARTTLS\n250-AUTH PLAIN LOGIN\n250 SIZE 1000", "451 4.3.0 try again", "550 5.1.1 no"].map { Array($0.utf8) }
        }
    }
}
