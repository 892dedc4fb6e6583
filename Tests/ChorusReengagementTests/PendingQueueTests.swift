import Testing

@testable import ChorusReengagement

@Suite struct PendingQueueTests {
    @Test func keepsQueueingOrderThroughRemovalsAnywhere() {
        var q = PendingQueue()
        for i in 0..<10 { q.append("m\(i)") }
        q.append("m3")  // already pending: once
        q.remove("m0")
        q.remove("m5")
        q.remove("nope")
        #expect(Array(q) == ["m1", "m2", "m3", "m4", "m6", "m7", "m8", "m9"])
        #expect(q.count == 8 && q.contains("m4") && !q.contains("m5"))
        q.append("m5")  // pending again (a new period): at the end
        #expect(Array(q).last == "m5")
    }

    @Test func compactionKeepsTheLiveOnesInOrder() {
        // Against a plain array model, with removals from the front, the back and the middle.
        var q = PendingQueue()
        var model: [String] = []
        var rng = SystemRandomNumberGenerator()
        for round in 0..<20_000 {
            if model.isEmpty || Int.random(in: 0..<3, using: &rng) > 0 {
                q.append("e\(round)")
                model.append("e\(round)")
            } else {
                let at = [0, model.count - 1, Int.random(in: 0..<model.count, using: &rng)].randomElement(using: &rng)!
                q.remove(model.remove(at: at))
            }
        }
        #expect(Array(q) == model)
        #expect(q.count == model.count)
        for id in model { q.remove(id) }
        #expect(q.isEmpty && Array(q).isEmpty)
    }

    @Test func equalityIgnoresRemovedEntries() {
        var a: PendingQueue = ["x", "y", "z"]
        a.remove("x")
        let b: PendingQueue = ["y", "z"]
        #expect(a == b)
        #expect(a != ["z", "y"])
    }
}
