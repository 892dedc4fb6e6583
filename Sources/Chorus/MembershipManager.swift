import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusGateway
import ChorusMesh
import Logging
import Synchronization

/// Membership changes on one node (docs/CLUSTER.md, "Changing membership"). Every node is a
/// participant: `prepare` freezes the keys the next ring moves to or from it and hands its leaving
/// keys to their new owners, `commit` switches rings, `abort` goes back. The node an operator asks
/// also coordinates (`MembershipManager+Coordinator.swift`).
final class MembershipManager: Sendable {
    enum Phase: Sendable, Equatable {
        case idle
        case transferring
        case ready
        case failed(String)
    }

    struct State: Sendable {
        var current: ClusterMembership
        var pending: ClusterMembership?
        var phase: Phase = .idle
        /// A node started with `--join`: not a member yet, its epoch unknown until a prepare names it.
        var joining: Bool
        var coordinating = false
        /// A prepare persisting its pending file (published as `pending` once durable).
        var reserved: ClusterMembership?
    }

    let selfId: String
    let cell: PlacementCell
    let mesh: MeshNode
    let transport: any PeerTransport
    let handover: Handover
    let conversations: Conversations
    let writer: RemoteInboxWriter
    let fanout: InboxFanout?
    let sessions: SessionRegistry
    let store: MembershipStore
    let logger: Logger
    let state: Mutex<State>
    /// Run after a commit (the email service arms the users that arrived).
    let onCommit: @Sendable () async -> Void

    init(
        selfId: String, current: ClusterMembership, pending: ClusterMembership?, joining: Bool, cell: PlacementCell, mesh: MeshNode,
        transport: any PeerTransport, handover: Handover, onCommit: @escaping @Sendable () async -> Void = {}, conversations: Conversations,
        writer: RemoteInboxWriter, fanout: InboxFanout?, sessions: SessionRegistry, store: MembershipStore, logger: Logger
    ) {
        self.onCommit = onCommit
        self.selfId = selfId
        self.cell = cell
        self.mesh = mesh
        self.transport = transport
        self.handover = handover
        self.conversations = conversations
        self.writer = writer
        self.fanout = fanout
        self.sessions = sessions
        self.store = store
        self.logger = logger
        state = Mutex(State(current: current, pending: pending, joining: joining))
    }

    var current: ClusterMembership { state.withLock { $0.current } }
    var pending: ClusterMembership? { state.withLock { $0.pending } }

    /// At start: a change prepared before a restart is prepared again (the hand-over is repeated;
    /// the receiver's copies are replaced).
    func resume() {
        guard let next = pending else { return }
        logger.warning("a membership change was in progress at restart; preparing it again", metadata: ["epoch": "\(next.epoch)"])
        begin(next)
    }

    // MARK: participant

    /// Freezes, persists the pending membership and starts the hand-over. Idempotent for the same
    /// change; refuses another while one is pending.
    func prepare(_ next: ClusterMembership) throws(ChatError) {
        let decision = state.withLock { s -> Result<Bool, ChatError> in
            if let p = s.pending ?? s.reserved {
                return p == next ? .success(false) : .failure(.unavailable("another membership change (epoch \(p.epoch)) is in progress"))
            }
            if s.joining {
                guard next.members[selfId] != nil else { return .failure(.badRequest("this joining node is not in the new membership")) }
            } else if next.epoch != s.current.epoch + 1 {
                return .failure(.unavailable("membership epoch \(next.epoch) does not follow this node's \(s.current.epoch)"))
            }
            s.reserved = next
            return .success(true)
        }
        guard try decision.get() else { return }
        // Durable before anyone (the coordinator, GET /v1/cluster) is told it is prepared.
        do { try store.save(pending: next) } catch {
            state.withLock { $0.reserved = nil }
            throw .unavailable("cannot persist the pending membership: \(error)")
        }
        state.withLock { s in
            s.reserved = nil
            s.pending = next
            s.phase = .transferring
        }
        begin(next)
    }

    private func begin(_ next: ClusterMembership) {
        let current = self.current
        cell.begin(.init(next: next.ring, epoch: next.epoch))
        var peers = current.members.merging(next.members) { a, _ in a }
        peers[selfId] = nil
        mesh.reconfigure(peers: Self.addresses(peers), ringSignature: current.ring.signature, alsoAccepting: [next.ring.signature])
        // Sessions of users leaving this node: closed now (1012); they reconnect and are served by
        // the new owner once the change commits.
        let move = MembershipMove(before: current.ring, after: next.ring, selfId: selfId)
        sessions.close(usersWhere: { move.destination(ofPoint: KeyPoint.of(id: $0)) != nil }, code: CloseCode.userMoved, reason: "user moved to another node")
        state.withLock { $0.phase = .transferring }
        logger.info("membership change prepared: keys frozen, handing over", metadata: ["epoch": "\(next.epoch)", "members": "\(next.ids)"])
        Task { await transfer(move, epoch: next.epoch) }
    }

    /// Hands every leaving key to its new owner, batch by batch, each logged there before the next.
    private func transfer(_ move: MembershipMove, epoch: UInt64) async {
        let started = ContinuousClock.now
        do throws(ChatError) {
            let batches = try await handover.export(destination: { move.destination(ofPoint: $0) })
            var events = 0
            for (node, list) in batches {
                for batch in list {
                    try await requestWithRetry(MembershipWire.handover(epoch: epoch, batch), to: node)
                    events += batch.count
                }
            }
            state.withLock { s in if s.pending?.epoch == epoch { s.phase = .ready } }
            logger.info("hand-over complete", metadata: [
                "epoch": "\(epoch)", "events": "\(events)", "to": "\(batches.keys.sorted())", "elapsed": "\(ContinuousClock.now - started)",
            ])
        } catch {
            state.withLock { s in if s.pending?.epoch == epoch { s.phase = .failed(error.message) } }
            logger.error("hand-over failed", metadata: ["epoch": "\(epoch)", "error": "\(error.message)"])
        }
    }

