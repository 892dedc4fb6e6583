/// Self-checking record payloads for crash tests: `appender u32 | seq u64 | filler`, where the filler
/// is a pure function of (appender, seq). A reader can tell an intact record from any other bytes.
public enum TorturePayload {
    public static let kind: UInt16 = 0xFFF0

    public static func make(appender: UInt32, seq: UInt64, size: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(max(size, 12))
        out.appendLE(appender)
        out.appendLE(seq)
        var x = (UInt64(appender) << 40) ^ seq ^ 0x9E37_79B9_7F4A_7C15
        while out.count < size {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            out.append(UInt8(truncatingIfNeeded: x))
        }
        return out
    }

    /// The (appender, seq) of an intact payload, or nil if the bytes are not exactly what `make` gives.
    public static func check(_ payload: [UInt8]) -> (appender: UInt32, seq: UInt64)? {
        guard payload.count >= 12 else { return nil }
        let (appender, seq) = payload.withUnsafeBytes { ($0.le(0, as: UInt32.self), $0.le(4, as: UInt64.self)) }
        return make(appender: appender, seq: seq, size: payload.count) == payload ? (appender, seq) : nil
    }
}
