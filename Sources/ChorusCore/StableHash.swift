/// FNV-1a, 64 bits: a hash that is the same in every process and every run (Swift's `Hasher` is
/// seeded per process), for values that are stored or compared across restarts.
public enum StableHash {
    public static func fnv1a64(_ s: String) -> UInt64 { fnv1a64(bytes: s.utf8) }
}

extension StableHash {
    /// The same hash over raw UTF-8 bytes (equal to `fnv1a64(String)` for the string they spell).
    public static func fnv1a64<C: Collection<UInt8>>(bytes: C) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01B3
        }
        return h
    }
}
