import ChorusFuzzTargets

// libFuzzer's entry (PROTOCOL.md section 6, "Fuzzing"; docs/SECURITY.md): built only with
//   swift build --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
//       -Xswiftc -DCHORUS_LIBFUZZER --product chorus-fuzz
// and run as `CHORUS_FUZZ_TARGET=peer .build-fuzz/debug/chorus-fuzz Tests/fuzz-corpus/peer`.
// An ordinary build makes a binary that only says so.
#if CHORUS_LIBFUZZER
import Glibc

private let target: FuzzTarget = {
    guard let name = getenv("CHORUS_FUZZ_TARGET").map({ String(cString: $0) }), let t = FuzzTarget(rawValue: name) else {
        fputs("set CHORUS_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n", stderr)
        exit(2)
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    do { try target.run(data) } catch { fatalError("\(target.rawValue): \(error)") }
    return 0
}
#else
print("chorus-fuzz is a libFuzzer target: build it with -sanitize=fuzzer (see Sources/ChorusFuzz/main.swift);")
print("for a run without libFuzzer: chorus-tools fuzz TARGET --seconds N")
#endif
