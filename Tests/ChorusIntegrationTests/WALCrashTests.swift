import ChorusCore
import ChorusWAL
import Foundation
import Testing

/// Real crashes: a child process appends with `always` and prints each acknowledged LSN; the test
/// SIGKILLs it at random moments and checks every acknowledged record survived intact and in order.
@Suite(.serialized) struct WALCrashTests {
    @Test func sigkillAtRandomMomentsLosesNothingAcknowledged() async throws {
        let dir = ScratchDir("crash")
        defer { dir.cleanup() }
        var rng = SystemRandomNumberGenerator()
        var acked: [UInt64: (appender: UInt32, seq: UInt64)] = [:]
        let kills = 20
        for run in 0..<kills {
            let child = try Child(tool: [
                "wal", "torture", dir.path, "--appenders", "16", "--record-bytes", "200",
                "--segment-bytes", "\(64 << 10)", "--block-target-bytes", "\(8 << 10)",
                "--appender-base", "\(run * 100)",
            ])
            // Kill after a random number of acknowledgements: early (even before the first) or late.
            let target = Int.random(in: 0...600, using: &rng)
            var seen = 0
            while seen < target, let line = child.readLine() {
                if line.hasPrefix("ack ") { seen += 1 }
                record(line, into: &acked)
            }
            child.kill()
            // Acks already printed before the kill still count: drain the pipe to EOF.
            while let line = child.readLine() { record(line, into: &acked) }
            let (status, stderr) = child.wait()
            #expect(status == SIGKILL || stderr.isEmpty, "run \(run): \(stderr)")

            // Reopen and check: contiguous LSNs from 1, every acknowledged record intact.
            var byLSN: [UInt64: [UInt8]] = [:]
            var next: UInt64 = 1
            let (log, _) = try WriteAheadLog.open(directory: dir.path) { record in
                #expect(record.lsn == next, "records replay in LSN order without gaps")
                next = record.lsn + 1
                byLSN[record.lsn] = record.payload
            }
            try log.close()
            for (lsn, id) in acked {
                guard let payload = byLSN[lsn] else {
                    Issue.record("run \(run): acknowledged LSN \(lsn) lost")
                    continue
                }
                let decoded = TorturePayload.check(payload)
                #expect(decoded?.appender == id.appender && decoded?.seq == id.seq, "LSN \(lsn) holds other bytes")
            }
        }
        #expect(acked.count > 1000, "the runs acknowledged enough to mean something (\(acked.count))")
    }

    private func record(_ line: String, into acked: inout [UInt64: (appender: UInt32, seq: UInt64)]) {
        let parts = line.split(separator: " ")
        guard parts.count == 4, parts[0] == "ack", let lsn = UInt64(parts[1]), let a = UInt32(parts[2]), let s = UInt64(parts[3])
        else { return }
        acked[lsn] = (a, s)
    }
}
