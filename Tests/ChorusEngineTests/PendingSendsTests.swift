@testable import ChorusEngine
import Testing

/// The in-flight table answers exactly what a dictionary answers, whichever entry sits inline.
@Suite struct PendingSendsTests {
    @Test func answersLikeADictionaryThroughInsertsAndRemovals() {
        var rng = VarintBlocksTests.Rng(state: 11)
        var model: [String: UInt64] = [:]
        var pending = PendingSends()
        let ids = (0..<6).map { "c\($0)" }
        for step in 0..<5_000 {
            let id = ids[Int(rng.below(UInt64(ids.count)))]
            if rng.below(2) == 0 {
                model[id] = UInt64(step)
                pending.insert(id, seq: UInt64(step))
            } else {
                model[id] = nil
                pending.remove(id)
            }
            if step % 97 == 0 { pending.releaseStorage() }
            #expect(pending.count == model.count, "step \(step)")
            #expect(pending.isEmpty == model.isEmpty, "step \(step)")
            for i in ids { #expect(pending[i] == model[i], "step \(step), \(i)") }
        }
    }

    @Test func oneInFlightNeedsNoTableAndAnIdleTableIsGivenBack() {
        var pending = PendingSends()
        pending.insert("a", seq: 1)
        pending.insert("b", seq: 2)
        pending.remove("a")
        pending.insert("c", seq: 3)  // inline again, beside "b" in the table
        #expect(pending["b"] == 2 && pending["c"] == 3 && pending["a"] == nil)
        pending.remove("b")
        pending.remove("c")
        #expect(pending.isEmpty)
        pending.releaseStorage()
        #expect(pending.isEmpty && pending["b"] == nil)
    }
}