    /// A request retried for up to 15 s while the peer is unreachable (links to a new member are
    /// still being dialled) or refuses (it has not prepared yet).
    func requestWithRetry(_ payload: [UInt8], to node: String) async throws(ChatError) {
        var attempt = 0
        while true {
            let result: Result<Void, ChatError>
            do {
                let answer = try await transport.request(payload, to: node)
                result = PeerAnswer.decode(answer).map { _ in () }
            } catch {
                result = .failure(error)
            }
            switch result {
            case .success: return
            case .failure(let e):
                attempt += 1
                guard attempt < 150 else { throw e }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// A batch handed to this node: logged, then applied (conversations staged until commit).
    func receive(epoch: UInt64, _ events: [ChorusEvent]) async throws(ChatError) {
        guard pending?.epoch == epoch else { throw .unavailable("no membership change with epoch \(epoch) is prepared here") }
        try await handover.receive(events)
    }

    func phase(of epoch: UInt64) -> Phase {
        state.withLock { s in
            if s.current.epoch >= epoch, s.pending == nil, !s.joining { return .ready }
            guard s.pending?.epoch == epoch else { return .failed("no change with epoch \(epoch) is prepared here") }
            return s.phase
        }
    }

    /// Switches to `next`: persisted, received conversations made live, rings switched (keys
    /// unfrozen), handed-away state forgotten, and every peer reconciled. Idempotent.
    func commit(_ next: ClusterMembership) async throws(ChatError) {
        let previous = state.withLock { s -> ClusterMembership? in
            if !s.joining, s.current.epoch >= next.epoch { return nil }
            return s.current
        }
        guard let previous else { return }
        do { try store.save(current: next) } catch { throw .unavailable("cannot persist the membership: \(error)") }
        try? store.clearPending()
        await handover.adopt()
        // Members arriving here get what they lack of the conversations here (those that arrived
        // with them included) before anything unfreezes: no one else reconciles a member with a
        // conversation on its own node.
        let move = MembershipMove(before: previous.ring, after: next.ring, selfId: selfId)
        let arriving: @Sendable (String) -> Bool = { move.arrives(point: KeyPoint.of(id: $0)) }
        let withArrivals = conversations.localCores(where: { _ in true }).filter { $0.members.contains(where: arriving) }.map(\.id)
        await conversations.fillArrivingInboxes(of: withArrivals, arriving: arriving, writer: writer)
        var peers = next.members
        peers[selfId] = nil
        // Nothing leaves for a peer until it is reconciled under the new ring: entries for users who
        // moved may be stuck at (or lost with) their old owner, and must reach the new owner before
        // anything newer, so each member still gets each conversation in seq order without holes.
        fanout?.pause(nodes: Array(peers.keys))
        if cell.pending?.epoch == next.epoch {
            cell.commit(epoch: next.epoch)
        } else {
            cell.begin(.init(next: next.ring, epoch: next.epoch))
            cell.commit(epoch: next.epoch)
        }
        let placement = cell.current
        let purged = fanout?.purge(misplaced: { user, node in placement.owner(ofUser: user) != node }) ?? 0
        state.withLock { s in
            s.current = next
            s.pending = nil
            s.phase = .idle
            s.joining = false
        }
        mesh.reconfigure(peers: Self.addresses(peers), ringSignature: next.ring.signature, alsoAccepting: [previous.ring.signature])
        await conversations.release(where: { !placement.isLocal(conversation: $0) }, usersWhere: { !placement.isLocal(user: $0) })
        writer.forgetHighs()
        for gone in previous.ids where next.members[gone] == nil { fanout?.discard(node: gone) }
        for peer in peers.keys {
            Task { [conversations, fanout] in
                await conversations.reconcile(with: peer)
                fanout?.resume(node: peer)
            }
        }
        if purged > 0 { logger.info("fan-out entries for moved users left to reconciliation", metadata: ["entries": "\(purged)"]) }
        await onCommit()
        if next.members[selfId] == nil {
            logger.warning("this node left the cluster (membership epoch \(next.epoch)); it owns nothing now: stop it")
        } else {
            logger.info("membership committed", metadata: ["epoch": "\(next.epoch)", "members": "\(next.ids)"])
        }
    }

    /// Unfreezes under the current ring and forgets what was received.
    func abort(_ next: ClusterMembership) {
        let aborted = state.withLock { s -> Bool in
            guard s.pending == next else { return false }
            s.pending = nil
            s.phase = .idle
            return true
        }
        guard aborted else { return }
        try? store.clearPending()
        cell.abort()
        handover.discardStaged()
        let current = self.current
        var peers = current.members
        peers[selfId] = nil
        mesh.reconfigure(peers: Self.addresses(peers), ringSignature: current.ring.signature, alsoAccepting: [])
        logger.warning("membership change aborted", metadata: ["epoch": "\(next.epoch)"])
    }

    static func addresses(_ members: [String: String]) -> [String: PeerAddress] {
        members.compactMapValues { a in
            guard let colon = a.lastIndex(of: ":"), let port = Int(a[a.index(after: colon)...]) else { return nil }
            return PeerAddress(host: String(a[..<colon]), port: port)
        }
    }
}
