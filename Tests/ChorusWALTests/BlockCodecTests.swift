import ChorusTestKit
import ChorusCore
@testable import ChorusWAL
import Testing

@Suite struct BlockCodecTests {
    func encode(_ records: [(UInt16, [UInt8])], firstLSN: UInt64 = 42) -> [UInt8] {
        var raw: [UInt8] = []
        for (k, p) in records { BlockCodec.appendRecord(kind: k, payload: p, to: &raw) }
        var out: [UInt8] = []
        BlockCodec.encodeBlock(firstLSN: firstLSN, recordCount: records.count, raw: raw, into: &out, compressor: BlockCompressor())
        return out
    }

    func decode(_ block: [UInt8]) throws -> [JournalRecord] {
        try block.withUnsafeBytes { buf in
            let header = try BlockCodec.validate(buf, at: 0).get()
            let payload = UnsafeRawBufferPointer(rebasing: buf[32..<(32 + header.storedLength)])
            var scratch: [UInt8] = []
            var out: [JournalRecord] = []
            try BlockCodec.decodeRecords(header: header, payload: payload, scratch: &scratch) { out.append($0) }
            return out
        }
    }

    @Test func compressibleRecordsRoundTripAsLZ4() throws {
        let records = (0..<50).map { (UInt16($0 % 4), payload($0, size: 120)) }
        let block = encode(records)
        #expect(block[5] == WALFormat.flagLZ4)
        #expect(block.count % 8 == 0)
        let decoded = try decode(block)
        #expect(decoded.map(\.lsn) == Array(42..<92))
        #expect(decoded.map(\.kind) == records.map(\.0))
        #expect(decoded.map(\.payload) == records.map(\.1))
    }

    @Test func incompressibleRecordIsStoredRaw() throws {
        var rng = SplitMix64(seed: 1)
        let noise = (0..<64).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let block = encode([(9, noise)])
        #expect(block[5] == 0)
        #expect(try decode(block).first?.payload == noise)
    }

    @Test func headerByteTable() {
        let block = encode([(0x0102, [0xAA, 0xBB])], firstLSN: 0x1122_3344_5566_7788)
        // magic "CHWL", version 1, flags 0 (8 raw bytes do not compress), reserved.
        #expect(Array(block[0..<8]) == [0x43, 0x48, 0x57, 0x4C, 1, 0, 0, 0])
        // raw length 8 = kind(2) + length(4) + payload(2); stored length 8.
        #expect(Array(block[8..<16]) == [8, 0, 0, 0, 8, 0, 0, 0])
        #expect(Array(block[16..<24]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(Array(block[24..<28]) == [1, 0, 0, 0])
        // payload: kind LE, length LE, bytes; then zero padding to 40.
        #expect(Array(block[32..<40]) == [0x02, 0x01, 2, 0, 0, 0, 0xAA, 0xBB])
        #expect(block.count == 40)
        let crc = CRC32C.checksum(Array(block[32..<40]), continuing: CRC32C.checksum(Array(block[0..<28])))
        #expect(Array(block[28..<32]) == [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)])
    }

    /// Rewrites header fields and the CRC, so only the bounds checks can refuse the block.
    func forge(_ block: [UInt8], _ edit: (inout [UInt8]) -> Void) -> [UInt8] {
        var b = block
        edit(&b)
        let stored = Int(b[12]) | Int(b[13]) << 8 | Int(b[14]) << 16 | Int(b[15]) << 24
        let end = min(b.count, 32 + stored)
        let crc = CRC32C.checksum(Array(b[32..<end]), continuing: CRC32C.checksum(Array(b[0..<28])))
        b.storeLE(crc, at: 28)
        return b
    }

    @Test func boundsAreCheckedBeforeAnythingElse() {
        let block = encode((0..<10).map { (1, payload($0)) })
        let overRaw = forge(block) { $0.storeLE(UInt32(WALFormat.maxBlockRawBytes + 1), at: 8) }
        let zeroCount = forge(block) { $0.storeLE(UInt32(0), at: 24) }
        let tooMany = forge(block) { $0.storeLE(UInt32(1_000_000), at: 24) }
        let pastEnd = forge(block) { $0.storeLE(UInt32(4000), at: 12) }
        let badFlags = forge(block) { $0[5] = 0x80 }
        let badVersion = forge(block) { $0[4] = 9 }
        for (name, bytes) in [("raw", overRaw), ("zero count", zeroCount), ("count", tooMany),
                              ("past end", pastEnd), ("flags", badFlags), ("version", badVersion)] {
            let result = bytes.withUnsafeBytes { BlockCodec.validate($0, at: 0) }
            guard case .failure(let e) = result else {
                Issue.record("\(name): accepted")
                continue
            }
            #expect(!(e == .checksumMismatch(stored: 0, computed: 0)), "\(name)")
        }
    }

    @Test func lz4MustProduceExactlyTheDeclaredSize() throws {
        // A block whose CRC matches but whose declared raw length is one byte short.
        let block = encode((0..<20).map { (1, payload($0, size: 100)) })
        #expect(block[5] == WALFormat.flagLZ4)
        let lying = forge(block) { b in
            let raw = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16
            b.storeLE(UInt32(raw - 1), at: 8)
        }
        #expect(throws: BlockError.decompressionFailed) { try decode(lying) }
    }

    @Test func nonZeroPaddingIsRefused() {
        var block = encode([(1, [1, 2, 3])])
        #expect(block.count == 48)  // 32 header + 9 raw, padded to 8
        block[47] = 1
        let result = block.withUnsafeBytes { BlockCodec.validate($0, at: 0) }
        #expect(result == .failure(.paddingNotZero))
    }
}
