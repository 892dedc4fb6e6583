import ChorusCore

/// A one-way message between nodes: best effort, in order on a link, never answered. Used only
/// where a client recovers from a loss (it reconnects and syncs). All are handled by the gateway's
/// session relay and presence.
public enum PeerEvent: Sendable, Equatable {
    /// A client's WebSocket frame, edge to owner. `text` false: a binary or other data frame
    /// (refused by the session's rules; `bytes` is empty).
    case sessionFrame(proxy: UInt64, text: Bool, bytes: [UInt8])
    /// Server frames for one relayed session, owner to edge, written in one flush.
    case sessionPush(proxy: UInt64, frames: [[UInt8]])
    /// Either side ends a relayed session, with a WebSocket close code.
    case sessionClose(proxy: UInt64, code: UInt16, reason: String)
    /// A server frame for every session of these users, owned by the receiver.
    case userPush(users: [String], frame: [UInt8])
    /// A watched user's presence changed (from its owner).
    case presence(userId: String, PresenceStatus)
}
