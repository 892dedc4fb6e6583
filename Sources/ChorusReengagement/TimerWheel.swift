/// A hierarchical timing wheel for millions of long timers (nats-server's `thw`, Kafka's purgatory).
/// Pure: it holds no clock; `advance(to:)` takes `now` and returns what expired.
///
/// Timers are named by dense ids (`UInt32`, a user's index) and fire on ticks of `tickMs`: never
/// before their deadline, at most one tick after it (plus however late `advance` is called).
/// `levels` wheels of 64 slots each; level k's slot spans 64^k ticks, so 4 levels of 1-second ticks
/// cover 194 days; later deadlines wait in an overflow list looked at once per top-level turn.
///
/// Costs: `schedule` and `cancel` are O(1) (append to a slot; swap-remove by the stored position).
/// `advance` does work for each expiring timer and each timer moving down a level (at most
/// `levels - 1` moves in its life), and skips empty stretches a level at a time.
/// Memory: 12 bytes per id (expiry tick, location, position) plus 4 in its slot, amortised by the
/// arrays' growth.
public struct TimerWheel: Sendable {
    public let tickMs: Int64
    public let levels: Int
    static let bits = 6
    static let slotsPerLevel = 64
    static let unarmed = UInt32.max
    static let overflowSlot = UInt32.max - 1
    static let overdueSlot = UInt32.max - 2

    /// The tick everything before which has been processed.
    public private(set) var currentTick: Int64
    /// Each slot's timer ids (level k's slots at k * 64 ..< (k + 1) * 64).
    private var slots: [[UInt32]]
    private var overflow: [UInt32] = []
    /// Armed with a deadline in a tick already processed: they fire at the next `advance`.
    private var overdue: [UInt32] = []
    /// Per id: the expiry tick (relative to `origin`), the slot it sits in, its index there.
    private var expiry: [UInt32] = []
    private var location: [UInt32] = []
    private var position: [UInt32] = []
    /// Timers per level, and which level-0 slots hold any (to skip empty stretches).
    private var perLevel: [Int]
    private var occupied0: UInt64 = 0
    /// Ticks are stored relative to this one, in 32 bits (136 years of seconds).
    private let origin: Int64
    public private(set) var count = 0

    /// A wheel whose first tick is the one holding `nowMs`.
    public init(nowMs: Int64, tickMs: Int64 = 1_000, levels: Int = 4) {
        precondition(tickMs > 0 && (1...5).contains(levels))
        self.tickMs = tickMs
        self.levels = levels
        origin = nowMs / tickMs
        currentTick = origin
        slots = Array(repeating: [], count: levels * Self.slotsPerLevel)
        perLevel = Array(repeating: 0, count: levels)
    }

    /// Makes room for ids below `capacity` at once (ids grow the tables on demand otherwise).
    public mutating func reserve(ids capacity: Int) {
        guard capacity > expiry.count else { return }
        let more = capacity - expiry.count
        expiry.append(contentsOf: repeatElement(0, count: more))
        location.append(contentsOf: repeatElement(Self.unarmed, count: more))
        position.append(contentsOf: repeatElement(0, count: more))
    }

    public func isArmed(_ id: UInt32) -> Bool { Int(id) < location.count && location[Int(id)] != Self.unarmed }

    /// Arms (or re-arms) `id` to fire at the first tick at or after `deadlineMs`. A deadline already
    /// past fires at the next `advance`.
    public mutating func schedule(_ id: UInt32, atMs deadlineMs: Int64) {
        if Int(id) >= expiry.count { reserve(ids: max(Int(id) + 1, expiry.count * 2)) }
        if location[Int(id)] != Self.unarmed { unlink(id) } else { count += 1 }
        let tick = (deadlineMs + tickMs - 1) / tickMs
        expiry[Int(id)] = UInt32(clamping: max(tick, origin) - origin)
        if tick < currentTick {
            location[Int(id)] = Self.overdueSlot
            position[Int(id)] = UInt32(overdue.count)
            overdue.append(id)
        } else {
            place(id)
        }
    }

    /// Disarms `id` (nothing if it is not armed).
    public mutating func cancel(_ id: UInt32) {
        guard isArmed(id) else { return }
        unlink(id)
        count -= 1
    }

