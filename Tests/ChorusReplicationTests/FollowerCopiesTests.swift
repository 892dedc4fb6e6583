import ChorusCluster
import ChorusCore
import ChorusPeer
import ChorusReplica
import ChorusReplication
import ChorusTestKit
import Synchronization
import Testing

/// The follower's shell over a log: logs first, replies once durable, applies on commit, and a
/// replay of its log rebuilds the same copy.
@Suite struct FollowerCopiesTests {
    static let p = PartitionId(2)!

    final class Box: Sendable {
        let replies = Mutex<[Result<PeerReply, ChatError>]>([])
        let applied = Mutex<[PartitionReplay.Action]>([])
        var handler: PeerReplyHandler { { r in self.replies.withLock { $0.append(r) } } }
        var all: [Result<PeerReply, ChatError>] { replies.withLock { $0 } }
        var events: [UInt8] { applied.withLock { $0.compactMap { if case .apply(_, let payload, _) = $0 { payload.first } else { nil } } } }
    }

    static func records(_ values: [UInt8]) -> [ReplicatedRecord] { values.map { ReplicatedRecord(kind: 8, payload: [$0]) } }

    static func make(_ journal: InMemoryJournal, _ box: Box, inSync: Bool = true) -> FollowerCopies {
        FollowerCopies(journal: journal, incarnation: 7, recovered: PartitionReplay(), inSync: inSync) { actions in
            box.applied.withLock { $0 += actions }
        }
    }

    /// Replays the journal into a fresh `PartitionReplay`, as a restart does.
    static func replay(_ journal: InMemoryJournal) throws -> (PartitionReplay, [UInt8]) {
        var r = PartitionReplay()
        var events: [UInt8] = []
        for record in journal.records {
            for a in try r.replay(try ReplicationRecord.decode(kind: record.kind, payload: record.payload), lsn: record.lsn) {
                if case .apply(_, let payload, _) = a { events.append(payload[0]) }
            }
        }
        return (r, events)
    }

    @Test func appendsAreLoggedFirstAndAnsweredOnceDurable() throws {
        let journal = InMemoryJournal(), box = Box()
        let copies = Self.make(journal, box)
        journal.hold()
        copies.handle(.append(partition: Self.p, AppendRequest(epoch: 1, prevIndex: 0, prevEpoch: 0, entryEpochs: [1, 1], commitIndex: 0), records: Self.records([10, 11])), from: "n1", reply: box.handler)
        #expect(journal.records.map(\.kind) == [ReplicationRecord.promisedKind, ReplicationRecord.replicatedKind, ReplicationRecord.replicatedKind])
        #expect(box.all.isEmpty)  // not durable yet
        journal.release()
        #expect(box.all == [.success(.replica(.accepted(epoch: 1, lastIndex: 2)))])
        #expect(box.events.isEmpty)  // nothing committed yet
        // The leader's next append says 1 is committed: it is applied, once logged.
        journal.hold()
        copies.handle(.append(partition: Self.p, AppendRequest(epoch: 1, prevIndex: 2, prevEpoch: 1, entryEpochs: [1], commitIndex: 1), records: Self.records([12])), from: "n1", reply: box.handler)
        journal.release()
        #expect(box.events == [10])
        #expect(box.all.last == .success(.replica(.accepted(epoch: 1, lastIndex: 3))))
        // A restart's replay rebuilds the same copy and applies the same events.
        let (replayed, events) = try Self.replay(journal)
        #expect(replayed.copies[Self.p] == copies.copy(Self.p))
        #expect(events == box.events)
        #expect(copies.copy(Self.p)?.history.position == LogPosition(lastEpoch: 1, lastIndex: 3))
    }

    @Test func aFenceIsAnsweredOnceItsPromiseIsDurable() {
        let journal = InMemoryJournal(), box = Box()
        let copies = Self.make(journal, box)
        journal.hold()
        copies.handle(.fence(partition: Self.p, epoch: 3), from: "n2", reply: box.handler)
        #expect(box.all.isEmpty)
        journal.release()
        #expect(box.all == [.success(.fenced(.promised(.empty, incarnation: 7)))])
        #expect(copies.copy(Self.p)?.promised == 3)
        // An older epoch is refused at once and logs nothing.
        let logged = journal.records.count
        copies.handle(.fence(partition: Self.p, epoch: 2), from: "n3", reply: box.handler)
        #expect(box.all.last == .success(.fenced(.stale(promised: 3))))
        #expect(journal.records.count == logged)
        // So is an append of the deposed epoch.
        copies.handle(.append(partition: Self.p, AppendRequest(epoch: 2, prevIndex: 0, prevEpoch: 0, entryEpochs: [2], commitIndex: 1), records: Self.records([9])), from: "n1", reply: box.handler)
        #expect(box.all.last == .success(.replica(.stale(promised: 3))))
        #expect(journal.records.count == logged)
    }

