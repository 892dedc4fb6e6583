import ChorusCluster
import ChorusCore
import ChorusGateway
import ChorusMesh
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

/// What peers send, handed to the gateway's cluster part (set once it exists: it needs the mesh first).
final class GatewayMeshService: MeshService {
    let gateway = Mutex<ClusterGateway?>(nil)
    /// Membership steps and hand-over batches go to the node's membership manager.
    let membership = Mutex<MembershipManager?>(nil)

    func handle(request payload: [UInt8], from peer: String, reply: @escaping @Sendable (Result<[UInt8], MeshError>) -> Void) {
        if let kind = payload.first, kind == PeerKind.membership.rawValue || kind == PeerKind.handover.rawValue {
            guard let m = membership.withLock({ $0 }) else { return reply(.failure(.remote(peer: peer, reason: "starting"))) }
            Task { reply(.success(await m.answer(payload))) }
            return
        }
        guard let g = gateway.withLock({ $0 }) else { return reply(.failure(.remote(peer: peer, reason: "starting"))) }
        g.handle(request: payload, from: peer) { result in reply(result.mapError { .remote(peer: peer, reason: $0.message) }) }
    }

    func handle(oneWay payload: [UInt8], from peer: String) { gateway.withLock { $0 }?.handle(oneWay: payload, from: peer) }
}

/// The mesh as a `Service`: listens and dials on start; stops (closing every peer connection)
/// after the gateway has stopped taking clients.
struct MeshLifecycle: Service {
    let node: MeshNode
    let logger: Logger

    func run() async throws {
        let bound: PeerAddress
        do {
            bound = try await node.start()
        } catch {
            // The node stops (the group is cancelled) and `chorus serve` exits non-zero.
            logger.critical("mesh could not listen", metadata: ["address": "\(node.configuration.listen)", "error": "\(error)"])
            throw error
        }
        logger.info("mesh listening", metadata: ["address": "\(bound)", "peers": "\(node.configuration.peers.keys.sorted())"])
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
