/// A torn tail that recovery cut off: the last write before a crash, never acknowledged.
public struct TornTail: Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var offset: Int
    public var bytesDropped: Int
    public var reason: String

    public var description: String { "\(file) at offset \(offset): \(bytesDropped) bytes dropped (\(reason))" }
}

/// Damage that recovery refuses to skip: a bad region followed by valid data, a gap, a bad header.
public struct DamageReport: Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var offset: Int
    public var reason: String

    public var description: String { "\(file) at offset \(offset): \(reason)" }
}

/// One segment as recovery sees it: its file name, the LSN its name claims, and what a scan found.
public struct SegmentInput: Sendable {
    public var file: String
    public var nameLSN: UInt64
    public var header: Result<UInt64, SegmentHeaderError>
    public var scan: SegmentScan?
    /// The header says the segment was rewritten by compaction.
    public var compacted: Bool

    public init(
        file: String, nameLSN: UInt64, header: Result<UInt64, SegmentHeaderError>, scan: SegmentScan?, compacted: Bool = false
    ) {
        self.file = file
        self.nameLSN = nameLSN
        self.header = header
        self.scan = scan
        self.compacted = compacted
    }
}

/// What recovery will do to the files before the log opens for writing.
public struct RecoveryPlan: Equatable, Sendable {
    /// Segments kept, by index into the input, in order.
    public var keep: [Int]
    /// Torn tail to cut from the last kept segment.
    public var truncation: TornTail?
    /// Segments after a torn tail that hold nothing valid: deleted, with the non-zero bytes they held.
    public var remove: [(index: Int, bytes: Int)]
    /// The LSN the next append receives (nil when there are no segments).
    public var nextLSN: UInt64?

    public static func == (a: RecoveryPlan, b: RecoveryPlan) -> Bool {
        a.keep == b.keep && a.truncation == b.truncation && a.nextLSN == b.nextLSN
            && a.remove.map(\.index) == b.remove.map(\.index) && a.remove.map(\.bytes) == b.remove.map(\.bytes)
    }
}

public enum RecoveryDecision: Equatable, Sendable {
    case recover(RecoveryPlan)
    case damaged(DamageReport)
}

/// Decides between "recover (maybe cutting a torn tail)" and "refuse: damaged". Pure.
///
/// Rules: segments must chain (each starts at the LSN after the previous one ends); a bad block is a
/// torn tail only if no valid block follows it anywhere in the log; a checksummed block with the
/// wrong LSN is damage.
public enum RecoveryPlanner {
    public static func plan(_ segments: [SegmentInput]) -> RecoveryDecision {
        var expected: UInt64?
        for (i, seg) in segments.enumerated() {
            let headerLSN: UInt64
            switch seg.header {
            case .failure(let e): return .damaged(DamageReport(file: seg.file, offset: 0, reason: e.description))
            case .success(let lsn): headerLSN = lsn
            }
            guard headerLSN == seg.nameLSN else {
                return .damaged(DamageReport(
                    file: seg.file, offset: 0, reason: "header says first LSN \(headerLSN), file name says \(seg.nameLSN)"))
            }
            if let e = expected, headerLSN != e {
                return .damaged(DamageReport(
                    file: seg.file, offset: 0, reason: "log gap: segment starts at LSN \(headerLSN), expected \(e)"))
            }
            guard let scan = seg.scan else {
                return .damaged(DamageReport(file: seg.file, offset: 0, reason: "segment was not scanned"))
            }
            switch scan.end {
            case .clean:
                expected = scan.nextLSN
            case .lsnGap(let offset, let exp, let found):
                return .damaged(DamageReport(
                    file: seg.file, offset: offset, reason: "block holds LSN \(found), expected \(exp)"))
            case .bad(let offset, let reason, let garbageEnd, let nextValid):
                if let nv = nextValid {
                    return .damaged(DamageReport(
                        file: seg.file, offset: offset, reason: "\(reason); a valid block follows at offset \(nv)"))
                }
                var remove: [(index: Int, bytes: Int)] = []
                for j in (i + 1)..<segments.count {
                    let later = segments[j]
                    guard case .success = later.header, let s = later.scan else {
                        return .damaged(DamageReport(
                            file: seg.file, offset: offset, reason: "\(reason); followed by segment \(later.file) with a bad header"))
                    }
                    if !s.blocks.isEmpty || s.nextValidBlock != nil {
                        return .damaged(DamageReport(
                            file: seg.file, offset: offset, reason: "\(reason); valid blocks follow in \(later.file)"))
                    }
                    remove.append((j, s.garbageBytes))
                }
                let tail = TornTail(
                    file: seg.file, offset: offset, bytesDropped: garbageEnd - offset, reason: reason.description)
                return .recover(RecoveryPlan(
                    keep: Array(0...i), truncation: tail, remove: remove, nextLSN: scan.nextLSN))
            }
        }
        return .recover(RecoveryPlan(keep: Array(segments.indices), truncation: nil, remove: [], nextLSN: expected))
    }
}

extension SegmentScan {
    /// Offset of a valid block after a bad region, if the scan found one.
    var nextValidBlock: Int? {
        if case .bad(_, _, _, let nv) = end { return nv }
        return nil
    }

    /// Non-zero bytes past the last valid block (what deleting or truncating it drops).
    var garbageBytes: Int {
        if case .bad(let offset, _, let garbageEnd, _) = end { return garbageEnd - offset }
        return 0
    }
}
