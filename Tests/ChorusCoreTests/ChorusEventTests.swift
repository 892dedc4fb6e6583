import ChorusCore
import Testing

@Suite struct ChorusEventTests {
    static let samples: [ChorusEvent] = [
        .userRegistered(UserRecord(userId: "u1", username: "alice", email: "a@example.com", displayName: "Alice ✨",
                                   passwordHash: "pbkdf2-sha256$600000$c2FsdA==$aGFzaA==", createdAt: 1_795_000_000_000)),
        .loggedIn(userId: "u1", at: 1_795_000_000_001),
        .tokenIssued(tokenHash: Array(repeating: 7, count: 32), userId: "u1", expiresAt: 1_797_000_000_000),
        .tokenRevoked(tokenHash: Array(repeating: 7, count: 32), at: 5),
        .conversationCreated(conversationId: "c1", kind: .group, title: "Team", members: ["u1", "u2", "u3"], createdAt: 9),
        .memberAdded(conversationId: "c1", userId: "u4", at: 10),
        .memberRemoved(conversationId: "c1", userId: "u2", at: 11),
        .messageAppended(MessageRecord(conversationId: "c1", seq: 300, from: "u1", body: "héllo 👋",
                                       ts: 12, clientMsgId: "0b8e7c1e-5e0f-4f5a-9d3c-1f2e3d4c5b6a")),
        .readUpTo(userId: "u3", conversationId: "c1", seq: 299),
        .inboxAppended(userId: "u2", inboxSeq: 17, conversationId: "c1", seq: 300, receiptFrom: nil, receiptKind: 0),
        .inboxAppended(userId: "u1", inboxSeq: 18, conversationId: "c1", seq: 300, receiptFrom: "u2", receiptKind: 2),
        .delivered(userId: "u2", inboxUpTo: 40, items: [
            DeliveredItem(conversationId: "c1", seq: 300, recipients: ["u1"]),
            DeliveredItem(conversationId: "c2", seq: 7, recipients: ["u3", "u4"]),
        ]),
        .userHandedIn(
            UserRecord(userId: "u_aaaaaaaabbbbb", username: "bob", email: "b@example.com", displayName: "Bob", passwordHash: "h", createdAt: 3),
            lastLogin: 44, tokens: [TokenRecord(hash: Array(repeating: 9, count: 16), expiresAt: 99)],
            delivered: [DeliveredItem(conversationId: "c1", seq: 4, recipients: ["u2", "u3"])]),
        .conversationHandedIn(
            conversationId: "c1", kind: .direct, title: "", members: ["u1", "u2"], lastActivity: 12,
            reads: [ReadPosition(userId: "u1", seq: 300), ReadPosition(userId: "u2", seq: 7)]),
        .messageHandedIn(MessageRecord(conversationId: "c1", seq: 7, from: "u2", body: "moved", ts: 5, clientMsgId: "x")),
        .emailQueued(userId: "u1", periodStart: 1_795_000_000_000, messageId: "<reengage.u1.1795000000000@example.com>", to: "a@example.com", at: 9),
        .emailSent(messageId: "<m@x>", at: 10),
        .emailFailed(messageId: "<m@x>", at: 11, reason: "550 no such user"),
        .unsubscribed(userId: "u1", at: 12),
    ]

    @Test(arguments: samples)
    func roundTrips(_ event: ChorusEvent) throws {
        let bytes = event.encode()
        #expect(bytes.first == 1, "version byte")
        #expect(try ChorusEvent.decode(kind: event.kind, payload: bytes) == event)
    }

    @Test func kindsAreDistinctPerCase() {
        #expect(Set(Self.samples.map(\.kind)).count == Self.samples.count - 1)  // two inboxAppended samples
    }

    @Test func byteTableOfLoggedIn() {
        // version 1 | "u1" (varint length 2) | at as little-endian Int64
        #expect(ChorusEvent.loggedIn(userId: "u1", at: 258).encode() == [1, 2, 0x75, 0x31, 2, 1, 0, 0, 0, 0, 0, 0])
    }

    @Test(arguments: samples)
    func everyTruncationAndTrailingByteIsRefused(_ event: ChorusEvent) {
        let bytes = event.encode()
        for cut in 0..<bytes.count {
            #expect(throws: EventDecodingError.self) { try ChorusEvent.decode(kind: event.kind, payload: Array(bytes[..<cut])) }
        }
        #expect(throws: EventDecodingError.trailingBytes(kind: event.kind, count: 1)) {
            try ChorusEvent.decode(kind: event.kind, payload: bytes + [0])
        }
    }

    @Test func unknownKindAndVersionAreRefused() {
        #expect(throws: EventDecodingError.unknownKind(99)) { try ChorusEvent.decode(kind: 99, payload: [1]) }
        #expect(throws: EventDecodingError.unsupportedVersion(kind: 2, version: 7)) { try ChorusEvent.decode(kind: 2, payload: [7]) }
    }
}

@Suite struct ChatLimitsTests {
    let limits = ChatLimits()

    @Test func usernames() {
        for ok in ["bob", "alice_92", "a.b-c", String(repeating: "x", count: 32)] { #expect(limits.isValidUsername(ok), "\(ok)") }
        for bad in ["ab", "Alice", "bob smith", "bob!", "", String(repeating: "x", count: 33), "bøb"] {
            #expect(!limits.isValidUsername(bad), "\(bad)")
        }
    }

    @Test func emails() {
        for ok in ["a@b.co", "first.last+tag@example.org"] { #expect(limits.isValidEmail(ok), "\(ok)") }
        for bad in ["", "a", "a@b", "@b.co", "a@.co", "a b@c.de", "a@b.co\r\nBcc: x@y.z", "a@b@c.de"] {
            #expect(!limits.isValidEmail(bad), "\(bad)")
        }
    }
}
