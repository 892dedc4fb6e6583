/// Message-IDs still to send, in the order they were queued, with O(1) amortised append and
/// removal at any place: a removed id is only forgotten by `live`, skipped when iterating, stepped
/// over at the front at once, and the array is compacted when dead entries outnumber live ones.
/// (An array's `removeAll` per sent email made a burst of 1,000,000 due emails quadratic.)
/// Bound: one entry per pending email, so at most one per user of the node, plus as many dead.
public struct PendingQueue: Sendable, Sequence, ExpressibleByArrayLiteral {
    private var ids: [String] = []
    private var head = 0
    private var live: Set<String> = []

    public init() {}
    public init(arrayLiteral elements: String...) { for e in elements { append(e) } }

    public var count: Int { live.count }
    public var isEmpty: Bool { live.isEmpty }
    public func contains(_ id: String) -> Bool { live.contains(id) }

    public mutating func append(_ id: String) {
        guard live.insert(id).inserted else { return }
        ids.append(id)
    }

    public mutating func remove(_ id: String) {
        guard live.remove(id) != nil else { return }
        while head < ids.count, !live.contains(ids[head]) { head += 1 }
        let dead = ids.count - head - live.count
        if head == ids.count {
            ids.removeAll(keepingCapacity: true)
            head = 0
        } else if head > ids.count / 2 || dead > Swift.max(1_024, live.count) {
            ids = ids[head...].filter { live.contains($0) }
            head = 0
        }
    }

    public func makeIterator() -> LazyFilterSequence<ArraySlice<String>>.Iterator {
        let live = self.live
        return ids[head...].lazy.filter { live.contains($0) }.makeIterator()
    }
}

extension PendingQueue: Equatable {
    /// Equal when the same ids are pending in the same order (dead entries do not count).
    public static func == (a: PendingQueue, b: PendingQueue) -> Bool { a.count == b.count && a.elementsEqual(b) }
}
