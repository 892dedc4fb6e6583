/// How far a replica's copy of a partition log goes: the epoch of its last entry, then its index.
///
/// Ordered as Raft orders logs for up-to-dateness: a later last epoch wins, then a longer log.
public struct LogPosition: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var lastEpoch: UInt64
    public var lastIndex: UInt64

    public init(lastEpoch: UInt64, lastIndex: UInt64) {
        self.lastEpoch = lastEpoch
        self.lastIndex = lastIndex
    }

    public static let empty = LogPosition(lastEpoch: 0, lastIndex: 0)

    public static func < (a: LogPosition, b: LogPosition) -> Bool {
        a.lastEpoch != b.lastEpoch ? a.lastEpoch < b.lastEpoch : a.lastIndex < b.lastIndex
    }

    public var description: String { "\(lastEpoch)/\(lastIndex)" }
}
