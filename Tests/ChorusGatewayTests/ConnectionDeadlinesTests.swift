@testable import ChorusGateway
import Testing

@Suite struct ConnectionDeadlinesTests {
    @Test func aRequestMustArriveWholeThenTheConnectionMayIdle() {
        var d = ConnectionDeadlines(headerTimeoutMs: 10_000, idleTimeoutMs: 60_000)
        #expect(d.on(.opened) == .arm(10_000), "a head within the header timeout")
        #expect(d.on(.head) == .arm(10_000), "its body within the same allowance")
        #expect(d.on(.end) == .stop, "the server owes the answer")
        #expect(d.on(.responded) == .arm(60_000), "answered: idle until the next request")
        #expect(d.on(.head) == .arm(10_000))
    }

    @Test func pipelinedRequestsKeepTheClockStoppedUntilTheLastAnswer() {
        var d = ConnectionDeadlines(headerTimeoutMs: 1_000, idleTimeoutMs: 5_000)
        _ = d.on(.opened)
        _ = d.on(.head)
        _ = d.on(.end)
        _ = d.on(.head)
        _ = d.on(.end)
        #expect(d.on(.responded) == .stop, "one answer still owed")
        #expect(d.on(.responded) == .arm(5_000))
        _ = d.on(.head)
        #expect(d.on(.responded) == .arm(1_000), "a request half read when an answer leaves: its own allowance")
    }
}
