import ChorusCore
import ChorusTestKit
@testable import ChorusWAL
import Testing

/// The compression promise, checked on the same generator the benchmark uses (deterministic, so a
/// test and not a timing).
@Suite struct CompressionRatioTests {
    /// Raw and stored bytes of ~1 MiB of chat records cut into blocks of `blockBytes`.
    func ratio(blockBytes: Int, level: Int) -> Double {
        var generator = ChatRecordGenerator(seed: 7)
        let compressor = BlockCompressor(level: level)
        var rawTotal = 0
        var storedTotal = 0
        while rawTotal < 1 << 20 {
            var raw: [UInt8] = []
            var count = 0
            while raw.count < blockBytes {
                BlockCodec.appendRecord(kind: ChatRecordGenerator.kind, payload: generator.next(targetBytes: 200), to: &raw)
                count += 1
            }
            var block: [UInt8] = []
            BlockCodec.encodeBlock(firstLSN: 1, recordCount: count, raw: raw, into: &block, compressor: compressor)
            rawTotal += raw.count
            storedTotal += block.count - WALFormat.blockHeaderSize
        }
        return Double(rawTotal) / Double(storedTotal)
    }

    /// What the log stores long-term: sealed segments rewritten at the cold level in cold-size blocks.
    @Test func realisticChatRecordsCompressAtLeast1_8OnceSealed() throws {
        let defaults = WALOptions()
        let hot = ratio(blockBytes: 64 << 10, level: defaults.compressionLevel)
        let cold = ratio(blockBytes: defaults.coldBlockBytes, level: try #require(defaults.coldCompressionLevel))
        print("LZ4 ratio on chat records: commit path (64 KiB blocks, level \(defaults.compressionLevel)) \(hot), "
            + "sealed segments (\(defaults.coldBlockBytes >> 10) KiB blocks, level \(defaults.coldCompressionLevel!)) \(cold)")
        #expect(cold >= 1.8)
        #expect(hot >= 1.5)
    }

    @Test func aSingleRecordIsNeverStoredLarger() {
        var generator = ChatRecordGenerator(seed: 7)
        var raw: [UInt8] = []
        BlockCodec.appendRecord(kind: 1, payload: generator.next(targetBytes: 200), to: &raw)
        var block: [UInt8] = []
        BlockCodec.encodeBlock(firstLSN: 1, recordCount: 1, raw: raw, into: &block, compressor: BlockCompressor(level: 3))
        #expect(block.count - WALFormat.blockHeaderSize <= WALFormat.aligned(raw.count))
    }
}
