/// Heartbeat failure detection as a pure state machine (SWIM's states without its gossip): a peer
/// is `alive` while heard from within `suspectAfterMs`, `suspect` until `deadAfterMs`, then `dead`;
/// hearing from it again makes it `alive`. Time comes in as `now` (ms); the shell sends heartbeats,
/// feeds what it hears and calls `tick`. Liveness never changes ownership (see `HashRing`).
public struct FailureDetector: Sendable {
    public enum Status: String, Sendable, Equatable {
        case alive, suspect, dead
    }

    public struct Change: Sendable, Equatable {
        public var peer: String
        public var from: Status
        public var to: Status

        public init(peer: String, from: Status, to: Status) {
            self.peer = peer
            self.from = from
            self.to = to
        }
    }

    public let suspectAfterMs: Int64
    public let deadAfterMs: Int64
    private var peers: [String: (status: Status, lastHeard: Int64)] = [:]

    /// Peers start `suspect` until first heard (nothing is known of them yet), timed from `now`.
    public init(peers: [String], now: Int64, suspectAfterMs: Int64 = 3_000, deadAfterMs: Int64 = 10_000) {
        precondition(0 < suspectAfterMs && suspectAfterMs < deadAfterMs)
        self.suspectAfterMs = suspectAfterMs
        self.deadAfterMs = deadAfterMs
        for p in peers { self.peers[p] = (.suspect, now) }
    }

    public func status(of peer: String) -> Status? { peers[peer]?.status }

    /// Membership changed: new peers start `suspect` from `now`, removed ones are forgotten.
    public mutating func setPeers(_ list: [String], now: Int64) {
        for p in peers.keys where !list.contains(p) { peers[p] = nil }
        for p in list where peers[p] == nil { peers[p] = (.suspect, now) }
    }

    public var all: [(peer: String, status: Status)] { peers.keys.sorted().map { ($0, peers[$0]!.status) } }

    /// A frame (any frame) arrived from `peer`.
    public mutating func heard(from peer: String, now: Int64) -> Change? {
        guard let p = peers[peer] else { return nil }
        peers[peer] = (.alive, max(p.lastHeard, now))
        return p.status == .alive ? nil : Change(peer: peer, from: p.status, to: .alive)
    }

    /// Moves silent peers along alive -> suspect -> dead; returns what changed, in peer order.
    public mutating func tick(now: Int64) -> [Change] {
        var out: [Change] = []
        for peer in peers.keys.sorted() {
            let p = peers[peer]!
            let silent = now - p.lastHeard
            let next: Status = silent >= deadAfterMs ? .dead : silent >= suspectAfterMs ? .suspect : .alive
            // Only time moves a peer down; only hearing from it moves it up.
            guard rank(next) > rank(p.status) else { continue }
            peers[peer] = (next, p.lastHeard)
            out.append(Change(peer: peer, from: p.status, to: next))
        }
        return out
    }

    private func rank(_ s: Status) -> Int {
        switch s {
        case .alive: 0
        case .suspect: 1
        case .dead: 2
        }
    }
}
