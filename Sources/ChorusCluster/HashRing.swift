import ChorusCore

/// A consistent-hash ring with virtual nodes: every key (a user or conversation id) has exactly one
/// owner among the configured members, whatever their liveness. Pure and immutable: membership
/// changes build a new ring. Lookups are a hash and a binary search over `members x vnodes` tokens.
public struct HashRing: Sendable, Equatable {
    public let members: [String]
    public let vnodesPerMember: Int
    /// Sorted token positions, and the member index owning the arc that ends at each.
    let tokens: [UInt64]
    let owners: [UInt32]
    /// Identifies this exact ring (members and vnodes): peers with a different one refuse each other.
    public let signature: UInt64

    public static let defaultVnodes = 256

    /// A ring over `members` (order and duplicates do not matter).
    public init(members: some Sequence<String>, vnodesPerMember: Int = HashRing.defaultVnodes) {
        precondition(vnodesPerMember >= 1)
        let sorted = Array(Set(members)).sorted()
        precondition(!sorted.isEmpty, "a ring needs a member")
        self.members = sorted
        self.vnodesPerMember = vnodesPerMember
        var points: [(token: UInt64, owner: UInt32)] = []
        points.reserveCapacity(sorted.count * vnodesPerMember)
        for (i, member) in sorted.enumerated() {
            for v in 0..<vnodesPerMember { points.append((RingHash.hash("\(member)#\(v)"), UInt32(i))) }
        }
        // Equal tokens (vanishingly rare) are ordered by member so every node builds the same ring.
        points.sort { $0.token != $1.token ? $0.token < $1.token : sorted[Int($0.owner)] < sorted[Int($1.owner)] }
        tokens = points.map(\.token)
        owners = points.map(\.owner)
        var sig = RingHash.hash("chorus-ring-v1|\(vnodesPerMember)")
        for m in sorted { sig = RingHash.mix(sig ^ RingHash.hash(m)) }
        signature = sig
    }

    /// The member owning `key`: the first token at or after the key's hash, wrapping around.
    public func owner(of key: String) -> String { members[Int(ownerIndex(ofHash: RingHash.hash(key)))] }

    /// The member owning a point (see `KeyPoint`).
    public func owner(ofPoint point: UInt64) -> String { members[Int(ownerIndex(ofHash: point))] }

    /// The owner of a key already hashed with `RingHash.hash`.
    public func ownerIndex(ofHash h: UInt64) -> UInt32 {
        var low = 0, high = tokens.count
        while low < high {
            let mid = (low + high) >> 1
            if tokens[mid] < h { low = mid + 1 } else { high = mid }
        }
        return owners[low == tokens.count ? 0 : low]
    }

    /// The share of the hash space each member owns (sums to 1).
    public var shares: [String: Double] {
        var out = Dictionary(uniqueKeysWithValues: members.map { ($0, 0.0) })
        for i in tokens.indices {
            let start = i == 0 ? tokens[tokens.count - 1] : tokens[i - 1]
            let arc = tokens[i] &- start  // the wrap-around arc of index 0 works modulo 2^64
            out[members[Int(owners[i])], default: 0] += Double(arc) / 18_446_744_073_709_551_616.0
        }
        return out
    }

    public static func == (a: HashRing, b: HashRing) -> Bool { a.signature == b.signature && a.members == b.members }
}

/// The ring's hash: FNV-1a over UTF-8 then a 64-bit finalizer (FNV alone places similar ids, like
/// `node1#0` and `node1#1`, too close together). Stable across processes, versions and hosts.
public enum RingHash {
    public static func hash(_ s: String) -> UInt64 { mix(StableHash.fnv1a64(s)) }

    /// MurmurHash3's fmix64.
    public static func mix(_ x: UInt64) -> UInt64 {
        var k = x
        k ^= k >> 33
        k &*= 0xff51_afd7_ed55_8ccd
        k ^= k >> 33
        k &*= 0xc4ce_b9fe_1a85_ec53
        k ^= k >> 33
        return k
    }
}