    @Test func aReplyHeldForDurabilityIsWithdrawnWhenANewerLeaderTruncates() throws {
        let journal = InMemoryJournal(), box = Box()
        let copies = Self.make(journal, box)
        journal.hold()
        copies.handle(.append(partition: Self.p, AppendRequest(epoch: 1, prevIndex: 0, prevEpoch: 0, entryEpochs: [1], commitIndex: 0), records: Self.records([1])), from: "n1", reply: box.handler)
        journal.release()
        journal.hold()
        // Epoch 1's leader sends 2-3; before they are durable, epoch 2's leader replaces 2 onward.
        copies.handle(.append(partition: Self.p, AppendRequest(epoch: 1, prevIndex: 1, prevEpoch: 1, entryEpochs: [1, 1], commitIndex: 1), records: Self.records([2, 3])), from: "n1", reply: box.handler)
        copies.handle(.append(partition: Self.p, AppendRequest(epoch: 2, prevIndex: 1, prevEpoch: 1, entryEpochs: [2], commitIndex: 1), records: Self.records([20])), from: "n3", reply: box.handler)
        journal.release()
        let answers = box.all.dropFirst()
        #expect(answers.contains(.success(.replica(.stale(promised: 2)))))  // epoch 1 counts nothing of 2-3
        #expect(answers.contains(.success(.replica(.accepted(epoch: 2, lastIndex: 2)))))
        #expect(!answers.contains(.success(.replica(.accepted(epoch: 1, lastIndex: 3)))))
        #expect(box.events == [1])
        let (replayed, events) = try Self.replay(journal)
        #expect(replayed.copies[Self.p] == copies.copy(Self.p))
        #expect(replayed.copies[Self.p]?.history.position == LogPosition(lastEpoch: 2, lastIndex: 2))
        #expect(events == [1])
    }

    @Test func anAppendWhoseRecordsDoNotMatchItsEpochsIsRefused() {
        let journal = InMemoryJournal(), box = Box()
        let copies = Self.make(journal, box)
        copies.handle(.append(partition: Self.p, AppendRequest(epoch: 1, prevIndex: 0, prevEpoch: 0, entryEpochs: [1, 1], commitIndex: 0), records: Self.records([1])), from: "n1", reply: box.handler)
        guard case .failure(.badRequest)? = box.all.first else { Issue.record("not refused: \(box.all)"); return }
        #expect(journal.records.isEmpty)
    }
}

extension FollowerCopiesTests {
    /// A partition led here takes no append from another leader: its copy is the leader's now.
    @Test func aPartitionLedHereRefusesAppends() {
        let copies = FollowerCopies(journal: InMemoryJournal(), incarnation: 1, recovered: PartitionReplay(), inSync: true) { _ in }
        let p = PartitionId(9)!
        copies.setLed(p, true)
        let answer = Mutex<Result<PeerReply, ChatError>?>(nil)
        let r = AppendRequest(epoch: 2, prevIndex: 0, prevEpoch: 0, entryEpochs: [2], commitIndex: 0, leaderLastIndex: 1)
        copies.handle(.append(partition: p, r, records: [ReplicatedRecord(kind: 8, payload: [1])]), from: "n2") { a in answer.withLock { $0 = a } }
        #expect(answer.withLock { $0 } == .failure(.unavailable("p9 is led by this node")))
        #expect(copies.copy(p) == nil)
    }

    /// A fence reaching the node that leads the partition is answered `leading`: its follower
    /// state stopped where leading began, and a position from it would be short of records this
    /// node acknowledged (the chosen copy could lack them). Nothing is promised or logged. Once it
    /// follows again from its leader copy (a hand-off), it answers with that copy's position.
    @Test func aPartitionLedHereIsNotCountedByAFenceUntilItFollowsAgain() throws {
        let journal = InMemoryJournal(), box = Box()
        let copies = Self.make(journal, box)
        copies.setLed(Self.p, true)
        copies.handle(.fence(partition: Self.p, epoch: 5), from: "n2", reply: box.handler)
        #expect(box.all == [.success(.fenced(.leading))])
        #expect(journal.records.isEmpty && copies.copy(Self.p) == nil)
        // The leader copy's log: three records of epoch 4, all committed.
        var history = EpochHistory()
        history.append(epoch: 4, count: 3)
        copies.resume(Self.p, from: PartitionReplay.Copy(history: history, promised: 4, committed: 3))
        journal.hold()
        copies.handle(.fence(partition: Self.p, epoch: 5), from: "n2", reply: box.handler)
        journal.release()
        #expect(box.all.last == .success(.fenced(.promised(LogPosition(lastEpoch: 4, lastIndex: 3), incarnation: 7))))
    }
}
