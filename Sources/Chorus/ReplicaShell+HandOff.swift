import ChorusCluster
import ChorusCore
import ChorusReplica
import ChorusReplication

extension ReplicaShell {
    /// Gives `p` back to `target`, its preferred replica (docs/REPLICATION.md, "Hand-off"): appends
    /// are refused here, those admitted commit and reach `target`, the copy here follows again and
    /// the engine stages the partition's keys; then a take-over in a new epoch chooses `target`,
    /// which is as up to date as any copy and first in ring order. If `target` does not catch up
    /// within 2 s the partition is served here again. Only one hand-off runs at a time.
    func handOff(_ p: PartitionId, to target: String) {
        guard handingOff == nil, suspendedUnder == nil, let copy = serving[p], let epoch = roles.leading[p], copy.caughtUp(target) else { return }
        pause(p)
        Task {
            let started = ContinuousClock.now
            defer { handingOff = nil }
            guard await self.stepAside(p, epoch: epoch, copy: copy, until: { $0.caughtUp(target) }) else {
                s.logger.info("hand-off abandoned: serving again", metadata: ["partition": "\(p)", "to": "\(target)"])
                return
            }
            s.logger.info("handed off", metadata: [
                "partition": "\(p)", "epoch": "\(epoch)", "to": "\(target)", "elapsed": "\(ContinuousClock.now - started)",
            ])
            decide()
        }
    }

    /// Stops routing `p`'s appends to its copy here and names no leader for it (the first half of
    /// a hand-off; one at a time).
    func pause(_ p: PartitionId) {
        handingOff = p
        s.parts.journal.stopLeading(p)
        serving[p] = nil
        publishLeaders()
    }

    /// Waits (at most 2 s) until the appends admitted to `copy` have committed and `ready` holds,
    /// then retires the copy, follows `p` from it and stages its keys again; the entry naming this
    /// node in `epoch` is then one to take over (`ReplicaRoles.handedOff`). False, and `p` served
    /// again, if that did not happen in time.
    func stepAside(_ p: PartitionId, epoch: UInt64, copy: LeaderCopy, until ready: (LeaderCopy) -> Bool) async -> Bool {
        let started = ContinuousClock.now
        var retired: PartitionReplay.Copy?
        while retired == nil, ContinuousClock.now - started < .seconds(2) {
            copy.pump()
            if ready(copy) { retired = copy.retire() }
            if retired == nil { try? await Task.sleep(for: .milliseconds(5)) }
        }
        guard let retired, roles.leading[p] == epoch else {
            if roles.leading[p] == epoch { serve(p, copy) }
            return false
        }
        leading.withLock { $0[p] = nil }
        s.parts.copies.resume(p, from: retired)
        do throws(ChatError) { try await s.demoted(p) } catch {
            stop("partition \(p)'s keys could not be handed off: \(error)")
        }
        roles.handedOff(p, epoch: epoch)
        return true
    }
}
