import ChorusCore
import Testing

@Suite struct DecimalDigitsTests {
    @Test(arguments: [UInt64(0), 7, 9, 10, 99, 100, 12_345, 1 << 32, UInt64.max])
    func unsignedMatchesTheStandardLibrary(_ v: UInt64) {
        var out: [UInt8] = [0x41]
        DecimalDigits.append(v, to: &out)
        #expect(out == [0x41] + Array(String(v).utf8))
        #expect(DecimalDigits.digitCount(v) == String(v).count)
    }

    @Test(arguments: [Int64(0), -1, 42, -10, Int64.max, Int64.min])
    func signedMatchesTheStandardLibrary(_ v: Int64) {
        var out: [UInt8] = []
        DecimalDigits.append(v, to: &out)
        #expect(out == Array(String(v).utf8))
    }

    @Test func aMessageIdIsWrittenAsItsLengthPrefixedString() {
        var direct = ByteWriter(), built = ByteWriter()
        direct.writeString("c_1", UInt8(ascii: ":"), 1_234_567)
        built.writeString("c_1:1234567")
        #expect(direct.bytes == built.bytes)
    }
}

@Suite struct BoundedByteSinkTests {
    @Test func writesUpToItsEndThenReportsOverflow() {
        var storage = [UInt8](repeating: 0, count: 5)
        storage.withUnsafeMutableBytes { raw in
            var sink = BoundedByteSink(raw)
            sink.appendByte(1)
            ([2, 3, 4] as [UInt8]).withUnsafeBytes { sink.appendBytes($0) }
            #expect(sink.count == 4 && !sink.overflowed)
            ([5, 6] as [UInt8]).withUnsafeBytes { sink.appendBytes($0) }  // does not fit: nothing of it is written
            #expect(sink.count == 4 && sink.overflowed)
            sink.appendByte(5)
            #expect(sink.count == 5)
            sink.appendByte(6)
            #expect(sink.count == 5 && sink.overflowed)
        }
        #expect(storage == [1, 2, 3, 4, 5])
    }
}
