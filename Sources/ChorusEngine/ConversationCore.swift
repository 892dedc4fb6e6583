import ChorusCore

/// What to do with a `send`, decided by `ConversationCore.decideSend`. Pure.
public enum SendDecision: Equatable, Sendable {
    /// Log this message (its `seq` is reserved), then acknowledge.
    case append(seq: UInt64)
    /// Already durable with this `seq`: answer with the stored message, append nothing.
    case duplicate(seq: UInt64)
    /// The same client id is being logged right now: wait for that one's outcome.
    case inFlight(seq: UInt64)
    case refused(ChatError)
}

/// One conversation's rules as plain state: membership, sequencing, the dedup window, the history
/// index. Actors carry its decisions out; replay rebuilds it from events. No I/O, no clock.
public struct ConversationCore: Sendable {
    public let id: String
    public let kind: ConversationKind
    public private(set) var title: String
    /// Members in the order they joined.
    public private(set) var members: [String]
    public internal(set) var lastSeq: UInt64 = 0
    public internal(set) var lastActivity: Int64
    /// The newest message: kept as the record, or after replay as its log payload, decoded on demand.
    public var lastMessage: MessageRecord? {
        switch lastMessageSource {
        case .none: return nil
        case .record(let m): return m
        case .payload(let p):
            guard case .messageAppended(let m)? = try? ChorusEvent.decode(kind: 8, payload: p) else { return nil }
            return m
        }
    }
    var lastMessageSource = LastMessage.none

    enum LastMessage: Sendable {
        case none
        case record(MessageRecord)
        case payload([UInt8])
    }
    /// LSN of each message by `seq - 1` (about 2 bytes a message, coded), so history reads the log directly.
    public internal(set) var lsnIndex = LSNIndex()
    /// Per member: the highest seq read (sending counts as reading).
    /// (Kept as pairs: for the few members of most conversations a dictionary costs twice as much.)
    var readCursors: [(user: String, seq: UInt64)] = []

    /// Per member: the highest seq read (a copy, for tests and snapshots).
    public var readSeq: [String: UInt64] { Dictionary(readCursors.map { ($0.user, $0.seq) }, uniquingKeysWith: max) }

    func readCursor(_ userId: String) -> UInt64 { readCursors.first { $0.user == userId }?.seq ?? 0 }

    mutating func raiseReadCursor(_ userId: String, to seq: UInt64) {
        if let i = readCursors.firstIndex(where: { $0.user == userId }) {
            readCursors[i].seq = max(readCursors[i].seq, seq)
        } else {
            readCursors.append((userId, seq))
        }
    }

    /// Only for groups above `setThreshold` members; small ones search `members` (a Set costs ~150 B).
    var memberSet: Set<String>?
    static let setThreshold = 16
    /// Seqs handed out and not yet durable (or failed).
    var reservedSeq: UInt64 = 0
    private var pendingClientIds = PendingSends()

    /// Drops an in-flight id. Past one in flight the table keeps its storage while the conversation
    /// is active (giving it back on every empty cost a malloc and a rehash per send); `dropCaches`
    /// returns it when idle.
    private mutating func forgetPending(_ clientMsgId: String) {
        pendingClientIds.remove(clientMsgId)
    }
    /// Stable hash of the clientMsgId of the latest messages (8 bytes each): entry `i` is seq
    /// `clientIdHashBase + i + 1`. Only the dedup window needs them, so at most twice the window are
    /// kept (trimmed back to one window when past it): memory does not grow with history.
    public internal(set) var clientIdHashBySeq: [UInt64] = []
    /// Seqs at or below this have no hash kept (they are out of the dedup window).
    public internal(set) var clientIdHashBase: UInt64 = 0
    /// clientMsgId hash -> seq for the last `dedupWindow` messages (older ids are forgotten: the
    /// bound). Built on the first send after a start, so replay never pays for it. A hash hit is a
    /// candidate: the actor compares the stored message's clientMsgId before answering (collisions).
    private var dedupIndex: [UInt64: UInt64]?
    public let dedupWindow: Int

    public init(id: String, kind: ConversationKind, title: String, members: [String], createdAt: Int64, dedupWindow: Int = 10_000) {
        self.id = id
        self.kind = kind
        self.title = title
        self.members = members
        memberSet = members.count > Self.setThreshold ? Set(members) : nil
        lastActivity = createdAt
        self.dedupWindow = dedupWindow
    }

    public func isMember(_ userId: String) -> Bool { memberSet?.contains(userId) ?? members.contains(userId) }

