/// Owners pinned by `placementIsPinned`, recorded from ring version 1 (`chorus-ring-v1`). The hash
/// values were computed independently (Python: FNV-1a 64 then MurmurHash3 fmix64).
enum PinnedPlacement {
    static let threeNodes = ["node3", "node2", "node1", "node1", "node2"]
    static let emptyHash: UInt64 = 0xefd0_1f60_ba99_2926
    static let node1Vnode0: UInt64 = 0xed05_df87_2154_b279
}
