extension HashRing {
    /// The first `count` distinct members met walking clockwise from `point` (its owner first):
    /// a point's replica set. Fewer when the ring has fewer members.
    public func distinctOwners(fromPoint point: UInt64, count: Int) -> [String] {
        let wanted = min(count, members.count)
        guard wanted > 0 else { return [] }
        var low = 0, high = tokens.count
        while low < high {
            let mid = (low + high) >> 1
            if tokens[mid] < point { low = mid + 1 } else { high = mid }
        }
        var out: [String] = []
        out.reserveCapacity(wanted)
        var seen = Set<UInt32>()
        var i = low == tokens.count ? 0 : low
        // At most one lap: every member has a token, so `wanted` distinct ones are met within it.
        for _ in 0..<tokens.count where out.count < wanted {
            if seen.insert(owners[i]).inserted { out.append(members[Int(owners[i])]) }
            i = i + 1 == tokens.count ? 0 : i + 1
        }
        return out
    }
}
