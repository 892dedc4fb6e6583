import ChorusCLI
import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusGateway
import ChorusPeer

extension MembershipManager {
    /// Runs a change as its coordinator, in the order `MembershipChangePlan` gives: prepare every
    /// node, wait until each has handed its leaving keys over, then commit everywhere. A failure
    /// before the commit aborts everywhere. Repeating a committed change re-sends the commit (for
    /// a node that missed it).
    func coordinate(_ request: MembershipChangeRequest, deadline: Duration = .seconds(300)) async throws(ChatError) -> ClusterMembership {
        let plan = try state.withLock { $0.coordinate(request) }.mapError(Self.chatError).get()
        defer { state.withLock { $0.finishCoordinating() } }
        switch plan {
        case .recommit(let m, let targets):
            for node in targets { try? await stepOnce(.commit(m), at: node) }
            return m
        case .change(let change):
            try await run(change, deadline: deadline)
            return change.next
        }
    }

    private func run(_ change: MembershipChangePlan, deadline: Duration) async throws(ChatError) {
        let next = change.next
        logger.info("coordinating a membership change", metadata: ["epoch": "\(next.epoch)", "members": "\(next.ids)"])
        do throws(ChatError) {
            for node in change.prepareOrder { try await step(.prepare(next), at: node) }
            try await waitUntilReady(next, nodes: change.prepareOrder, deadline: deadline)
        } catch {
            for node in change.prepareOrder { try? await stepOnce(.abort(next), at: node) }
            throw .unavailable("membership change aborted: \(error.message)")
        }
        var unconfirmed: [String] = []
        for node in change.commitOrder {
            do throws(ChatError) { try await step(.commit(next), at: node) } catch { unconfirmed.append(node) }
        }
        if !unconfirmed.isEmpty {
            logger.error("membership committed, but not confirmed by \(unconfirmed); they switch when they hear the commit again")
        }
    }

    private func waitUntilReady(_ next: ClusterMembership, nodes: [String], deadline: Duration) async throws(ChatError) {
        let started = ContinuousClock.now
        let nowMs = { Int64((ContinuousClock.now - started) / .milliseconds(1)) }
        var wait = ReadinessWait(nodes: nodes, nowMs: 0, timeoutMs: Int64(deadline / .milliseconds(1)))
        while true {
            switch wait.next(nowMs: nowMs()) {
            case .commit: return
            case .abort(let why): throw .unavailable(why)
            case .poll(let waiting):
                for node in waiting {
                    wait.observe(node, try await status(next.epoch, at: node))
                    if wait.failure != nil { break }
                }
                if case .poll = wait.next(nowMs: nowMs()) { try? await Task.sleep(for: .milliseconds(50)) }
            }
        }
    }

    /// One step of the change on `node` (this node's own part runs here), retried while the node
    /// cannot be reached or refuses.
    private func step(_ step: MembershipRequest, at node: String) async throws(ChatError) {
        if node == selfId { return try await local(step) }
        try await requestWithRetry(step, to: node)
    }

    private func stepOnce(_ step: MembershipRequest, at node: String) async throws(ChatError) {
        if node == selfId { return try await local(step) }
        _ = try await client.call(.membership(step), to: node)
    }

    private func local(_ step: MembershipRequest) async throws(ChatError) {
        switch step {
        case .prepare(let next): try prepare(next)
        case .commit(let next): try await commit(next)
        case .abort(let next): abort(next)
        case .status, .handover: break
        }
    }

    private func status(_ epoch: UInt64, at node: String) async throws(ChatError) -> MembershipPhase {
        if node == selfId { return phase(of: epoch) }
        let reply = try await client.call(.membership(.status(epoch: epoch)), to: node)
        guard case .phase(let phase) = reply else { throw PeerReply.unexpected(reply) }
        return phase
    }
}

extension MembershipManager: MembershipRequestHandler {
    /// A coordinator's step, or a hand-over batch, from `peer`.
    func handle(_ request: MembershipRequest, from peer: String) async -> Result<PeerReply, ChatError> {
        do throws(ChatError) {
            switch request {
            case .handover(let epoch, let events):
                try await receive(epoch: epoch, events)
                return .success(.done)
            case .status(let epoch):
                return .success(.phase(phase(of: epoch)))
            case .prepare, .commit, .abort:
                try await local(request)
                return .success(.done)
            }
        } catch {
            return .failure(error)
        }
    }
}

extension MembershipManager {
    /// `POST /v1/cluster/members` with `Authorization: Bearer <--admin-token>` and a body of
    /// `{"add": "ID@HOST:PORT"}` or `{"remove": "ID"}`: runs the change, answers the new membership.
    func handleAdmin(_ r: APIRequest, adminToken: String) async -> APIResponse {
        await Self.admin(r, adminToken: adminToken) { request throws(ChatError) in try await coordinate(request) }
    }

    /// The admin request's checks and answer around `change` (static or replicated membership).
    static func admin(
        _ r: APIRequest, adminToken: String, change: (MembershipChangeRequest) async throws(ChatError) -> ClusterMembership
    ) async -> APIResponse {
        guard let given = r.bearerToken, constantTimeEqual(given, adminToken) else {
            return .error(401, code: "unauthorized", message: "membership changes need the node's admin token")
        }
        let request: MembershipChangeRequest
        do {
            let body = try r.jsonObject()
            if let add = try body.optionalString("add") {
                let (id, host, port) = try ConfigParsing.peer(add)
                request = .add(id: id, address: "\(host):\(port)")
            } else if let remove = try body.optionalString("remove") {
                request = .remove(id: remove)
            } else {
                throw ChatError.badRequest("expected {\"add\": \"ID@HOST:PORT\"} or {\"remove\": \"ID\"}")
            }
        } catch let e as ChatError {
            return .error(e)
        } catch {
            return .error(.badRequest("add: \(error)"))
        }
        do throws(ChatError) {
            let m = try await change(request)
            let members = m.ids.map { ["nodeId": $0, "mesh": m.members[$0]!] }
            return .json(200, ["epoch": m.epoch, "members": members])
        } catch {
            return .error(error)
        }
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in x.indices { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
