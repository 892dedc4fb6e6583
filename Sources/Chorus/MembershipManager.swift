import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusGateway
import ChorusMesh
import ChorusPeer
import Logging
import Synchronization

/// The shell of membership changes on one node (docs/CLUSTER.md, "Changing membership"): the
/// rules are `MembershipParticipant`'s (pure, in ChorusCluster); this type carries out what they
/// decide — persisting, freezing keys, handing over, switching rings and the mesh. The node an
/// operator asks also coordinates (`MembershipManager+Coordinator.swift`).
final class MembershipManager: Sendable {
    let selfId: String
    let cell: PlacementCell
    let mesh: MeshNode
    let client: PeerClient
    let handover: Handover
    let conversations: Conversations
    let writer: RemoteInboxWriter
    let fanout: InboxFanout?
    let sessions: SessionRegistry
    let store: MembershipStore
    let logger: Logger
    let state: Mutex<MembershipParticipant>
    /// Run after a commit (the email service arms the users that arrived).
    let onCommit: @Sendable () async -> Void

    init(
        selfId: String, current: ClusterMembership, pending: ClusterMembership?, joining: Bool, cell: PlacementCell, mesh: MeshNode,
        client: PeerClient, handover: Handover, onCommit: @escaping @Sendable () async -> Void = {}, conversations: Conversations,
        writer: RemoteInboxWriter, fanout: InboxFanout?, sessions: SessionRegistry, store: MembershipStore, logger: Logger
    ) {
        self.onCommit = onCommit
        self.selfId = selfId
        self.cell = cell
        self.mesh = mesh
        self.client = client
        self.handover = handover
        self.conversations = conversations
        self.writer = writer
        self.fanout = fanout
        self.sessions = sessions
        self.store = store
        self.logger = logger
        state = Mutex(MembershipParticipant(selfId: selfId, current: current, pending: pending, joining: joining))
    }

    var current: ClusterMembership { state.withLock { $0.current } }
    var pending: ClusterMembership? { state.withLock { $0.pending } }

    /// At start: a change prepared before a restart is prepared again.
    func resume() {
        guard let (next, move) = state.withLock({ $0.resume() }) else { return }
        logger.warning("a membership change was in progress at restart; preparing it again", metadata: ["epoch": "\(next.epoch)"])
        begin(next, move)
    }

    // MARK: participant

    /// Persists the pending membership, freezes and starts the hand-over. Idempotent for the same
    /// change; refuses another while one is pending.
    func prepare(_ next: ClusterMembership) throws(ChatError) {
        guard case .persist(let next) = try state.withLock({ $0.prepare(next) }).mapError(Self.chatError).get() else { return }
        // Durable before anyone (the coordinator, GET /v1/cluster) is told it is prepared.
        do { try store.save(pending: next) } catch {
            state.withLock { $0.pendingNotPersisted(next) }
            throw .unavailable("cannot persist the pending membership: \(error)")
        }
        begin(next, state.withLock { $0.pendingPersisted(next) })
    }

    private func begin(_ next: ClusterMembership, _ move: MembershipMove) {
        let current = self.current
        cell.begin(.init(next: next.ring, epoch: next.epoch))
        var peers = current.members.merging(next.members) { a, _ in a }
        peers[selfId] = nil
        mesh.reconfigure(peers: Self.addresses(peers), ringSignature: current.ring.signature, alsoAccepting: [next.ring.signature])
        // Sessions of users leaving this node: closed now (1012); they reconnect and are served by
        // the new owner once the change commits.
        sessions.close(usersWhere: { move.destination(ofPoint: KeyPoint.of(id: $0)) != nil }, code: CloseCode.userMoved, reason: "user moved to another node")
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
                    try await requestWithRetry(.handover(epoch: epoch, events: batch), to: node)
                    events += batch.count
                }
            }
            state.withLock { $0.handoverEnded(epoch: epoch, failure: nil) }
            logger.info("hand-over complete", metadata: [
                "epoch": "\(epoch)", "events": "\(events)", "to": "\(batches.keys.sorted())", "elapsed": "\(ContinuousClock.now - started)",
            ])
        } catch {
            state.withLock { $0.handoverEnded(epoch: epoch, failure: error.message) }
            logger.error("hand-over failed", metadata: ["epoch": "\(epoch)", "error": "\(error.message)"])
        }
    }

    /// A request retried for up to 15 s while the peer is unreachable (links to a new member are
    /// still being dialled) or refuses (it has not prepared yet).
    func requestWithRetry(_ request: MembershipRequest, to node: String) async throws(ChatError) {
        var attempt = 0
        while true {
            let result: Result<PeerReply, ChatError>
            do throws(ChatError) {
                result = .success(try await client.call(.membership(request), to: node))
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
        if let refusal = state.withLock({ $0.handoverRefusal(epoch: epoch) }) { throw Self.chatError(refusal) }
        try await handover.receive(events)
    }

    func phase(of epoch: UInt64) -> MembershipPhase { state.withLock { $0.phase(of: epoch) } }

    /// Switches to `next`: persisted, received conversations made live, rings switched (keys
    /// unfrozen), handed-away state forgotten, and every peer reconciled. Idempotent.
    func commit(_ next: ClusterMembership) async throws(ChatError) {
        guard case .switchRings(let previous) = state.withLock({ $0.commit(next) }) else { return }
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
        state.withLock { $0.committed(next) }
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
        guard state.withLock({ $0.abort(next) }) else { return }
        try? store.clearPending()
        cell.abort()
        handover.discardStaged()
        let current = self.current
        var peers = current.members
        peers[selfId] = nil
        mesh.reconfigure(peers: Self.addresses(peers), ringSignature: current.ring.signature, alsoAccepting: [])
        logger.warning("membership change aborted", metadata: ["epoch": "\(next.epoch)"])
    }

    /// The wire form of a refusal.
    static func chatError(_ r: MembershipRefusal) -> ChatError {
        switch r {
        case .anotherChangeInProgress(let epoch): .unavailable("another membership change (epoch \(epoch)) is in progress; repeat it to finish it")
        case .epochDoesNotFollow(let given, let current): .unavailable("membership epoch \(given) does not follow this node's \(current)")
        case .joiningNodeNotInMembership: .badRequest("this joining node is not in the new membership")
        case .notPrepared(let epoch): .unavailable("no membership change with epoch \(epoch) is prepared here")
        case .joiningCannotCoordinate: .unavailable("this node is joining; ask a member")
        case .alreadyCoordinating: .unavailable("a membership change is in progress")
        case .invalid(let refusal): .badRequest("\(refusal)")
        case .alreadyMemberElsewhere(let id, let address): .badRequest("\(id) is already a member at \(address)")
        }
    }

    static func addresses(_ members: [String: String]) -> [String: PeerAddress] {
        members.compactMapValues { a in
            guard let colon = a.lastIndex(of: ":"), let port = Int(a[a.index(after: colon)...]) else { return nil }
            return PeerAddress(host: String(a[..<colon]), port: port)
        }
    }
}
