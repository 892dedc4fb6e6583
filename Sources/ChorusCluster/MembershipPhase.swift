/// How a membership change stands on one node: nothing prepared, handing leaving keys over,
/// ready to commit, or failed (the coordinator aborts).
public enum MembershipPhase: Sendable, Equatable {
    case idle
    case transferring
    case ready
    case failed(String)
}
