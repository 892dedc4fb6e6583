/// Why a node refuses a membership step or change. The shell maps each to a wire code.
public enum MembershipRefusal: Error, Sendable, Equatable {
    /// Another change is prepared here (its epoch).
    case anotherChangeInProgress(epoch: UInt64)
    /// The change's epoch is not this node's current epoch + 1.
    case epochDoesNotFollow(given: UInt64, current: UInt64)
    /// A joining node was asked to prepare a membership without itself.
    case joiningNodeNotInMembership
    /// A hand-over batch or status for a change not prepared here.
    case notPrepared(epoch: UInt64)
    /// A joining node cannot coordinate; ask a member.
    case joiningCannotCoordinate
    /// This node is coordinating a change already.
    case alreadyCoordinating
    /// The change itself is invalid (`ClusterMembership.ChangeRefusal`).
    case invalid(ClusterMembership.ChangeRefusal)
    /// `add` of a member that is already one, at another address.
    case alreadyMemberElsewhere(id: String, address: String)
}

/// A membership change as one node takes part in it (docs/CLUSTER.md, "Changing membership"):
/// `prepare` freezes the keys the next ring moves to or from this node and hands the leaving keys
/// over; `commit` switches rings; `abort` goes back. Pure: each step takes the request and
/// returns what the shell must do (persist, hand over, switch); the shell reports back when the
/// I/O is done. Every step is idempotent, so a coordinator may repeat any of them.
public struct MembershipParticipant: Sendable, Equatable {
    public let selfId: String
    public private(set) var current: ClusterMembership
    public private(set) var pending: ClusterMembership?
    public private(set) var phase: MembershipPhase = .idle
    /// Started with `--join`: not a member yet, its epoch unknown until a prepare names it.
    public private(set) var joining: Bool
    public private(set) var coordinating = false
    /// A prepare whose pending file is being written (published as `pending` once durable).
    public private(set) var reserved: ClusterMembership?

    public init(selfId: String, current: ClusterMembership, pending: ClusterMembership?, joining: Bool) {
        self.selfId = selfId
        self.current = current
        self.pending = pending
        self.joining = joining
    }

    /// What the shell does for a prepare.
    public enum PrepareDirective: Sendable, Equatable {
        /// This change is prepared (or being prepared) already.
        case none
        /// Write the pending file, then report `pendingPersisted` (or `pendingNotPersisted`).
        case persist(ClusterMembership)
    }

    public mutating func prepare(_ next: ClusterMembership) -> Result<PrepareDirective, MembershipRefusal> {
        if let p = pending ?? reserved {
            return p == next ? .success(.none) : .failure(.anotherChangeInProgress(epoch: p.epoch))
        }
        if joining {
            guard next.members[selfId] != nil else { return .failure(.joiningNodeNotInMembership) }
        } else if next.epoch != current.epoch + 1 {
            return .failure(.epochDoesNotFollow(given: next.epoch, current: current.epoch))
        }
        reserved = next
        return .success(.persist(next))
    }

    /// The pending file is durable: the change is prepared. The shell freezes the keys that move
    /// (`MembershipMove` from `current` to `next`) and hands the leaving ones over.
    public mutating func pendingPersisted(_ next: ClusterMembership) -> MembershipMove {
        reserved = nil
        pending = next
        phase = .transferring
        return MembershipMove(before: current.ring, after: next.ring, selfId: selfId)
    }

    public mutating func pendingNotPersisted(_ next: ClusterMembership) {
        if reserved == next { reserved = nil }
    }

    /// At start: a change prepared before a restart is prepared again (the hand-over is repeated;
    /// the receiver's copies are replaced). Nil if none was.
    public mutating func resume() -> (ClusterMembership, MembershipMove)? {
        guard let next = pending else { return nil }
        phase = .transferring
        return (next, MembershipMove(before: current.ring, after: next.ring, selfId: selfId))
    }

    /// The hand-over of change `epoch` ended (`failure` nil: every batch was logged by its receiver).
    public mutating func handoverEnded(epoch: UInt64, failure: String?) {
        guard pending?.epoch == epoch else { return }
        phase = failure.map(MembershipPhase.failed) ?? .ready
    }

    /// Why a hand-over batch for change `epoch` may not be received here; nil: it may.
    public func handoverRefusal(epoch: UInt64) -> MembershipRefusal? {
        pending?.epoch == epoch ? nil : .notPrepared(epoch: epoch)
    }

    /// How change `epoch` stands here (what the coordinator polls).
    public func phase(of epoch: UInt64) -> MembershipPhase {
        if current.epoch >= epoch, pending == nil, !joining { return .ready }
        guard pending?.epoch == epoch else { return .failed("no change with epoch \(epoch) is prepared here") }
        return phase
    }

    /// What the shell does for a commit.
    public enum CommitDirective: Sendable, Equatable {
        /// Committed already (a repeated commit).
        case none
        /// Persist `next` as current, make received state live, switch rings from `previous`; then
        /// report `committed`.
        case switchRings(previous: ClusterMembership)
    }

    public func commit(_ next: ClusterMembership) -> CommitDirective {
        if !joining, current.epoch >= next.epoch { return .none }
        return .switchRings(previous: current)
    }

    public mutating func committed(_ next: ClusterMembership) {
        current = next
        pending = nil
        phase = .idle
        joining = false
    }

    /// Goes back to the current membership; false if `next` is not the change prepared here
    /// (nothing to undo).
    public mutating func abort(_ next: ClusterMembership) -> Bool {
        guard pending == next else { return false }
        pending = nil
        phase = .idle
        return true
    }

    // MARK: coordinating

    /// Starts coordinating `request` on this node: the plan, or why not. `finishCoordinating` ends it.
    public mutating func coordinate(_ request: MembershipChangeRequest) -> Result<CoordinationPlan, MembershipRefusal> {
        guard !joining else { return .failure(.joiningCannotCoordinate) }
        guard !coordinating else { return .failure(.alreadyCoordinating) }
        let next: Result<ClusterMembership, ClusterMembership.ChangeRefusal>
        switch request {
        case .add(let id, let address): next = current.adding(id, at: address)
        case .remove(let id): next = current.removing(id)
        }
        let plan: CoordinationPlan
        if let p = pending {
            // The same change, prepared by a coordinator that is gone: this node finishes it.
            guard case .success(let n) = next, n == p else { return .failure(.anotherChangeInProgress(epoch: p.epoch)) }
            plan = .change(MembershipChangePlan(selfId: selfId, current: current, next: n))
        } else {
            switch next {
            case .success(let n):
                plan = .change(MembershipChangePlan(selfId: selfId, current: current, next: n))
            case .failure(.alreadyMember(let id)):
                // Already done (maybe a commit some node missed): the current one is committed again.
                guard case .add(_, let address) = request, current.members[id] == address else {
                    return .failure(.alreadyMemberElsewhere(id: id, address: current.members[id] ?? "?"))
                }
                plan = .recommit(current, targets: current.ids.filter { $0 != selfId })
            case .failure(.notMember(let id)):
                // Removed already: every member and the node removed hear the commit again.
                plan = .recommit(current, targets: (current.ids + [id]).filter { $0 != selfId })
            case .failure(let refusal):
                return .failure(.invalid(refusal))
            }
        }
        coordinating = true
        return .success(plan)
    }

    public mutating func finishCoordinating() { coordinating = false }
}
