/// Close codes this server uses (RFC 6455 and PROTOCOL.md).
public enum CloseCode {
    public static let goingAway: UInt16 = 1001
    /// Broken RFC 6455 framing (`WebSocketServerFraming.Failure.protocolError`).
    public static let protocolError: UInt16 = 1002
    public static let policyViolation: UInt16 = 1008
    public static let tooBig: UInt16 = 1009
    public static let tokenRevoked: UInt16 = 4001
    /// The session's outbound queue overflowed (a slow reader); reconnect and `sync`.
    public static let outboundOverflow: UInt16 = 4008
    /// The user moved to another node (a membership change): reconnect (to any node) and `sync`.
    public static let userMoved: UInt16 = 1012

    /// The code to answer a client's close frame with: its own when it is one that may be sent
    /// (RFC 6455 section 7.4), else 1000.
    static func echoing(_ code: UInt16) -> UInt16 {
        (1000...1003).contains(code) || (1007...1011).contains(code) || (3000...4999).contains(code) ? code : 1000
    }
}
