/// Which disk a node's data is on: a random nonzero number written once, durably, in
/// `<data>/incarnation` (docs/REPLICATION.md). A node whose data directory was lost gets a new one,
/// so a fence answer given from the old disk cannot make the new, empty one a leader.
public enum DataIncarnation {
    public static let fileName = "incarnation"

    public enum Failure: Error, Equatable, Sendable {
        /// The file exists but does not hold a nonzero decimal number: not guessed, not replaced.
        case unreadable(path: String)
    }

    /// The directory's incarnation, made (and `created` true) if it has none yet.
    public static func loadOrCreate(directory: String, using rng: inout some RandomNumberGenerator) throws -> (value: UInt64, created: Bool) {
        let path = directory + "/" + fileName
        if let bytes = try DurableFile.read(path) {
            let text = String(decoding: bytes, as: UTF8.self).trimmingSuffix("\n")
            guard let value = UInt64(text), value != 0 else { throw Failure.unreadable(path: path) }
            return (value, false)
        }
        var value: UInt64 = 0
        while value == 0 { value = rng.next() }
        try DurableFile.write(Array("\(value)\n".utf8), to: path)
        return (value, true)
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
