/// Decimal digits of integers written straight into bytes (no `String` in between: frames and log
/// records carry several numbers each, written tens of thousands of times a second). Pure.
public enum DecimalDigits {
    /// How many digits `value` has in decimal (1 for 0).
    @inlinable public static func digitCount(_ value: UInt64) -> Int {
        var n = 1
        var v = value
        while v >= 10 {
            v /= 10
            n += 1
        }
        return n
    }

    /// Appends `value` in decimal.
    @inlinable public static func append(_ value: UInt64, to out: inout some ByteSink) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in  // UInt64.max has 20
            var v = value
            var i = 20
            repeat {
                i -= 1
                digits[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            } while v > 0
            out.appendBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(digits)[i...]))
        }
    }

    /// Appends `value` in decimal, with a leading `-` when negative.
    @inlinable public static func append(_ value: some BinaryInteger, to out: inout some ByteSink) {
        if value < 0 { out.appendByte(UInt8(ascii: "-")) }
        append(UInt64(value.magnitude), to: &out)
    }
}
