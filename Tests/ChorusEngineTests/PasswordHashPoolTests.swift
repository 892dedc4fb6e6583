import ChorusCore
import ChorusEngine
import ChorusTestKit
import Dispatch
import Synchronization
import Testing

/// The password-hash pool is bounded: past `maxPending` a request is refused at once, and the
/// slots come back when the work finishes.
@Suite struct PasswordHashPoolTests {
    @Test func pastTheBoundARequestIsRefusedAtOnceAndSlotsComeBack() async throws {
        let pool = PasswordHashPool(workers: 1, maxPending: 2)
        let gate = DispatchSemaphore(value: 0)
        let started = AsyncStream<Void>.makeStream()
        // Two hashes held: one running (blocked on the gate), one queued behind it.
        let held = (0..<2).map { _ in
            Task { try await pool.run { started.continuation.yield(); gate.wait(); return 1 } }
        }
        var it = started.stream.makeAsyncIterator()
        _ = await it.next()  // the first is running
        while pool.pendingCount < 2 { await Task.yield() }
        await #expect(throws: ChatError.unavailable("too many password hashes waiting; retry shortly")) {
            try await pool.run { 3 }
        }
        gate.signal()
        gate.signal()
        for t in held { #expect(try await t.value == 1) }
        #expect(pool.pendingCount == 0)
        #expect(try await pool.run { 4 } == 4)
    }

    @Test func registrationsAreLimitedPerClientAddress() async throws {
        var config = Accounts.Configuration()
        config.hasher = PasswordHasher(iterations: PasswordHasher.insecureFastIterations)
        config.registerRateLimit = RateLimitSetting(rate: 1, burst: 2)
        let clock = ManualClock()
        let accounts = Accounts(state: AccountsState(), journal: InMemoryJournal(), clock: clock, configuration: config)
        func register(_ name: String, from address: String) async throws -> UserRecord {
            try await accounts.register(username: name, password: "password1", email: "\(name)@example.com", displayName: nil, clientAddress: address)
        }
        _ = try await register("ann1", from: "10.0.0.1")
        _ = try await register("ann2", from: "10.0.0.1")
        await #expect(throws: ChatError.rateLimited(retryAfterMs: 1000)) { try await register("ann3", from: "10.0.0.1") }
        _ = try await register("bob1", from: "10.0.0.2")  // another address has its own bucket
        clock.advance(ms: 1000)
        _ = try await register("ann3", from: "10.0.0.1")
    }
}
