import ChorusWAL

/// Renders an inspection for people: one line per segment, then the verdict.
enum InspectionText {
    static func render(_ i: WALInspection, verbose: Bool) -> String {
        var lines: [String] = ["log: \(i.directory)"]
        if verbose {
            for s in i.segments {
                var line = "segment \(s.file): first LSN \(s.firstLSN), \(s.blocks) blocks (\(s.compressedBlocks) LZ4), "
                    + "\(s.records) records, \(s.usedBytes) of \(s.fileBytes) bytes used"
                    + (s.compacted ? ", compacted" : "")
                    + (s.storedBytes > 0 ? ", ratio \(String(format2: Double(s.rawBytes) / Double(s.storedBytes)))" : "")
                if let e = s.headerError { line += ", BAD HEADER: \(e)" }
                if let end = s.end, case .bad(let offset, let reason, let garbageEnd, _) = end {
                    line += ", bad bytes at \(offset)..<\(garbageEnd): \(reason)"
                }
                lines.append(line)
            }
            for snap in i.snapshots {
                lines.append("snapshot \(snap.file): LSN \(snap.lsn)" + (snap.error.map { ", INVALID: \($0)" } ?? ""))
            }
            for t in i.temporaryFiles { lines.append("temporary file \(t) (removed at next open)") }
        }
        let first = i.segments.first?.firstLSN ?? 0
        lines.append(
            "segments: \(i.segments.count), blocks: \(i.blockCount), records: \(i.recordCount), "
                + "LSN range: \(i.recordCount == 0 ? "empty" : "\(first)...\(first + UInt64(i.recordCount) - 1)"), "
                + "compression ratio: \(String(format2: i.compressionRatio))")
        switch i.decision {
        case .damaged(let d):
            lines.append("DAMAGED: \(d)")
        case .recover(let plan):
            if let t = plan.truncation {
                lines.append("clean, with a torn tail that the next open cuts: \(t)")
            } else {
                lines.append("clean")
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    init(format2 value: Double) {
        let scaled = (value * 100).rounded()
        self = "\(Int(scaled) / 100).\(String(Int(scaled) % 100).leftPadded(2))"
    }

    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
