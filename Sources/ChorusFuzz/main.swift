import ChorusFuzzTargets
import Glibc

// libFuzzer's entry (docs/SECURITY.md, "Fuzzing"), built with
//   swift build --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
//       -Xswiftc -DCHORUS_LIBFUZZER --product chorus-fuzz
// and run as `CHORUS_FUZZ_TARGET=peer .build-fuzz/debug/chorus-fuzz CORPUS_DIR`. Declarations only:
// libFuzzer brings `main`. In an ordinary build the target is chosen at start, so the binary only
// says how to set it (for a run without libFuzzer: `chorus-tools fuzz`).

private let target: FuzzTarget = {
    guard let name = getenv("CHORUS_FUZZ_TARGET").map({ String(cString: $0) }), let t = FuzzTarget(rawValue: name) else {
        let usage = "set CHORUS_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n"
        _ = usage.withCString { write(2, $0, strlen($0)) }
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

#if CHORUS_LIBFUZZER
/// SwiftPM links an executable's entry as `<module>_main` (`--defsym main=ChorusFuzz_main`); with
/// `-parse-as-library` Swift makes none, so this one hands the process to libFuzzer's driver.
@_cdecl("ChorusFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif
