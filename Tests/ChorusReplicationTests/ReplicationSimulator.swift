import ChorusReplication

/// A deterministic simulation of one partition replicated on a few nodes, driven by a list of
/// operation bytes (so a property test can shrink a failing run to a short one), in the spirit of
/// FoundationDB's and TigerBeetle's simulators: the pure rules of `ChorusReplication` run as the real
/// shells run them, while the simulator plays disks (written vs durable), links (FIFO, cut at will),
/// crashes, wiped disks, pauses, etcd (one compare-and-swap register) and clients.
///
/// Checked after every step: no two copies hold different entries at an index written in one epoch;
/// a serving leader holds every acknowledged entry at its index; an index is never acknowledged with two values.
struct ReplicationSimulator {
    struct Entry: Equatable { var epoch: UInt64; var value: Int }

    enum Message {
        case append(AppendRequest, values: [Int])
        case snapshot(epoch: UInt64, history: EpochHistory, entries: [Entry], commit: UInt64)
        case reply(ReplicaReply)
        case fence(epoch: UInt64)
        case fenceAnswer(epoch: UInt64, ReplicaFollower.FenceAnswer)
    }

    enum Role {
        case follower(ReplicaFollower)
        case leader(ReplicaLeader)
    }

    struct Node {
        var up = true
        var paused = false
        /// Missed a failover while paused: its lease lapsed, so it steps down when it resumes.
        var leaseLapsed = false
        // Disk.
        var log: [Entry] = []
        var durable = 0
        var promisedOnDisk: UInt64 = 0
        var rebuildingOnDisk = false
        /// Changes when the disk is lost.
        var incarnation: UInt64 = 1
        // Memory.
        var role: Role
        /// Entries written by a leader for a client, by index, acked once committed.
        var waiting: [UInt64: Int] = [:]
        /// Accepted replies held until the entries they cover are durable.
        var held: [(to: Int, lastIndex: UInt64, epoch: UInt64)] = []
        /// After a restart: a leader only for epochs from this one on.
        var mayLeadFrom: UInt64 = 0
        var fencing: (epoch: UInt64, answers: [String: (position: LogPosition, incarnation: UInt64)])?
    }

    let ids: [String]
    let ackReplicas: Int
    /// Entries a leader keeps for resending; older ones go by snapshot.
    let kept = 6
    var nodes: [Node]
    var links: [[[Message]]]
    var etcd: (epoch: UInt64, leader: Int, incarnation: UInt64)
    var acked: [UInt64: Int] = [:]
    var nextValue = 1
    var steps = 0
    var violations: [String] = []

    /// A deliberately broken rule for the test that shows the simulator catches loss.
    let promoteOnAnyAnswer: Bool
    /// With W = 1 every replica must answer a fence, so a wiped one (which needs a leader to rebuild
    /// from) blocks failover for good: that mode is run without wipes.
    let allowWipes: Bool

    init(nodes count: Int, ackReplicas: Int, promoteOnAnyAnswer: Bool = false) {
        self.promoteOnAnyAnswer = promoteOnAnyAnswer
        allowWipes = ackReplicas > 1
        ids = (0..<count).map { "n\($0)" }
        self.ackReplicas = ackReplicas
        let follower = ReplicaFollower(promised: 0, history: EpochHistory(), incarnation: 1)
        nodes = (0..<count).map { _ in Node(role: .follower(follower)) }
        links = Array(repeating: Array(repeating: [], count: count), count: count)
        etcd = (0, 0, 0)
    }

    // MARK: driving

    /// Runs one operation chosen by `op` (and `arg` for its target).
    mutating func step(_ op: UInt8, _ arg: UInt8) {
        steps += 1
        let n = Int(arg) % nodes.count
        let m = Int(arg / 16) % nodes.count
        // Faults are rarer than progress (about one step in eight), so runs acknowledge entries
        // between failovers instead of failing over forever.
        switch op % 32 {
        case 0...5: write(pick: Int(arg))
        case 6...9: deliver(from: n, to: m)
        case 10...13: tick()
        case 14...16: sync(n)
        case 17...19: pump(n)
        case 20, 21: notice(n)
        case 22: startFailover(at: n, spurious: op >= 128)
        case 23: if op >= 128 { crash(n) } else { restart(n) }
        case 24: if op >= 192 && allowWipes { wipe(n) } else { restart(n) }
        case 25: if nodes[n].paused { resume(n) } else if op >= 128 { pause(n) }
        case 26: cut(n, m)
        case 27, 28: heartbeat(n)
        default: deliver(from: m, to: n)
        }
        check()
    }

    /// A moment of calm: every live node notices etcd, sends, receives and syncs once.
    mutating func tick() {
        for i in nodes.indices { notice(i); pump(i) }
        for a in nodes.indices { for b in nodes.indices { while !links[a][b].isEmpty && canAct(b) { deliver(from: a, to: b) } } }
        for i in nodes.indices { sync(i) }
        for a in nodes.indices { for b in nodes.indices { while !links[a][b].isEmpty && canAct(b) { deliver(from: a, to: b) } } }
    }

    /// Ends every fault and runs the protocol until nothing moves; then every copy must be equal and
    /// hold every acknowledged entry.
    mutating func settle() {
        for i in nodes.indices {
            if nodes[i].paused { resume(i) }
            if !nodes[i].up { restart(i) }
        }
        for _ in 0..<200 {
            for i in nodes.indices { notice(i) }
            if !leaderServing { for i in nodes.indices { startFailover(at: i, spurious: false) } }
            for _ in 0..<4 {
                for i in nodes.indices { pump(i); heartbeat(i) }
                for a in nodes.indices { for b in nodes.indices { while !links[a][b].isEmpty { deliver(from: a, to: b) } } }
                for i in nodes.indices { sync(i) }
                for a in nodes.indices { for b in nodes.indices { while !links[a][b].isEmpty { deliver(from: a, to: b) } } }
            }
            check()
            if leaderServing, converged { break }
        }
        guard leaderServing else { violations.append("no leader after settling (etcd epoch \(etcd.epoch))"); return }
        guard converged else { violations.append("copies differ after settling: \(nodes.map { $0.log.map(\.value) })"); return }
        for (index, value) in acked {
            for (i, node) in nodes.enumerated() where node.log.count < Int(index) || node.log[Int(index) - 1].value != value {
                violations.append("\(ids[i]) lost acknowledged \(value) at \(index)")
            }
        }
    }

    var leaderServing: Bool {
        guard case .leader(let l) = nodes[etcd.leader].role else { return false }
        return l.epoch == etcd.epoch && nodes[etcd.leader].up && !nodes[etcd.leader].paused
    }

    var converged: Bool {
        let first = nodes[0].log
        return nodes.allSatisfy { $0.log == first && $0.durable == $0.log.count }
    }
}
