import ChorusCore
@testable import ChorusEngine
import ChorusTestKit
import Synchronization
import Testing

/// Sends submitted one after another from one thread (as a session's event loop does) take seqs in
/// that order, even when thousands are in flight at once.
@Suite struct SendOrderTests {
    @Test func submittedSendsKeepTheirOrder() async throws {
        let s = EngineReplayTests.Setup()
        let a = try await s.user("ann"), b = try await s.user("bea")
        let (direct, _) = try await s.conversations.create(by: a, members: [b], title: nil)
        let actor = try s.conversations.conversation(direct.id)
        let count = 3000
        let seqs = Mutex([Int: UInt64]())
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let remaining = Mutex(count)
            for i in 0..<count {
                actor.submit(SendRequest(from: i % 2 == 0 ? a : b, clientMsgId: "m\(i)", body: "n \(i)") { result in
                    if case .success(let sent) = result { seqs.withLock { $0[i] = sent.message.seq } }
                    if remaining.withLock({ $0 -= 1; return $0 }) == 0 { done.resume() }
                })
            }
        }
        let got = seqs.withLock { $0 }
        #expect(got.count == count)
        #expect((0..<count).map { got[$0] } == (1...count).map { UInt64($0) })
    }
}
