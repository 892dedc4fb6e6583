/// Decimal digits of integers written straight into a byte array (no `String` in between: frames and
/// log records carry several numbers each, written tens of thousands of times a second). Pure.
public enum DecimalDigits {
    /// How many digits `value` has in decimal (1 for 0).
    public static func digitCount(_ value: UInt64) -> Int {
        var n = 1
        var v = value
        while v >= 10 {
            v /= 10
            n += 1
        }
        return n
    }

    /// Appends `value` in decimal.
    public static func append(_ value: UInt64, to out: inout [UInt8]) {
        let end = out.count + digitCount(value)
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: end - out.count))
        var v = value
        var i = end - 1
        repeat {
            out[i] = UInt8(ascii: "0") + UInt8(v % 10)
            v /= 10
            i -= 1
        } while v > 0
    }

    /// Appends `value` in decimal, with a leading `-` when negative.
    public static func append(_ value: some BinaryInteger, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            append(UInt64(value.magnitude), to: &out)
        } else {
            append(UInt64(value), to: &out)
        }
    }
}
