import ChorusCluster
import ChorusCore
import ChorusEngine
import ChorusGateway

/// An operator's request (`POST /v1/cluster/members`).
enum MembershipChangeRequest: Sendable, Equatable {
    case add(id: String, address: String)
    case remove(id: String)
}

extension MembershipManager {
    /// Runs a change as its coordinator: prepare every node of both memberships (this one, the
    /// new members, the rest), wait until each has handed its leaving keys over, then commit everywhere. A failure
    /// before the commit aborts everywhere (nothing moved: the old ring still owns everything).
    /// Repeating a committed change re-sends the commit (for a node that missed it).
    func coordinate(_ request: MembershipChangeRequest, deadline: Duration = .seconds(300)) async throws(ChatError) -> ClusterMembership {
        let start = state.withLock { s -> Result<ClusterMembership?, ChatError> in
            guard !s.joining else { return .failure(.unavailable("this node is joining; ask a member")) }
            guard !s.coordinating else { return .failure(.unavailable("a membership change is in progress")) }
            let next: Result<ClusterMembership, ClusterMembership.ChangeRefusal>
            switch request {
            case .add(let id, let address): next = s.current.adding(id, at: address)
            case .remove(let id): next = s.current.removing(id)
            }
            if let p = s.pending {
                // The same change, prepared by a coordinator that is gone: this node finishes it.
                guard case .success(let n) = next, n == p else {
                    return .failure(.unavailable("another membership change (epoch \(p.epoch)) is in progress; repeat it to finish it"))
                }
                s.coordinating = true
                return .success(n)
            }
            switch next {
            case .success(let n):
                s.coordinating = true
                return .success(n)
            case .failure(.alreadyMember(let id)):
                // Already done (maybe a commit some node missed): the current one is committed again.
                guard case .add(_, let address) = request, s.current.members[id] == address else {
                    return .failure(.badRequest("\(id) is already a member at \(s.current.members[id] ?? "?")"))
                }
                s.coordinating = true
                return .success(nil)
            case .failure(.notMember):
                s.coordinating = true
                return .success(nil)
            case .failure(let refusal):
                return .failure(.badRequest("\(refusal)"))
            }
        }
        let planned = try start.get()
        defer { state.withLock { $0.coordinating = false } }
        let current = self.current
        guard let next = planned else {
            // Every member and, for a removal, the node removed hear the commit again.
            var targets = current.ids
            if case .remove(let id) = request { targets.append(id) }
            for node in targets where node != selfId { try? await stepOnce(.commit, current, at: node) }
            return current
        }
        let newcomers = next.ids.filter { current.members[$0] == nil }
        // This node first: its mesh learns the newcomers' addresses before it asks them anything.
        let order = [selfId] + newcomers + current.ids.filter { $0 != selfId }
        logger.info("coordinating a membership change", metadata: ["epoch": "\(next.epoch)", "members": "\(next.ids)"])

        do throws(ChatError) {
            for node in order { try await step(.prepare, next, at: node) }
            try await waitUntilReady(next, nodes: order, deadline: deadline)
        } catch {
            for node in order { try? await stepOnce(.abort, next, at: node) }
            throw .unavailable("membership change aborted: \(error.message)")
        }
        // Nodes leaving first, this node last: its mesh drops its links to leaving nodes when it
        // commits, so they must have heard the commit by then.
        var unconfirmed: [String] = []
        let leaving = current.ids.filter { next.members[$0] == nil && $0 != selfId }
        let commitOrder = leaving + order.filter { $0 != selfId && !leaving.contains($0) } + [selfId]
        for node in commitOrder {
            do throws(ChatError) { try await step(.commit, next, at: node) } catch { unconfirmed.append(node) }
        }
        if !unconfirmed.isEmpty {
            logger.error("membership committed, but not confirmed by \(unconfirmed); they switch when they hear the commit again")
        }
        return next
    }

