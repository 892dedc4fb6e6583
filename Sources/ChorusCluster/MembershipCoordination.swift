/// An operator's request (`POST /v1/cluster/members`).
public enum MembershipChangeRequest: Sendable, Equatable {
    case add(id: String, address: String)
    case remove(id: String)
}

/// What a coordinator does.
public enum CoordinationPlan: Sendable, Equatable {
    /// Nothing changes: the current membership's commit is sent again to `targets`.
    case recommit(ClusterMembership, targets: [String])
    case change(MembershipChangePlan)
}

/// The order of a change: prepare this node first (its mesh learns the newcomers' addresses before
/// it asks them anything), then the newcomers, then the other members; once every node is ready,
/// commit the leaving nodes first and this node last (its mesh drops its links to leaving nodes
/// when it commits, so they must have heard the commit by then). A failure before the commit
/// aborts everywhere, in prepare order (nothing moved: the old ring still owns everything).
public struct MembershipChangePlan: Sendable, Equatable {
    public let next: ClusterMembership
    public let prepareOrder: [String]
    public let commitOrder: [String]

    public init(selfId: String, current: ClusterMembership, next: ClusterMembership) {
        self.next = next
        let newcomers = next.ids.filter { current.members[$0] == nil }
        prepareOrder = [selfId] + newcomers + current.ids.filter { $0 != selfId }
        let leaving = current.ids.filter { next.members[$0] == nil && $0 != selfId }
        commitOrder = leaving + prepareOrder.filter { $0 != selfId && !leaving.contains($0) } + [selfId]
    }
}

/// The coordinator's wait for every node to finish its hand-over, on an injected clock (ms).
public struct ReadinessWait: Sendable, Equatable {
    public private(set) var waiting: Set<String>
    public let deadlineMs: Int64
    public private(set) var failure: String?

    public init(nodes: [String], nowMs: Int64, timeoutMs: Int64) {
        waiting = Set(nodes)
        deadlineMs = nowMs + timeoutMs
    }

    /// A node's answer to a status poll.
    public mutating func observe(_ node: String, _ phase: MembershipPhase) {
        switch phase {
        case .ready: waiting.remove(node)
        case .failed(let why): failure = failure ?? "node \(node): \(why)"
        case .idle, .transferring: break
        }
    }

    public enum Step: Sendable, Equatable {
        /// Every node is ready: commit.
        case commit
        /// Poll these nodes (again).
        case poll([String])
        /// Abort the change, for this reason.
        case abort(String)
    }

    public func next(nowMs: Int64) -> Step {
        if let failure { return .abort(failure) }
        if waiting.isEmpty { return .commit }
        if nowMs >= deadlineMs { return .abort("hand-over not complete on \(waiting.sorted()) in time") }
        return .poll(waiting.sorted())
    }
}