    /// Processes every tick up to the one holding `nowMs`; returns the ids that expired, in tick
    /// order (the order within a tick is unspecified). Each fires once and is disarmed.
    public mutating func advance(toMs nowMs: Int64) -> [UInt32] {
        let target = nowMs / tickMs
        var fired = overdue
        if !overdue.isEmpty {
            for id in overdue { location[Int(id)] = Self.unarmed }
            count -= overdue.count
            overdue = []
        }
        while currentTick <= target {
            if count == 0 {
                currentTick = target + 1
                break
            }
            if currentTick & 63 == 0 { cascade(at: currentTick) }
            let slot0 = Int(currentTick & 63)
            if !slots[slot0].isEmpty {
                let due = slots[slot0]
                slots[slot0] = []
                occupied0 &= ~(UInt64(1) << UInt64(slot0))
                perLevel[0] -= due.count
                for id in due { location[Int(id)] = Self.unarmed }
                count -= due.count
                fired.append(contentsOf: due)
            }
            currentTick += 1
            // Straight to the next level-0 slot holding a timer in this turn, else to the turn's end
            // (where higher levels cascade): the empty ticks between are not visited.
            let pos = currentTick & 63
            if pos != 0 {
                let ahead = occupied0 >> UInt64(pos)
                let next = ahead != 0 ? currentTick + Int64(ahead.trailingZeroBitCount) : (currentTick + 63) & ~63
                currentTick = min(next, target + 1)
            }
        }
        return fired
    }

    /// At a tick that ends a turn of level k (its low 6k bits are zero), level k's slot for this tick
    /// moves down, highest level first so a timer can fall through several levels at once. Timers
    /// beyond the top level are placed again at every top-level boundary.
    private mutating func cascade(at tick: Int64) {
        var top = 0
        for k in 1..<levels where tick & ((Int64(1) << Int64(Self.bits * k)) - 1) == 0 { top = k }
        if top == levels - 1 { reinsertOverflow() }
        var k = top
        while k >= 1 {
            let index = k * Self.slotsPerLevel + Int((tick >> Int64(Self.bits * k)) & 63)
            if !slots[index].isEmpty {
                let moving = slots[index]
                slots[index] = []
                perLevel[k] -= moving.count
                for id in moving { place(id) }
            }
            k -= 1
        }
    }

    /// Timers beyond the top level's reach, placed again (most stay where they are).
    private mutating func reinsertOverflow() {
        guard !overflow.isEmpty else { return }
        let waiting = overflow
        overflow = []
        for id in waiting { place(id) }
    }

    /// Puts an id (its expiry set) in the slot its distance from `currentTick` calls for.
    private mutating func place(_ id: UInt32) {
        let tick = origin + Int64(expiry[Int(id)])
        let delta = tick - currentTick
        var level = 0
        var reach: Int64 = 64
        while level < levels && delta >= reach {
            level += 1
            reach <<= 6
        }
        let slot: Int
        if level == levels {
            slot = -1
        } else {
            slot = level * Self.slotsPerLevel + Int((tick >> Int64(Self.bits * level)) & 63)
        }
        if slot < 0 {
            location[Int(id)] = Self.overflowSlot
            position[Int(id)] = UInt32(overflow.count)
            overflow.append(id)
        } else {
            location[Int(id)] = UInt32(slot)
            position[Int(id)] = UInt32(slots[slot].count)
            slots[slot].append(id)
            perLevel[level] += 1
            if level == 0 { occupied0 |= UInt64(1) << UInt64(slot) }
        }
    }

    /// Removes an armed id from its slot by swapping the slot's last id into its place.
    private mutating func unlink(_ id: UInt32) {
        let at = Int(position[Int(id)])
        let where_ = location[Int(id)]
        if where_ == Self.overflowSlot {
            let last = overflow.removeLast()
            if last != id {
                overflow[at] = last
                position[Int(last)] = UInt32(at)
            }
        } else if where_ == Self.overdueSlot {
            let last = overdue.removeLast()
            if last != id {
                overdue[at] = last
                position[Int(last)] = UInt32(at)
            }
        } else {
            let slot = Int(where_)
            let last = slots[slot].removeLast()
            if last != id {
                slots[slot][at] = last
                position[Int(last)] = UInt32(at)
            }
            perLevel[slot / Self.slotsPerLevel] -= 1
            if slot < Self.slotsPerLevel && slots[slot].isEmpty { occupied0 &= ~(UInt64(1) << UInt64(slot)) }
        }
        location[Int(id)] = Self.unarmed
    }

    /// Bytes the wheel holds per armed timer now (its tables' capacities over `count`).
    public var bytesPerTimer: Double {
        guard count > 0 else { return 0 }
        let tables = (expiry.capacity + location.capacity + position.capacity) * 4
        let slotBytes = slots.reduce(0) { $0 + $1.capacity * 4 } + overflow.capacity * 4
        return Double(tables + slotBytes) / Double(count)
    }
}
