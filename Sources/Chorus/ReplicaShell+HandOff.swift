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
        handingOff = p
        s.parts.journal.stopLeading(p)
        serving[p] = nil
        publishLeaders()
        Task { await self.finishHandOff(p, epoch: epoch, copy: copy, to: target) }
    }

    private func finishHandOff(_ p: PartitionId, epoch: UInt64, copy: LeaderCopy, to target: String) async {
        defer { handingOff = nil }
        let started = ContinuousClock.now
        var retired: PartitionReplay.Copy?
        while retired == nil, ContinuousClock.now - started < .seconds(2) {
            copy.pump()
            if copy.caughtUp(target) { retired = copy.retire() }
            if retired == nil { try? await Task.sleep(for: .milliseconds(5)) }
        }
        guard let retired, roles.leading[p] == epoch else {
            s.logger.info("hand-off abandoned: serving again", metadata: ["partition": "\(p)", "to": "\(target)"])
            if roles.leading[p] == epoch { serve(p, copy) }
            return
        }
        leading.withLock { $0[p] = nil }
        s.parts.copies.resume(p, from: retired)
        do throws(ChatError) { try await s.demoted(p) } catch {
            stop("partition \(p)'s keys could not be handed off: \(error)")
        }
        roles.handedOff(p, epoch: epoch)
        s.logger.info("handed off", metadata: [
            "partition": "\(p)", "epoch": "\(epoch)", "to": "\(target)", "elapsed": "\(ContinuousClock.now - started)",
        ])
        decide()
    }
}
