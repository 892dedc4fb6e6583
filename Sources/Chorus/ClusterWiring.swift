import ChorusCluster
import ChorusCore
import ChorusGateway
import ChorusMesh
import ChorusPeer
import Logging
import ServiceLifecycle
import Synchronization

/// The mesh as the gateway's `PeerTransport`: every transport failure is `unavailable`.
struct MeshTransport: PeerTransport {
    let node: MeshNode

    func request(_ payload: [UInt8], to peer: String, reply: @escaping @Sendable (Result<[UInt8], ChatError>) -> Void) {
        node.request(payload, to: peer) { result in
            reply(result.mapError { e in ChatError.unavailable("node \(peer) cannot be reached (\(e))") })
        }
    }

    func send(_ payload: [UInt8], to peer: String) { node.send(payload, to: peer) }
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
final class PeerAddressBook: Sendable {
    private let known = Mutex<[String: String]>([:])

    func address(of peer: String, asking gateway: ClusterGateway) async -> String {
        if let fresh = await gateway.address(of: peer) {
            known.withLock { $0[peer] = fresh }
            return fresh
        }
        return known.withLock { $0[peer] } ?? ""
    }
}
