import Synchronization

/// The handshake rule, pure: a peer is accepted only if it runs the same ring (signature) and is a
/// member of it, and is not this node. Outbound connections also require the node they dialled.
/// During a membership change a node also accepts the ring it is moving to or from (`accepted`).
/// With mutual TLS the peer's identity is the name its verified certificate gives (`verify`), and
/// its hello must claim that same id.
public struct MeshHandshake: Sendable, Equatable {
    public let selfId: String
    /// The ring this node stamps on its frames.
    public let ringSignature: UInt64
    public let members: Set<String>
    /// The rings accepted from peers: this node's, plus the other ring of a change in progress.
    public let accepted: Set<UInt64>

    public init(selfId: String, ringSignature: UInt64, members: Set<String>, alsoAccepting: Set<UInt64> = []) {
        self.selfId = selfId
        self.ringSignature = ringSignature
        self.members = members
        accepted = alsoAccepting.union([ringSignature])
    }

    /// Whether a frame stamped with `ring` may pass.
    public func accepts(ring: UInt64) -> Bool { accepted.contains(ring) }

    public enum Decision: Sendable, Equatable {
        case accept(peer: String)
        case refuse(String)
    }

    public var hello: MeshHello { MeshHello(ringSignature: ringSignature, nodeId: selfId) }

    /// Decides on the peer's verified certificate, before any hello: its DNS names must name
    /// exactly one member other than this node (the node dialled, on an outbound connection).
    public func verify(certificateNames names: [String], expected: String? = nil) -> Decision {
        let named = Set(names.filter { members.contains($0) && $0 != selfId })
        if let expected {
            return named.contains(expected)
                ? .accept(peer: expected) : .refuse("dialled \(expected), its certificate names \(Self.printable(names))")
        }
        guard named.count == 1, let peer = named.first else {
            return .refuse(named.isEmpty
                ? "the certificate names no member: \(Self.printable(names))" : "the certificate names several members: \(named.sorted())")
        }
        return .accept(peer: peer)
    }

    /// Decides on the peer's hello; `expected` is the node an outbound connection dialled and
    /// `verified` the id its certificate gave (nil without TLS).
    public func receive(_ peer: MeshHello, expected: String? = nil, verified: String? = nil) -> Decision {
        if let verified, verified != peer.nodeId {
            return .refuse("the certificate of \(verified) came with a hello from \(peer.nodeId)")
        }
        guard accepts(ring: peer.ringSignature) else {
            return .refuse("ring mismatch: \(peer.nodeId) runs ring \(hex(peer.ringSignature)), this node \(hex(ringSignature))")
        }
        guard peer.nodeId != selfId else { return .refuse("a connection to itself") }
        guard members.contains(peer.nodeId) else { return .refuse("\(peer.nodeId) is not a member of this ring") }
        if let expected, expected != peer.nodeId { return .refuse("dialled \(expected), answered by \(peer.nodeId)") }
        return .accept(peer: peer.nodeId)
    }

    private func hex(_ v: UInt64) -> String { String(v, radix: 16) }

    /// Names from a certificate, safe for a log line (at most 4, invalid ones replaced).
    private static func printable(_ names: [String]) -> String {
        let shown = names.prefix(4).map { MeshHello.isValidNodeId($0) ? $0 : "<not a node id>" }
        return "[\(shown.joined(separator: ", "))\(names.count > 4 ? ", …" : "")]"
    }
}

/// A node's current handshake rule, changed by membership changes. Readers on the hot path keep a
/// copy and compare `generation` (one relaxed atomic load per frame) to know when to take a new one.
public final class HandshakeCell: Sendable {
    private let value: Mutex<MeshHandshake>
    private let counter = Atomic<UInt64>(0)

    public init(_ rule: MeshHandshake) { value = Mutex(rule) }

    public var generation: UInt64 { counter.load(ordering: .acquiring) }
    public var rule: MeshHandshake { value.withLock { $0 } }

    public func set(_ rule: MeshHandshake) {
        value.withLock { $0 = rule }
        counter.add(1, ordering: .releasing)
    }
}