    private func waitUntilReady(_ next: ClusterMembership, nodes: [String], deadline: Duration) async throws(ChatError) {
        let until = ContinuousClock.now + deadline
        var waiting = Set(nodes)
        while !waiting.isEmpty {
            for node in waiting.sorted() {
                switch try await status(next.epoch, at: node) {
                case .ready: waiting.remove(node)
                case .failed(let why): throw .unavailable("node \(node): \(why)")
                case .idle, .transferring: break
                }
            }
            guard !waiting.isEmpty else { return }
            guard ContinuousClock.now < until else { throw .unavailable("hand-over not complete on \(waiting.sorted()) in time") }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    private func step(_ s: MembershipWire.Step, _ next: ClusterMembership, at node: String) async throws(ChatError) {
        if node == selfId { return try await local(s, next) }
        try await requestWithRetry(MembershipWire.step(s, next), to: node)
    }

    private func stepOnce(_ s: MembershipWire.Step, _ next: ClusterMembership, at node: String) async throws(ChatError) {
        if node == selfId { return try await local(s, next) }
        _ = try PeerAnswer.decode(try await transport.request(MembershipWire.step(s, next), to: node)).get()
    }

    private func local(_ s: MembershipWire.Step, _ next: ClusterMembership) async throws(ChatError) {
        switch s {
        case .prepare: try prepare(next)
        case .commit: try await commit(next)
        case .abort: abort(next)
        case .status: break
        }
    }

    private func status(_ epoch: UInt64, at node: String) async throws(ChatError) -> Phase {
        if node == selfId { return phase(of: epoch) }
        var w = ByteWriter(capacity: 16)
        w.write(PeerKind.membership.rawValue)
        w.write(MembershipWire.Step.status.rawValue)
        w.write(epoch)
        let body = try PeerAnswer.decode(try await transport.request(w.bytes, to: node)).get()
        var r = ByteReader(Array(body))
        guard let code = try? r.readUInt8(), let reason = try? r.readString(bound: 4096) else { throw .unavailable("malformed status from \(node)") }
        switch code {
        case 1: return .transferring
        case 2: return .ready
        case 3: return .failed(reason)
        default: return .idle
        }
    }

    /// Answers a peer's membership step or hand-over batch (a `PeerAnswer`).
    func answer(_ payload: [UInt8]) async -> [UInt8] {
        var r = ByteReader(payload, offset: 1)
        do throws(ChatError) {
            if payload.first == PeerKind.handover.rawValue {
                guard let (epoch, events) = try? MembershipWire.readHandover(&r) else { throw .badRequest("malformed hand-over batch") }
                try await receive(epoch: epoch, events)
                return PeerAnswer.ok()
            }
            guard let raw = try? r.readUInt8(), let s = MembershipWire.Step(rawValue: raw) else { throw .badRequest("malformed membership step") }
            if s == .status {
                guard let epoch = try? r.readUInt64() else { throw .badRequest("malformed status request") }
                var w = ByteWriter(capacity: 32)
                switch phase(of: epoch) {
                case .idle: w.write(UInt8(0)); w.writeString("")
                case .transferring: w.write(UInt8(1)); w.writeString("")
                case .ready: w.write(UInt8(2)); w.writeString("")
                case .failed(let why): w.write(UInt8(3)); w.writeString(why)
                }
                return PeerAnswer.ok(w.bytes)
            }
            guard let next = try? ClusterMembership.read(from: &r) else { throw .badRequest("malformed membership") }
            try await local(s, next)
            return PeerAnswer.ok()
        } catch {
            return PeerAnswer.failure(error)
        }
    }
}

extension MembershipManager {
    /// `POST /v1/cluster/members` with `Authorization: Bearer <--admin-token>` and a body of
    /// `{"add": "ID@HOST:PORT"}` or `{"remove": "ID"}`: runs the change, answers the new membership.
    func handleAdmin(_ r: APIRequest, adminToken: String) async -> APIResponse {
        guard let given = r.bearerToken, Self.constantTimeEqual(given, adminToken) else {
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
        let outcome: Result<ClusterMembership, ChatError>
        do throws(ChatError) {
            outcome = .success(try await coordinate(request))
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success(let m):
            let members = m.ids.map { ["nodeId": $0, "mesh": m.members[$0]!] }
            return .json(200, ["epoch": m.epoch, "members": members])
        case .failure(let e):
            return .error(e)
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
