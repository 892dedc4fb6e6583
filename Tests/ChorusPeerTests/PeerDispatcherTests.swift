import ChorusCluster
import ChorusCore
import ChorusPeer
import ChorusReplication
import Logging
import Synchronization
import Testing

/// Records what each part was handed and answers with a reply naming the part.
final class Recorder: EngineRequestHandler, SessionPeerHandler, ForwardRequestHandler, MembershipRequestHandler, ReplicationRequestHandler, Sendable {
    let seen = Mutex<[String]>([])

    func handle(_ request: ReplicationRequest, from peer: String, reply: @escaping PeerReplyHandler) {
        seen.withLock { $0.append("replication \(request) from \(peer)") }
        reply(.success(.fenced(.rebuilding)))
    }

    func handle(_ request: EngineRequest, from peer: String, reply: @escaping PeerReplyHandler) {
        seen.withLock { $0.append("engine \(request) from \(peer)") }
        reply(.success(.info(httpAddress: "engine")))
    }
    func peerReachable(_ peer: String) { seen.withLock { $0.append("reachable \(peer)") } }
    func handle(_ request: SessionRequest, from peer: String, reply: @escaping PeerReplyHandler) {
        seen.withLock { $0.append("session \(request) from \(peer)") }
        reply(.failure(.notMember))
    }
    func handle(_ event: PeerEvent, from peer: String) { seen.withLock { $0.append("event \(event) from \(peer)") } }
    func peerDown(_ peer: String) { seen.withLock { $0.append("down \(peer)") } }
    func handle(_ request: ForwardRequest, from peer: String, reply: @escaping PeerReplyHandler) {
        seen.withLock { $0.append("forward \(request) from \(peer)") }
        reply(.success(.info(httpAddress: "forward")))
    }
    func handle(_ request: MembershipRequest, from peer: String) async -> Result<PeerReply, ChatError> {
        seen.withLock { $0.append("membership \(request) from \(peer)") }
        return .success(.phase(.ready))
    }
}

@Suite struct PeerDispatcherTests {
    func ask(_ d: PeerDispatcher, _ bytes: [UInt8]) async throws -> Result<PeerReply, ChatError> {
        let answer = await withCheckedContinuation { (c: CheckedContinuation<[UInt8], Never>) in d.request(bytes, from: "n2") { c.resume(returning: $0) } }
        return try PeerCodec.decodeAnswer(answer)
    }

    @Test func eachGroupReachesItsPartAndTheAnswerComesBackEncoded() async throws {
        let r = Recorder()
        let d = PeerDispatcher(engine: r, sessions: r, forward: r, membership: r, logger: Logger(label: "test"))
        #expect(try await ask(d, PeerCodec.encode(.engine(.usersExist(["u1"])))) == .success(.info(httpAddress: "engine")))
        #expect(try await ask(d, PeerCodec.encode(.session(.typing(conversationId: "c", userId: "u")))) == .failure(.notMember))
        #expect(try await ask(d, PeerCodec.encode(.forward(.info))) == .success(.info(httpAddress: "forward")))
        #expect(try await ask(d, PeerCodec.encode(.membership(.status(epoch: 2)))) == .success(.phase(.ready)))
        d.event(PeerCodec.encode(.presence(userId: "u1", PresenceStatus(online: true, lastSeen: 1))), from: "n3")
        d.peer("n3", is: .reachable)
        d.peer("n4", is: .unreachable)
        #expect(r.seen.withLock { $0 } == [
            #"engine usersExist(["u1"]) from n2"#,
            #"session typing(conversationId: "c", userId: "u") from n2"#,
            "forward info from n2",
            "membership status(epoch: 2) from n2",
            #"event presence(userId: "u1", ChorusCore.PresenceStatus(online: true, lastSeen: 1)) from n3"#,
            "reachable n3",
            "down n4",
        ])
    }

    @Test func replicationReachesItsHandlerAndIsRefusedWithoutOne() async throws {
        let r = Recorder()
        let fence = PeerCodec.encode(.replication(.fence(partition: PartitionId(3)!, epoch: 2)))
        let with = PeerDispatcher(engine: r, sessions: r, forward: r, membership: r, replication: r, logger: Logger(label: "test"))
        #expect(try await ask(with, fence) == .success(.fenced(.rebuilding)))
        #expect(r.seen.withLock { $0 } == ["replication fence(partition: p3, epoch: 2) from n2"])
        // A node without --etcd (the default handler): every key has one copy, nothing to replicate.
        let without = PeerDispatcher(engine: r, sessions: r, forward: r, membership: r, logger: Logger(label: "test"))
        #expect(try await ask(without, fence) == .failure(.unavailable("replication is off on this node (no --etcd)")))
        #expect(r.seen.withLock { $0 }.count == 1)
    }

    @Test func malformedInputIsRefusedAndReachesNoPart() async throws {
        let r = Recorder()
        let d = PeerDispatcher(engine: r, sessions: r, forward: r, membership: r, logger: Logger(label: "test"))
        guard case .failure(.badRequest(let why)) = try await ask(d, [99, 1, 2]) else { Issue.record("expected bad_request"); return }
        #expect(why.contains("malformed peer request"))
        guard case .failure(.badRequest) = try await ask(d, Array(PeerCodec.encode(.engine(.usersExist(["u1"]))).dropLast())) else {
            Issue.record("expected bad_request"); return
        }
        d.event([4, 1], from: "n2")
        d.event(PeerCodec.encode(.forward(.info)), from: "n2")
        #expect(r.seen.withLock { $0 }.isEmpty)
    }
}
