import ChorusReplication

extension ReplicationSimulator {
    mutating func handle(_ m: Message, at b: Int, from a: Int) {
        switch m {
        case .append(let r, let values):
            if case .leader(let l) = nodes[b].role {
                if l.epoch == r.epoch { violations.append("two leaders of epoch \(r.epoch)") }
                guard r.epoch > l.epoch else { return enqueue(.reply(.stale(promised: l.epoch)), from: b, to: a) }
                stepDown(b, promised: l.epoch)
            }
            guard case .follower(var f) = nodes[b].role else { return }
            let d = f.receive(r)
            nodes[b].role = .follower(f)
            if let p = d.promise { nodes[b].promisedOnDisk = p }
            if let t = d.truncateAfter {
                nodes[b].log.removeLast(nodes[b].log.count - Int(t))
                nodes[b].durable = min(nodes[b].durable, Int(t))
            }
            if d.write != nil {
                for k in d.firstNew..<values.count { nodes[b].log.append(Entry(epoch: r.entryEpochs[k], value: values[k])) }
            }
            if nodes[b].log.count != Int(f.history.lastIndex) { violations.append("\(ids[b]) log and history disagree") }
            switch d.reply {
            case .accepted(let e, let last): nodes[b].held.append((a, last, e)); releaseHeld(b)
            default: enqueue(.reply(d.reply), from: b, to: a)
            }
        case .snapshot(let epoch, let history, let entries, let commit):
            if case .leader(let l) = nodes[b].role {
                guard epoch > l.epoch else { return enqueue(.reply(.stale(promised: l.epoch)), from: b, to: a) }
                stepDown(b, promised: l.epoch)
            }
            guard case .follower(var f) = nodes[b].role else { return }
            let (promise, reply) = f.install(snapshot: history, epoch: epoch, commitIndex: commit)
            if let promise { nodes[b].promisedOnDisk = promise }
            if case .accepted = reply {
                nodes[b].log = entries
                nodes[b].durable = entries.count
                nodes[b].held = []
                nodes[b].rebuildingOnDisk = !f.inSync
            }
            nodes[b].role = .follower(f)
            enqueue(.reply(reply), from: b, to: a)
        case .reply(let r):
            guard case .leader(var l) = nodes[b].role else { return }
            let (committed, deposed) = l.receive(r, from: ids[a])
            nodes[b].role = .leader(l)
            if deposed, case .stale(let promised) = r { return stepDown(b, promised: promised) }
            ack(b, committed)
        case .fence(let epoch):
            answerFence(at: b, epoch: epoch, from: a)
        case .fenceAnswer(let epoch, let answer):
            guard var fencing = nodes[b].fencing, fencing.epoch == epoch else { return }
            if case .promised(let position, let incarnation) = answer { fencing.answers[ids[a]] = (position, incarnation) }
            nodes[b].fencing = fencing
            let rule = promoteOnAnyAnswer ? ids.count : ackReplicas
            guard let chosen = Promotion.choose(answers: fencing.answers.mapValues(\.position), replicas: ids, ackReplicas: rule) else { return }
            nodes[b].fencing = nil
            // etcd's compare-and-swap: only from the epoch the fence followed.
            if etcd.epoch == epoch - 1 { etcd = (epoch, ids.firstIndex(of: chosen)!, fencing.answers[chosen]!.incarnation) }
        }
    }

    /// Sends held replies whose entries are durable; drops those a newer epoch overtook.
    mutating func releaseHeld(_ n: Int) {
        guard case .follower(let f) = nodes[n].role else { return }
        var keep: [(to: Int, lastIndex: UInt64, epoch: UInt64)] = []
        for h in nodes[n].held {
            switch f.confirm(epoch: h.epoch, lastIndex: h.lastIndex) {
            case .send: enqueue(.reply(.accepted(epoch: h.epoch, lastIndex: h.lastIndex)), from: n, to: h.to)
            case .wait: keep.append(h)
            case .drop: break
            }
        }
        nodes[n].held = keep
    }

    mutating func check() {
        // Log matching: an index written in one epoch holds one entry, and the same prefix, everywhere.
        for a in nodes.indices {
            for b in nodes.indices where a < b {
                let x = nodes[a].log, y = nodes[b].log
                for i in stride(from: min(x.count, y.count) - 1, through: 0, by: -1) where x[i].epoch == y[i].epoch {
                    if x[..<(i + 1)] != y[..<(i + 1)] {
                        violations.append("\(ids[a]) and \(ids[b]) agree on epoch \(x[i].epoch) at \(i + 1) but differ before it")
                    }
                    break
                }
            }
        }
        // Leader completeness: the serving leader holds every acknowledged entry where it was acknowledged.
        if leaderServing {
            let log = nodes[etcd.leader].log
            for (index, value) in acked where log.count < Int(index) || log[Int(index) - 1].value != value {
                violations.append("leader \(ids[etcd.leader]) of epoch \(etcd.epoch) lacks acknowledged \(value) at \(index)")
            }
        }
    }
}