    /// Decides a send and, for `.append`, reserves the next seq.
    /// `ignoringDedupHit`: the dedup index matched by hash only and the stored message has another id.
    public mutating func decideSend(
        from: String, clientMsgId: String, body: String, limits: ChatLimits, ignoringDedupHit: Bool = false
    ) -> SendDecision {
        guard isMember(from) else { return .refused(.notMember) }
        guard !clientMsgId.isEmpty, clientMsgId.utf8.count <= limits.idLength else {
            return .refused(.badRequest("clientMsgId: 1 to \(limits.idLength) characters"))
        }
        if !ignoringDedupHit, let seq = dedupSeq(for: clientMsgId) { return .duplicate(seq: seq) }
        if let seq = pendingClientIds[clientMsgId] { return .inFlight(seq: seq) }
        let bytes = body.utf8.count
        if bytes < limits.bodyBytes.lowerBound { return .refused(.emptyBody) }
        if bytes > limits.bodyBytes.upperBound { return .refused(.bodyTooLarge(limit: limits.bodyBytes.upperBound)) }
        reservedSeq = max(reservedSeq, lastSeq) + 1
        pendingClientIds.insert(clientMsgId, seq: reservedSeq)
        return .append(seq: reservedSeq)
    }

    /// The log refused the append of a reserved seq. The log is stopped, so nothing after it becomes
    /// durable either: the seq is given back when nothing later was reserved.
    public mutating func sendFailed(clientMsgId: String, seq: UInt64) {
        forgetPending(clientMsgId)
        if reservedSeq == seq { reservedSeq = seq - 1 }
    }

    /// Applies a durable message and returns the members it goes to (one dictionary access in replay).
    public mutating func applyReturningMembers(_ m: MessageRecord, lsn: UInt64) -> (id: String, members: [String]) {
        apply(m, lsn: lsn)
        return (id, members)
    }

    /// Applies a durable message (live after its log ack, or on replay).
    public mutating func apply(_ m: MessageRecord, lsn: UInt64) {
        forgetPending(m.clientMsgId)
        if m.seq > lastSeq {
            lastSeq = m.seq
            lastMessageSource = .record(m)
        }
        record(seq: m.seq, lsn: lsn, ts: m.ts, clientMsgIdHash: StableHash.fnv1a64(m.clientMsgId))
        raiseReadCursor(m.from, to: m.seq)
    }

    /// Replay's `apply`: the same changes from a record's summary, the payload kept for `lastMessage`.
    public mutating func applyReplayed(_ m: MessageSummary, payload: [UInt8], lsn: UInt64) -> (id: String, members: [String]) {
        if m.seq > lastSeq {
            lastSeq = m.seq
            lastMessageSource = .payload(payload)
        }
        record(seq: m.seq, lsn: lsn, ts: m.ts, clientMsgIdHash: m.clientMsgIdHash)
        // The sender is a member: find its string without decoding one (small conversations).
        let from = payload[m.from]
        let sender = members.count <= 16 ? members.first { $0.utf8.elementsEqual(from) } : nil
        let key = sender ?? String(decoding: from, as: UTF8.self)
        raiseReadCursor(key, to: m.seq)
        return (id, members)
    }

    private mutating func record(seq: UInt64, lsn: UInt64, ts: Int64, clientMsgIdHash: UInt64) {
        lastActivity = max(lastActivity, ts)
        lsnIndex.set(Int(seq) - 1, to: lsn)
        remember(clientMsgIdHash, seq: seq)
    }

    /// Unread messages for a member.
    public func unread(for userId: String) -> UInt64 {
        let read = readCursor(userId)
        return lastSeq > read ? lastSeq - read : 0
    }

    /// Decides a `read`: nil when it moves nothing (no receipt), else the seq to record (clamped to
    /// the newest message).
    public func decideRead(by userId: String, upTo seq: UInt64) -> Result<UInt64?, ChatError> {
        guard isMember(userId) else { return .failure(.notMember) }
        let target = min(seq, lastSeq)
        return .success(target > readCursor(userId) ? target : nil)
    }

    /// Applies a durable read cursor.
    public mutating func applyRead(by userId: String, upTo seq: UInt64) {
        raiseReadCursor(userId, to: seq)
    }

    /// Seqs at or below this may have gone to other members than today's: the highest seq decided
    /// (durable or reserved) when membership last changed. A conversation restored from a snapshot
    /// or a hand-over starts at its `lastSeq` (its history of membership is not kept).
    public internal(set) var membershipSeq: UInt64 = 0

    /// The seq every current member's inbox holds before message `seq`, for the owner's gap check
    /// (`RemoteInboxItem.previous`); 0 when it cannot be said (the first message, or the first after
    /// a membership change).
    public func previous(before seq: UInt64) -> UInt64 { seq > membershipSeq + 1 ? seq - 1 : 0 }

    public mutating func addMember(_ userId: String, at: Int64) {
        guard !isMember(userId) else { return }
        membershipSeq = max(lastSeq, reservedSeq)
        members.append(userId)
        if memberSet != nil {
            memberSet!.insert(userId)
        } else if members.count > Self.setThreshold {
            memberSet = Set(members)
        }
        lastActivity = max(lastActivity, at)
    }

