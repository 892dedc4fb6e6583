import ArgumentParser
import ChorusCLI
import ChorusFuzzTargets
import ChorusTestKit
import Foundation
import Glibc

/// `chorus-tools fuzz`: a seeded random-mutation harness over `FuzzTarget` (no coverage feedback;
/// the libFuzzer build, `chorus-fuzz`, has it). Starts from the checked-in seeds, mutates (bit
/// flips, byte edits, inserts, deletes, splices, truncations) for `--seconds`, and stops at the
/// first broken bound. A crash kills the process; the input being run is then in
/// `--artifacts/<target>-crash` (written by the signal handler) to replay with `--replay`.
struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz", abstract: "Mutation-fuzz the decoders of outside bytes (seeded, time-boxed).")

    @Argument(help: "A target (\(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))) or all.") var target: String
    @Option(help: "Seconds per target.") var seconds = 10.0
    @Option(help: "Random seed (a run is repeatable for a seed).") var seed: UInt64 = 1
    @Option(help: "Seed corpus root (one directory per target).") var corpus = "Tests/fuzz-corpus"
    @Option(help: "Where a crashing input is written.") var artifacts = "/tmp"
    @Option(help: "Run this one input file and exit.") var replay: String?
    @Flag(name: .customLong("export-seeds"), help: "Write each target's built-in seeds under --corpus and exit.") var exportSeeds = false

    func run() throws {
        let targets = target == "all" ? FuzzTarget.allCases : [try FuzzTarget(rawValue: target).orThrow(ValidationError("unknown target \(target)"))]
        if exportSeeds {
            for t in targets {
                let dir = corpus + "/" + t.rawValue
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for (i, s) in t.seeds.enumerated() { try Data(s).write(to: URL(fileURLWithPath: "\(dir)/seed-\(i)")) }
            }
            return Output.line("wrote the seeds under \(corpus)")
        }
        if let replay {
            let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: replay)))
            for t in targets { try t.run(data) }
            return Output.line("replayed \(replay): no finding")
        }
        for t in targets {
            let seeds = Self.seeds(corpus + "/" + t.rawValue, builtIn: t.seeds)
            let report = try Fuzzing(target: t, seeds: seeds, seed: seed, crashFile: "\(artifacts)/\(t.rawValue)-crash").run(seconds: seconds)
            Output.line("\(t.rawValue): \(report.runs) inputs in \(String(format: "%.1f", seconds)) s from \(seeds.count) seeds (seed \(seed)), no finding")
        }
    }

    /// The corpus directory's files (the exported seeds and any inputs added since), or the built-in seeds.
    static func seeds(_ directory: String, builtIn: [[UInt8]]) -> [[UInt8]] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.sorted() ?? []
        let files = names.compactMap { FileManager.default.contents(atPath: directory + "/" + $0).map { [UInt8]($0) } }
        return files.isEmpty ? builtIn + [[]] : files
    }
}

extension Optional {
    fileprivate func orThrow(_ error: some Error) throws -> Wrapped {
        guard let self else { throw error }
        return self
    }
}

/// One target's mutation loop. The input under test is mirrored in a buffer the crash handler
/// writes out (async-signal-safe: `write(2)` of memory allocated before the loop).
struct Fuzzing {
    let target: FuzzTarget
    let seeds: [[UInt8]]
    let seed: UInt64
    let crashFile: String
    static let maxInput = 1 << 16

    func run(seconds: Double) throws -> (runs: Int, Void) {
        CrashCapture.arm(path: crashFile, capacity: Self.maxInput)
        defer { CrashCapture.disarm() }
        var rng = SplitMix64(seed: seed)
        var pool = seeds
        let deadline = Date().addingTimeInterval(seconds)
        var runs = 0
        while runs % 256 != 0 || Date() < deadline {
            var input = pool[Int(rng.next() % UInt64(pool.count))]
            for _ in 0...(rng.next() % 4) { mutate(&input, &rng) }
            if input.count > Self.maxInput { input.removeLast(input.count - Self.maxInput) }
            CrashCapture.hold(input)
            try target.run(input)
            runs += 1
            // Keep some mutants as new starting points (a cheap stand-in for coverage feedback).
            if rng.next() % 64 == 0 { pool.append(input); if pool.count > 4096 { pool.removeFirst(pool.count - 4096) } }
        }
        return (runs, ())
    }

    private func mutate(_ b: inout [UInt8], _ rng: inout SplitMix64) {
        func at(_ n: Int) -> Int { n == 0 ? 0 : Int(rng.next() % UInt64(n)) }
        let interesting: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x7E, 0x22, 0x5C, 0x7B, 0x7D, 0x0A]
        switch rng.next() % 9 {
        case 0 where !b.isEmpty: b[at(b.count)] ^= UInt8(1 << (rng.next() % 8))
        case 1 where !b.isEmpty: b[at(b.count)] = UInt8(truncatingIfNeeded: rng.next())
        case 2 where !b.isEmpty: b[at(b.count)] = interesting[at(interesting.count)]
        case 3: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: at(b.count + 1))
        case 4 where !b.isEmpty: b.remove(at: at(b.count))
        case 5 where !b.isEmpty: b.removeLast(at(b.count) + 1)
        case 6:
            let other = seeds[at(seeds.count)]
            guard !other.isEmpty else { return }
            let from = at(other.count)
            b.insert(contentsOf: other[from..<min(other.count, from + 1 + at(64))], at: at(b.count + 1))
        case 7 where b.count >= 4:
            // A length-like field set to a boundary value.
            let i = at(b.count - 3)
            let v: UInt32 = [0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF][at(7)]
            for k in 0..<4 { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
        default:
            let n = at(16) + 1
            b.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at(b.count + 1))
        }
    }
}

/// Writes the input under test to a file when the process dies of a signal.
enum CrashCapture {
    nonisolated(unsafe) private static var buffer: UnsafeMutableRawPointer?
    nonisolated(unsafe) private static var capacity = 0
    nonisolated(unsafe) private static var length = 0
    nonisolated(unsafe) private static var fd: Int32 = -1
    nonisolated(unsafe) private static var path = ""
    static let signals = [SIGSEGV, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE]

    static func arm(path: String, capacity: Int) {
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        Self.capacity = capacity
        Self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        for s in signals {
            signal(s) { sig in
                if CrashCapture.fd >= 0, let b = CrashCapture.buffer { _ = write(CrashCapture.fd, b, CrashCapture.length) }
                signal(sig, SIG_DFL)
                raise(sig)
            }
        }
    }

    static func hold(_ input: [UInt8]) {
        length = min(input.count, capacity)
        guard length > 0 else { return }
        input.withUnsafeBytes { buffer?.copyMemory(from: $0.baseAddress!, byteCount: length) }
    }

    static func disarm() {
        for s in signals { signal(s, SIG_DFL) }
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(path)  // no crash: nothing to keep
        buffer?.deallocate()
        buffer = nil
    }
}
