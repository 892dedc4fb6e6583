import ChorusCore
import Testing

@Suite struct ByteCodingTests {
    @Test func integersRoundTripLittleEndian() throws {
        var w = ByteWriter()
        w.write(UInt8(0xAB))
        w.write(UInt16(0x1234))
        w.write(UInt32(0xDEAD_BEEF))
        w.write(UInt64.max - 1)
        w.write(Int64(-5))
        w.write(true)
        #expect(Array(w.bytes[1..<3]) == [0x34, 0x12])
        var r = ByteReader(w.bytes)
        #expect(try r.readUInt8() == 0xAB)
        #expect(try r.readUInt16() == 0x1234)
        #expect(try r.readUInt32() == 0xDEAD_BEEF)
        #expect(try r.readUInt64() == UInt64.max - 1)
        #expect(try r.readInt64() == -5)
        #expect(try r.readBool())
        #expect(r.isAtEnd)
    }

    @Test(arguments: [UInt64(0), 1, 127, 128, 300, 1 << 32, UInt64.max])
    func varintRoundTrips(_ value: UInt64) throws {
        var w = ByteWriter()
        w.writeVarint(value)
        #expect(w.count <= 10)
        var r = ByteReader(w.bytes)
        #expect(try r.readVarint() == value)
        #expect(r.isAtEnd)
    }

    @Test func varintByteTable() {
        var w = ByteWriter()
        w.writeVarint(300)
        #expect(w.bytes == [0xAC, 0x02])
    }

    @Test func malformedInputThrowsNeverTraps() {
        var overlong = ByteReader([UInt8](repeating: 0xFF, count: 11))
        #expect(throws: ByteReaderError.malformedVarint) { try overlong.readVarint() }
        var overflow = ByteReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02])
        #expect(throws: ByteReaderError.malformedVarint) { try overflow.readVarint() }
        var short = ByteReader([1, 2, 3])
        #expect(throws: ByteReaderError.truncated(needed: 4, remaining: 3)) { try short.readUInt32() }
        var long = ByteReader([0x80, 0x01, 1, 2])
        #expect(throws: ByteReaderError.lengthOverBound(length: 128, bound: 16)) { try long.readLengthPrefixed(bound: 16) }
        var notUTF8 = ByteReader([2, 0xC3, 0x28])
        #expect(throws: ByteReaderError.invalidUTF8) { try notUTF8.readString(bound: 16) }
    }

    @Test func stringsRoundTrip() throws {
        var w = ByteWriter()
        w.writeString("héllo, wörld 👋")
        var r = ByteReader(w.bytes)
        #expect(try r.readString(bound: 64) == "héllo, wörld 👋")
    }
}
