import Glibc

/// The process's memory, as the executables manage it.
public enum ProcessMemory {
    /// glibc's `malloc_trim(0)` (not in Swift's Glibc module), found at run time; a no-op elsewhere:
    /// returns the freed memory glibc keeps to the system.
    public static func trimMalloc() {
        typealias Trim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }
}
