import ChorusCore
import ChorusEngine
import ChorusReengagement
import Testing

@testable import Chorus

/// The node's composite snapshot: the engine's section and the outbox's, and the older single
/// payload (engine state with the outbox at its end) still read.
@Suite struct NodeSnapshotTests {
    func replayed() throws -> (NodeState, InboxDirectory) {
        var state = NodeState()
        let inboxes = InboxDirectory()
        let user = UserRecord(userId: "u_1", username: "ann", email: "ann@example.com", displayName: "Ann", passwordHash: "h", createdAt: 1)
        let events: [ChorusEvent] = [
            .userRegistered(user),
            .conversationCreated(conversationId: "c_1", kind: .group, title: "t", members: ["u_1"], createdAt: 2),
            .messageAppended(MessageRecord(conversationId: "c_1", seq: 1, from: "u_1", body: "hi", ts: 3, clientMsgId: "m")),
            .emailQueued(userId: "u_1", periodStart: 1, messageId: "<e1@x>", to: "ann@example.com", at: 4),
            .emailQueued(userId: "u_2", periodStart: 1, messageId: "<e2@x>", to: "bob@example.com", at: 5),
            .emailSent(messageId: "<e1@x>", at: 6),
            .unsubscribed(userId: "u_3", at: 7),
        ]
        for (i, e) in events.enumerated() { try state.apply(kind: e.kind, payload: e.encode(), lsn: UInt64(i + 1), inboxes: inboxes) }
        return (state, inboxes)
    }

    @Test func replayFeedsTheOutboxItsRecordsAndTheEngineTheRest() throws {
        let (state, inboxes) = try replayed()
        #expect(state.outbox.pending.count == 1 && state.outbox.unsubscribed == ["u_3"])
        #expect(state.engine.accounts.userCount == 1 && state.engine.conversations["c_1"]?.lastSeq == 1)
        #expect(inboxes.inbox("u_1").lastSeq == 1)
    }

    @Test func bothSectionsRoundTrip() throws {
        let (state, inboxes) = try replayed()
        let payload = NodeSnapshot.encode(state, inboxes: inboxes)
        #expect(payload.first == NodeSnapshot.version)
        let (restored, restoredInboxes) = try NodeSnapshot.decode(payload)
        #expect(restored.outbox == state.outbox)
        #expect(restored.engine.conversations["c_1"]?.lastSeq == 1 && restored.engine.accounts.userCount == 1)
        #expect(restoredInboxes.inbox("u_1").lastSeq == 1)
    }

    @Test func anOlderSnapshotWithTheOutboxAtItsEndIsRead() throws {
        let (state, inboxes) = try replayed()
        // Version 6 was the engine's layout of today with the outbox appended.
        var w = ByteWriter()
        state.outbox.encode(into: &w)
        let legacy = [UInt8(6)] + EngineSnapshot.encode(state.engine, inboxes: inboxes).dropFirst() + w.bytes
        let (restored, _) = try NodeSnapshot.decode(legacy)
        #expect(restored.outbox == state.outbox && restored.engine.conversations["c_1"]?.lastSeq == 1)
    }

    @Test func damageIsRefusedNotTrusted() throws {
        let (state, inboxes) = try replayed()
        let payload = NodeSnapshot.encode(state, inboxes: inboxes)
        for cut in 0..<payload.count { #expect(throws: EngineSnapshotError.self) { try NodeSnapshot.decode(Array(payload[..<cut])) } }
        #expect(throws: EngineSnapshotError.self) { try NodeSnapshot.decode(payload + [0]) }
        #expect(throws: EngineSnapshotError.unsupportedVersion(8)) { try NodeSnapshot.decode([8] + payload.dropFirst()) }
        #expect(throws: EngineSnapshotError.unsupportedVersion(3)) { try NodeSnapshot.decode([3] + payload.dropFirst()) }
    }
}