    /// A group's owner: its longest-standing member (members are kept in joining order, the creator
    /// first), so when the owner leaves the next longest-standing member becomes owner. Direct
    /// conversations have none.
    public var owner: String? { kind == .group ? members.first : nil }

    /// Whether `by` may remove `userId`: anyone may remove itself; only the owner removes others.
    public func mayRemove(_ userId: String, by: String) -> Bool { userId == by || owner == by }

    public mutating func removeMember(_ userId: String, at: Int64) {
        guard isMember(userId) else { return }
        membershipSeq = max(lastSeq, reservedSeq)
        memberSet?.remove(userId)
        readCursors.removeAll { $0.user == userId }
        members.removeAll { $0 == userId }
        lastActivity = max(lastActivity, at)
    }

    /// Seqs for a history page (PROTOCOL.md section 2), ascending, and whether more exist that way.
    public func historyPage(before: UInt64?, after: UInt64?, limit: Int) -> (seqs: ClosedRange<UInt64>?, hasMore: Bool) {
        guard lastSeq > 0, limit > 0 else { return (nil, false) }
        let n = UInt64(limit)
        if let after {
            guard after < lastSeq else { return (nil, false) }
            let upper = min(lastSeq, after + n)
            return ((after + 1)...upper, upper < lastSeq)
        }
        let top = min(before.map { $0 == 0 ? 0 : $0 - 1 } ?? lastSeq, lastSeq)
        guard top >= 1 else { return (nil, false) }
        let lower = top >= n ? top - n + 1 : 1
        return (lower...top, lower > 1)
    }

    /// The seq whose clientMsgId hashes like this one, within the window (building the index once).
    private mutating func dedupSeq(for clientMsgId: String) -> UInt64? {
        let hash = StableHash.fnv1a64(clientMsgId)
        // A short conversation is scanned; an index pays for itself only past a few dozen messages.
        let base = clientIdHashBase
        if dedupIndex == nil, clientIdHashBySeq.count <= Self.scanBelow {
            let from = max(0, clientIdHashBySeq.count - dedupWindow)
            return clientIdHashBySeq[from...].firstIndex(of: hash).map { base + UInt64($0 + 1) }
        }
        if dedupIndex == nil {
            var index: [UInt64: UInt64] = [:]
            let from = max(0, clientIdHashBySeq.count - dedupWindow)
            index.reserveCapacity(clientIdHashBySeq.count - from)
            for i in from..<clientIdHashBySeq.count where clientIdHashBySeq[i] != 0 {
                index[clientIdHashBySeq[i]] = index[clientIdHashBySeq[i]] ?? base + UInt64(i + 1)
            }
            dedupIndex = index
        }
        return dedupIndex![hash]
    }

    static let scanBelow = 64

    /// Whether a reserved seq is still waiting for the log.
    public var hasSendsInFlight: Bool { !pendingClientIds.isEmpty }

    /// Whether the dedup index is built (it is rebuilt from the hashes on the next send).
    public var hasDedupIndex: Bool { dedupIndex != nil }

    /// Drops the dedup index and the in-flight table's storage of an idle conversation (memory
    /// follows activity).
    public mutating func dropCaches() {
        dedupIndex = nil
        lsnIndex.shrink()
        pendingClientIds.releaseStorage()
    }

    private mutating func remember(_ hash: UInt64, seq: UInt64) {
        guard seq > clientIdHashBase else { return }  // older than the kept hashes: out of the window
        let index = Int(seq - clientIdHashBase) - 1
        if clientIdHashBySeq.count <= index {
            clientIdHashBySeq.append(contentsOf: repeatElement(0, count: index + 1 - clientIdHashBySeq.count))
        }
        clientIdHashBySeq[index] = hash
        if dedupIndex != nil {
            if dedupIndex![hash] == nil { dedupIndex![hash] = seq }
            // The message leaving the window takes its id along (unless a newer seq holds that hash).
            if seq > UInt64(dedupWindow) {
                let old = seq - UInt64(dedupWindow)
                if old > clientIdHashBase {
                    let oldHash = clientIdHashBySeq[Int(old - clientIdHashBase) - 1]
                    if dedupIndex![oldHash] == old { dedupIndex![oldHash] = nil }
                }
            }
        }
        trimHashes()
    }

    /// Past twice the window, keeps the last window of hashes (amortized: one copy per window sends).
    mutating func trimHashes() {
        guard clientIdHashBySeq.count > 2 * dedupWindow else { return }
        let drop = clientIdHashBySeq.count - dedupWindow
        clientIdHashBySeq.removeFirst(drop)
        clientIdHashBase += UInt64(drop)
    }
}
