import ChorusReplication

extension ReplicationSimulator {
    func canAct(_ n: Int) -> Bool { nodes[n].up && !nodes[n].paused }

    mutating func enqueue(_ m: Message, from a: Int, to b: Int) {
        guard a != b, nodes[a].up else { return }
        links[a][b].append(m)
    }

    /// The follower view of a node (a leader steps down to one, keeping its log).
    mutating func stepDown(_ n: Int, promised: UInt64) {
        guard case .leader(let l) = nodes[n].role else { return }
        nodes[n].role = .follower(ReplicaFollower(
            promised: max(promised, l.epoch), history: l.history, durable: UInt64(nodes[n].durable), incarnation: nodes[n].incarnation))
        nodes[n].promisedOnDisk = max(nodes[n].promisedOnDisk, promised)
        nodes[n].waiting = [:]
    }

    /// A client write, sent to one of the nodes that believe they lead (a deposed one too: clients
    /// follow stale routing), chosen by `pick`.
    mutating func write(pick: Int) {
        let leaders = nodes.indices.filter { i in
            if case .leader = nodes[i].role { return canAct(i) }
            return false
        }
        guard !leaders.isEmpty else { return }
        write(at: leaders[pick % leaders.count])
    }

    mutating func write(at n: Int) {
        guard canAct(n), case .leader(var l) = nodes[n].role else { return }
        let index = l.append(count: 1).lowerBound
        nodes[n].log.append(Entry(epoch: l.epoch, value: nextValue))
        nodes[n].waiting[index] = nextValue
        nextValue += 1
        nodes[n].role = .leader(l)
    }

    mutating func ack(_ n: Int, _ range: ClosedRange<UInt64>?) {
        guard let range else { return }
        for index in range {
            guard let value = nodes[n].waiting.removeValue(forKey: index) else { continue }
            if let other = acked[index], other != value { violations.append("index \(index) acknowledged as \(other) and \(value)") }
            acked[index] = value
        }
    }

    mutating func sync(_ n: Int) {
        guard canAct(n) else { return }
        nodes[n].durable = nodes[n].log.count
        switch nodes[n].role {
        case .leader(var l):
            let committed = l.markDurable(through: UInt64(nodes[n].durable))
            nodes[n].role = .leader(l)
            ack(n, committed)
        case .follower(var f):
            if f.markDurable(through: UInt64(nodes[n].durable)) { nodes[n].rebuildingOnDisk = false }
            nodes[n].role = .follower(f)
            releaseHeld(n)
        }
    }

    /// etcd's assignment as the rule types read it.
    var assignment: PartitionAssignment {
        PartitionAssignment(epoch: etcd.epoch, leader: ids[etcd.leader], replicas: ids, leaderIncarnation: etcd.incarnation)
    }

    func oldestKept(_ n: Int) -> UInt64 { UInt64(max(1, nodes[n].log.count + 1 - kept)) }

    mutating func pump(_ n: Int, heartbeat: Bool = false) {
        guard canAct(n), case .leader(var l) = nodes[n].role else { return }
        for (i, id) in ids.enumerated() where i != n {
            switch l.next(for: id, oldestKept: oldestKept(n), maxEntries: 3, heartbeat: heartbeat) {
            case .append(let r)?:
                let values = nodes[n].log[Int(r.prevIndex)..<Int(r.prevIndex) + r.entryEpochs.count].map(\.value)
                enqueue(.append(r, values: values), from: n, to: i)
            case .snapshot?:
                enqueue(.snapshot(epoch: l.epoch, history: l.history, entries: nodes[n].log, commit: l.commitIndex), from: n, to: i)
            case nil: break
            }
        }
        nodes[n].role = .leader(l)
    }

    mutating func heartbeat(_ n: Int) { pump(n, heartbeat: true) }

    mutating func notice(_ n: Int) {
        guard canAct(n) else { return }
        switch nodes[n].role {
        case .leader(let l) where etcd.epoch > l.epoch || etcd.leader != n:
            stepDown(n, promised: etcd.epoch)
        case .follower(let f)
        where assignment.mayLead(ids[n], incarnation: nodes[n].incarnation) && etcd.epoch > 0 && etcd.epoch >= nodes[n].mayLeadFrom
            && f.promised <= etcd.epoch:
            let l = ReplicaLeader(
                epoch: etcd.epoch, history: f.history, durable: f.durable, followers: ids.filter { $0 != ids[n] },
                ackReplicas: ackReplicas, commitIndex: f.leaderCommit)
            nodes[n].promisedOnDisk = etcd.epoch
            nodes[n].held = []
            nodes[n].role = .leader(l)
        default: break
        }
    }

