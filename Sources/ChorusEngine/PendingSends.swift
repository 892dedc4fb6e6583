/// A conversation's sends being logged now: clientMsgId -> reserved seq. Pure.
///
/// Most conversations have at most one send in flight, so the first is held inline and only more
/// go to a dictionary: an active direct conversation keeps no table (a one-entry dictionary is a
/// 120-byte allocation, kept while active so that each send does not allocate one).
struct PendingSends: Sendable {
    private var first: (id: String, seq: UInt64)?
    private var more: [String: UInt64] = [:]

    var isEmpty: Bool { first == nil && more.isEmpty }
    var count: Int { (first == nil ? 0 : 1) + more.count }

    subscript(id: String) -> UInt64? {
        if let first, first.id == id { return first.seq }
        return more.isEmpty ? nil : more[id]
    }

    /// Records `id` as in flight with `seq` (replacing an earlier seq for the same id).
    mutating func insert(_ id: String, seq: UInt64) {
        if first == nil || first!.id == id, more[id] == nil {
            first = (id, seq)
        } else {
            more[id] = seq
        }
    }

    mutating func remove(_ id: String) {
        if let f = first, f.id == id {
            first = nil
        } else if !more.isEmpty {
            more.removeValue(forKey: id)
        }
    }

    /// Gives the dictionary's storage back when nothing is in it (an idle conversation).
    mutating func releaseStorage() {
        if more.isEmpty { more = [:] }
    }
}
