/// A user's presence: online while a session is open, and when last seen (ms; 0 if never seen).
public struct PresenceStatus: Equatable, Sendable {
    public var online: Bool
    /// When the user last had an open session (ms); 0 if never seen on the node that says so.
    public var lastSeen: Int64

    public init(online: Bool, lastSeen: Int64) {
        self.online = online
        self.lastSeen = lastSeen
    }
}