    mutating func startFailover(at n: Int, spurious: Bool) {
        guard canAct(n) else { return }
        let leader = etcd.leader
        // Needed when the leader's lease lapsed (down, paused) or it cannot lead its epoch: it
        // restarted, or it promised a newer epoch to a fence that never finished (it runs the
        // failover itself then, in the real shell).
        var cannotLead = nodes[leader].mayLeadFrom > etcd.epoch || !assignment.mayLead(ids[leader], incarnation: nodes[leader].incarnation)
        if case .follower(let f) = nodes[leader].role, f.promised > etcd.epoch { cannotLead = true }
        let needed = etcd.epoch == 0 || !nodes[leader].up || nodes[leader].paused || cannotLead
        guard needed || spurious else { return }
        for i in nodes.indices where nodes[i].paused && i == leader { nodes[i].leaseLapsed = true }
        let epoch = etcd.epoch + 1
        nodes[n].fencing = (epoch, [:])
        answerFence(at: n, epoch: epoch, from: n)
        for i in nodes.indices where i != n { enqueue(.fence(epoch: epoch), from: n, to: i) }
    }

    mutating func answerFence(at n: Int, epoch: UInt64, from controller: Int) {
        if case .leader(let l) = nodes[n].role {
            guard epoch > l.epoch else { return reply(.fenceAnswer(epoch: epoch, .stale(promised: l.epoch)), from: n, to: controller) }
            stepDown(n, promised: l.epoch)
        }
        guard case .follower(var f) = nodes[n].role else { return }
        let answer = f.fence(epoch: epoch)
        nodes[n].promisedOnDisk = f.promised
        nodes[n].role = .follower(f)
        reply(.fenceAnswer(epoch: epoch, answer), from: n, to: controller)
    }

    mutating func reply(_ m: Message, from n: Int, to controller: Int) {
        if n == controller { handle(m, at: n, from: n) } else { enqueue(m, from: n, to: controller) }
    }

    mutating func deliver(from a: Int, to b: Int) {
        guard canAct(b), !links[a][b].isEmpty else { return }
        handle(links[a][b].removeFirst(), at: b, from: a)
    }

    mutating func crash(_ n: Int) {
        guard nodes[n].up else { return }
        nodes[n].up = false
        nodes[n].paused = false
        nodes[n].log.removeLast(nodes[n].log.count - nodes[n].durable)
        nodes[n].waiting = [:]
        nodes[n].held = []
        nodes[n].fencing = nil
        for i in nodes.indices { cut(n, i) }
    }

    /// Loses a node's disk. Only within the fault budget the design promises to survive: while every
    /// other copy is in sync (two copies lost at once can lose acknowledged entries, and then the
    /// partition rightly stays without a leader).
    mutating func wipe(_ n: Int) {
        guard nodes.indices.allSatisfy({ $0 == n || !nodes[$0].rebuildingOnDisk }) else { return restart(n) }
        crash(n)
        nodes[n].log = []
        nodes[n].durable = 0
        nodes[n].promisedOnDisk = 0
        nodes[n].rebuildingOnDisk = etcd.epoch > 0
        nodes[n].incarnation += 1
    }

    mutating func restart(_ n: Int) {
        guard !nodes[n].up else { return }
        var history = EpochHistory()
        for e in nodes[n].log { history.append(epoch: e.epoch, count: 1) }
        var f = ReplicaFollower(
            promised: nodes[n].promisedOnDisk, history: history, inSync: !nodes[n].rebuildingOnDisk, incarnation: nodes[n].incarnation)
        // At start a node reads etcd: it promises the current epoch and leads only a later one.
        if let p = f.observe(epoch: etcd.epoch) { nodes[n].promisedOnDisk = p }
        nodes[n].role = .follower(f)
        nodes[n].mayLeadFrom = etcd.epoch + 1
        nodes[n].up = true
        nodes[n].leaseLapsed = false
    }

    mutating func pause(_ n: Int) { if nodes[n].up { nodes[n].paused = true } }

    mutating func resume(_ n: Int) {
        nodes[n].paused = false
        if nodes[n].leaseLapsed { stepDown(n, promised: 0) }
        nodes[n].leaseLapsed = false
    }

    mutating func cut(_ a: Int, _ b: Int) {
        guard a != b else { return }
        links[a][b] = []
        links[b][a] = []
        if case .leader(var l) = nodes[a].role { l.linkLost(ids[b]); nodes[a].role = .leader(l) }
        if case .leader(var l) = nodes[b].role { l.linkLost(ids[a]); nodes[b].role = .leader(l) }
    }
}
