/// A growable set of small positive integers (message numbers), 1 bit each.
public struct BitSet: Sendable, Equatable {
    var words: [UInt64] = []

    public init() {}

    public func contains(_ n: UInt64) -> Bool {
        let w = Int(n >> 6)
        return w < words.count && words[w] & (1 << (n & 63)) != 0
    }

    /// Inserts `n`; returns false if it was already there.
    @discardableResult
    public mutating func insert(_ n: UInt64) -> Bool {
        let w = Int(n >> 6)
        if w >= words.count { words.append(contentsOf: repeatElement(0, count: w - words.count + 1)) }
        let bit: UInt64 = 1 << (n & 63)
        defer { words[w] |= bit }
        return words[w] & bit == 0
    }

    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// How many members of `self` are missing from `other`.
    public func countMissing(from other: BitSet) -> Int {
        var missing = 0
        for (i, word) in words.enumerated() {
            let theirs = i < other.words.count ? other.words[i] : 0
            missing += (word & ~theirs).nonzeroBitCount
        }
        return missing
    }
}

/// One load connection's bookkeeping as plain values: what it sent and had acknowledged, and what it
/// received from its peer. Message numbers `n` start at 1 per sender and rise by 1.
public struct ConnectionLedger: Sendable {
    public private(set) var sent: UInt64 = 0
    /// n -> intended send offset (ns) for messages not yet acked or refused.
    public private(set) var outstanding: [UInt64: UInt64] = [:]
    public private(set) var acked = BitSet()
    public private(set) var refused: [String: UInt64] = [:]
    public private(set) var received = BitSet()
    public private(set) var highestReceived: UInt64 = 0
    public private(set) var duplicates: UInt64 = 0
    public private(set) var outOfOrder: UInt64 = 0
    public private(set) var unexpectedAcks: UInt64 = 0

    public init() {}

    /// Records the next send; returns its message number.
    public mutating func noteSent(intendedOffset: UInt64) -> UInt64 {
        sent += 1
        outstanding[sent] = intendedOffset
        return sent
    }

    /// An ack for message `n`: returns its intended offset, or nil for an ack nobody waits for.
    public mutating func noteAck(_ n: UInt64) -> UInt64? {
        guard let intended = outstanding.removeValue(forKey: n) else {
            unexpectedAcks += 1
            return nil
        }
        acked.insert(n)
        return intended
    }

    /// An error frame refusing message `n`.
    public mutating func noteRefused(_ n: UInt64, code: String) {
        guard outstanding.removeValue(forKey: n) != nil else { return }
        refused[code, default: 0] += 1
    }

    public enum Delivery: Equatable, Sendable { case first, duplicate }

    /// A message numbered `n` from the peer arrived. Arrival below the highest seen so far (and not a
    /// duplicate) breaks the conversation's order and is counted.
    public mutating func noteDelivery(_ n: UInt64) -> Delivery {
        guard received.insert(n) else {
            duplicates += 1
            return .duplicate
        }
        if n < highestReceived { outOfOrder += 1 }
        highestReceived = max(highestReceived, n)
        return .first
    }

    /// Messages `sender` had acknowledged that `receiver` never got.
    public static func lost(sender: ConnectionLedger, receiver: ConnectionLedger) -> Int {
        sender.acked.countMissing(from: receiver.received)
    }
}
