import ChorusCluster
import ChorusCore
import ChorusGateway
import ChorusMesh
import ChorusPeer
import Logging
import ServiceLifecycle
import Synchronization

/// The mesh as the gateway's `PeerTransport`: every transport failure is `unavailable`. A request
/// to this node itself (with replication a node can own the user a conversation it leads writes
/// to) goes straight to its own dispatcher.
struct MeshTransport: PeerTransport {
    let node: MeshNode
    let local: LocalDispatch

    func request(_ payload: [UInt8], to peer: String, reply: @escaping @Sendable (Result<[UInt8], ChatError>) -> Void) {
        if peer == node.configuration.selfId {
            guard let dispatcher = local.dispatcher else { return reply(.failure(.unavailable("this node is starting"))) }
            return dispatcher.request(payload, from: peer) { reply(.success($0)) }
        }
        node.request(payload, to: peer) { result in
            reply(result.mapError { e in ChatError.unavailable("node \(peer) cannot be reached (\(e))") })
        }
    }

    func send(_ payload: [UInt8], to peer: String) {
        if peer == node.configuration.selfId { local.dispatcher?.event(payload, from: peer) } else { node.send(payload, to: peer) }
    }
}

/// The node's own dispatcher, for requests it sends itself; set once the cluster's parts exist.
final class LocalDispatch: Sendable {
    private let value = Mutex<PeerDispatcher?>(nil)
    var dispatcher: PeerDispatcher? { value.withLock { $0 } }
    func set(_ d: PeerDispatcher) { value.withLock { $0 = d } }
}

/// The mesh's inbound side: every frame a peer sends goes to the node's `PeerDispatcher`, and so
/// does every change the failure detector sees.
struct MeshDispatch: MeshService {
    let dispatcher: PeerDispatcher

    func handle(request payload: [UInt8], from peer: String, reply: @escaping @Sendable (Result<[UInt8], MeshError>) -> Void) {
        dispatcher.request(payload, from: peer) { reply(.success($0)) }
    }

    func handle(oneWay payload: [UInt8], from peer: String) { dispatcher.event(payload, from: peer) }

    func peer(_ peer: String, changedTo status: FailureDetector.Status) {
        switch status {
        case .alive: dispatcher.peer(peer, is: .reachable)
        case .dead: dispatcher.peer(peer, is: .unreachable)
        case .suspect: break
        }
    }
}

/// The mesh as a `Service`: listens and dials on start; stops (closing every peer connection)
/// after the gateway has stopped taking clients.
struct MeshLifecycle: Service {
    let node: MeshNode
    let dispatcher: PeerDispatcher
    let logger: Logger

    func run() async throws {
        let bound: PeerAddress
        do {
            bound = try await node.start(serving: MeshDispatch(dispatcher: dispatcher))
        } catch {
            // The node stops (the group is cancelled) and `chorus serve` exits non-zero.
            logger.critical("mesh could not listen", metadata: ["address": "\(node.configuration.listen)", "error": "\(error)"])
            throw error
        }
        logger.info("mesh listening", metadata: [
            "address": "\(bound)", "peers": "\(node.configuration.peers.keys.sorted())", "tls": "\(node.configuration.tls != nil)",
        ])
        if node.configuration.tls == nil {
            logger.warning("mesh without TLS (--mesh-insecure): anyone who reaches \(bound) can act as a member; for tests on loopback only")
        }
        try? await gracefulShutdown()
        await node.stop()
        logger.info("mesh stopped")
    }
}

/// Peers' client-facing addresses, asked over the mesh and remembered (for `GET /v1/cluster`).
/// A remembered address answers at once and is refreshed in the background (at most one question
/// per peer in flight), so a peer that stops answering never stalls the view.
final class PeerAddressBook: Sendable {
    private let state = Mutex<(known: [String: String], asking: Set<String>)>(([:], []))

    func address(of peer: String, asking gateway: ClusterGateway) async -> String {
        let (known, ask) = state.withLock { s in (s.known[peer], s.asking.insert(peer).inserted) }
        guard ask else { return known ?? "" }
        let refresh = Task {
            let fresh = await gateway.address(of: peer)
            return state.withLock { s in
                s.asking.remove(peer)
                if let fresh { s.known[peer] = fresh }
                return fresh ?? s.known[peer] ?? ""
            }
        }
        if let known { return known }
        return await refresh.value
    }
}
