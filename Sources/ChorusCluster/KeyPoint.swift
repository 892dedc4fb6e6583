import ChorusCore

/// Where a key sits on the ring: a 64-bit point whose low 24 bits are zero.
///
/// Keys that must live together carry the same point, so any ring (before or after a membership
/// change) gives them the same owner and a hand-over moves them together:
/// - a username's point is the hash of `name:<username>`; its user's id carries that point;
/// - a direct pair's point is the hash of `pair:<low>|<high>`; the pair's conversation id carries it;
/// - a group's id carries a point drawn at random (until the creating node owns it).
///
/// Minted ids are `<prefix>_<8 base32 point chars><5 random base32 chars>`: fifteen bytes, so Swift
/// keeps them inline in a String. Any other string (an id from a client, a test's id) sits at its
/// own hash, truncated the same way, so every string has exactly one owner.
public enum KeyPoint {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
    /// Base32 digit values by ASCII byte; 0xFF for bytes outside the alphabet.
    static let digits: [UInt8] = {
        var d = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { d[Int(c)] = UInt8(i) }
        return d
    }()
    /// The 40 significant bits of a point.
    public static let mask: UInt64 = 0xFFFF_FFFF_FF00_0000

    /// The point of any string: the one a minted id carries, else its truncated hash.
    public static func of(id: String) -> UInt64 {
        if id.utf8.count == 15, let point = id.utf8.withContiguousStorageIfAvailable(embedded) ?? embedded(Array(id.utf8)) {
            return point
        }
        return RingHash.hash(id) & mask
    }

    /// The point an id of the minted shape carries; nil for any other shape.
    static func embedded(_ b: some RandomAccessCollection<UInt8>) -> UInt64? {
        guard b.count == 15 else { return nil }
        let start = b.startIndex
        guard b[b.index(start, offsetBy: 1)] == 0x5F else { return nil }
        var value: UInt64 = 0
        for k in 2..<10 {
            let d = digits[Int(b[b.index(start, offsetBy: k)])]
            guard d != 0xFF else { return nil }
            value = value << 5 | UInt64(d)
        }
        return value << 24
    }

    public static func of(username: String) -> UInt64 { RingHash.hash("name:" + username) & mask }

    public static func of(pair a: String, _ b: String) -> UInt64 {
        RingHash.hash("pair:" + (a < b ? "\(a)|\(b)" : "\(b)|\(a)")) & mask
    }

    /// A fresh id carrying `point`: `prefix` (one ASCII letter), `_`, the point, 25 random bits.
    /// Callers that store ids check them for collisions.
    public static func mint(prefix: UInt8, point: UInt64, using rng: inout some RandomNumberGenerator) -> String {
        var out: [UInt8] = [prefix, 0x5F]
        out.reserveCapacity(15)
        let value = point >> 24
        for k in stride(from: 35, through: 0, by: -5) { out.append(alphabet[Int((value >> UInt64(k)) & 31)]) }
        for _ in 0..<5 { out.append(alphabet[Int(rng.next(upperBound: UInt32(32)))]) }
        return String(decoding: out, as: UTF8.self)
    }
}
