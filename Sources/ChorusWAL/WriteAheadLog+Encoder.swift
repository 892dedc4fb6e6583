import ChorusCore
import Dispatch
import Glibc

/// The encoder's private state. Touched only on `WriteAheadLog.writerQueue`.
final class EncoderContext: @unchecked Sendable {
    var raw: [UInt8] = []
    let compressor: BlockCompressor
    /// An empty pending list with capacity, swapped in when a batch takes everything waiting: no
    /// allocation per commit (a copy of a list grown by a burst cost a large malloc and free each).
    var spare: [PendingAppend] = []
    /// The last commit's arrays, emptied, refilled by the next `encode`. A commit's bytes are usually
    /// over glibc's thread-cache limit (1 KiB): a fresh array each time cost a slow-path malloc that
    /// also consolidated the heap's fast bins, on every commit.
    var out = EncodedBatch()

    init(compressionLevel: Int) { compressor = BlockCompressor(level: compressionLevel) }
}

/// A group commit ready for the disk: its blocks back to back, and whom to tell when it is durable.
struct EncodedBatch: Sendable {
    struct Block: Sendable {
        var firstLSN: UInt64
        var records: Int
        var rawBytes: Int
        var size: Int
    }

    var bytes: [UInt8] = []
    var blocks: [Block] = []
    var waiters: [(lsn: UInt64, completion: AppendCompletion)] = []
    var lastLSN: UInt64 = 0

    /// Empties the batch for reuse. Arrays grown past `limit` bytes are let go, and so are waiters
    /// handed to the completion queue (still shared: keeping their capacity would copy them).
    mutating func recycle(keepingCapacity limit: Int, waitersHandedOff: Bool) {
        bytes.removeAll(keepingCapacity: bytes.capacity <= limit)
        blocks.removeAll(keepingCapacity: blocks.capacity <= limit / 32)
        if waitersHandedOff { waiters = [] } else { waiters.removeAll(keepingCapacity: waiters.capacity <= limit / 32) }
        lastLSN = 0
    }
}

extension WriteAheadLog {
    /// Runs on writerQueue: takes what waits, encodes it and persists it, until nothing waits.
    /// Appends that arrive during a write or fdatasync form the next group commit. Encoding is
    /// not a stage of its own: it costs microseconds per commit, and a thread hand-off per batch
    /// cost more than it saved at low rates (each hand-off is a futex wake and a context switch).
    /// `onLoop`: a `CommitDeferral` runs it on the event loop whose appends it holds.
    func writeLoop(onLoop: Bool = false) {
        while var batch = takeBatch(paced: !onLoop) {
            var encoded = encode(batch)
            let handedOff = persist(encoded, onLoop: onLoop)
            batch.removeAll(keepingCapacity: batch.capacity <= Self.spareCapacityLimit)
            encoder.spare = batch
            encoded.recycle(keepingCapacity: Self.spareBytesLimit, waitersHandedOff: handedOff)
            encoder.out = encoded
        }
    }

    /// A recycled pending list keeps at most this many slots.
    static let spareCapacityLimit = 1 << 16
    /// A recycled commit keeps its byte array up to this capacity (a burst's bigger one is freed).
    static let spareBytesLimit = 4 << 20

    /// Takes what waits, up to `maxBatchBytes`; nil (and the encoder unscheduled) when nothing does.
    /// `paced`: on the writer thread, first wait out `minCommitIntervalMicroseconds` since the last
    /// commit began (`CommitPacing`); never on an event loop.
    private func takeBatch(paced: Bool) -> [PendingAppend]? {
        if paced && options.minCommitIntervalMicroseconds > 0 { pace() }
        let limit = options.maxBatchBytes
        return state.withLock { s -> [PendingAppend]? in
            guard s.failure == nil, !s.pending.isEmpty else {
                s.writerScheduled = false
                return nil
            }
            var bytes = 0
            var n = 0
            while n < s.pending.count {
                let size = s.pending[n].payload.count + WALFormat.recordHeaderSize
                // Only between batches: a batch's records are written together or not at all.
                if n > 0 && bytes + size > limit && s.pending[n - 1].completion != nil { break }
                bytes += size
                n += 1
            }
            s.pendingBytes -= bytes
            if n == s.pending.count {
                // The kept empty list becomes the pending one; what waited is returned.
                var taken: [PendingAppend] = []
                swap(&taken, &encoder.spare)
                swap(&taken, &s.pending)
                return taken
            }
            defer { s.pending.removeFirst(n) }
            return Array(s.pending[0..<n])
        }
    }

    /// Frames and compresses a batch into blocks of about `blockTargetBytes` raw bytes each. Pure CPU.
    private func encode(_ batch: [PendingAppend]) -> EncodedBatch {
        let e = encoder
        var out = EncodedBatch()
        swap(&out, &e.out)
        out.lastLSN = batch[batch.count - 1].lsn
        // Reserve once: stored bytes never exceed raw bytes, plus a header and padding per block.
        var rawBytes = 0
        for p in batch { rawBytes += p.payload.count + WALFormat.recordHeaderSize }
        let blockEstimate = rawBytes / max(options.blockTargetBytes, 1) + 1
        out.bytes.reserveCapacity(rawBytes + blockEstimate * (WALFormat.blockHeaderSize + WALFormat.alignment))
        out.blocks.reserveCapacity(blockEstimate)
        out.waiters.reserveCapacity(batch.count)
        var i = 0
        while i < batch.count {
            e.raw.removeAll(keepingCapacity: true)
            let firstLSN = batch[i].lsn
            var count = 0
            while i < batch.count {
                let size = batch[i].payload.count + WALFormat.recordHeaderSize
                // A block closes only between batches, so a batch is never split across blocks and a
                // torn tail (cut at a block boundary) can never keep half of one.
                if count > 0 && e.raw.count + size > options.blockTargetBytes && batch[i - 1].completion != nil { break }
                BlockCodec.appendRecord(kind: batch[i].kind, payload: batch[i].payload, to: &e.raw)
                if let c = batch[i].completion { out.waiters.append((batch[i].lsn, c)) }
                count += 1
                i += 1
            }
            let start = out.bytes.count
            BlockCodec.encodeBlock(firstLSN: firstLSN, recordCount: count, raw: e.raw, into: &out.bytes, compressor: e.compressor)
            out.blocks.append(.init(firstLSN: firstLSN, records: count, rawBytes: e.raw.count, size: out.bytes.count - start))
        }
        return out
    }
}

extension WriteAheadLog {
    /// Runs on writerQueue: sleeps until the next commit may start, if appends wait for one.
    fileprivate func pace() {
        guard state.withLock({ !$0.pending.isEmpty }) else { return }
        let now = ContinuousClock.now
        let wait = CommitPacing.wait(
            sincePrevious: writer.lastCommitStart.map { now - $0 }, interval: .microseconds(options.minCommitIntervalMicroseconds))
        if wait > .zero { usleep(UInt32(wait / .microseconds(1))) }
        writer.lastCommitStart = wait > .zero ? now + wait : now
    }
}
