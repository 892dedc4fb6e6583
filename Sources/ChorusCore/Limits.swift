/// The contract's limits (PROTOCOL.md section 1), all configurable; these are the defaults.
public struct ChatLimits: Sendable, Equatable {
    /// Message body, in UTF-8 bytes.
    public var bodyBytes: ClosedRange<Int> = 1...4096
    /// Members of a group, creator included.
    public var groupMembers = 500
    /// Messages per history page.
    public var historyPage = 200
    public var usernameLength: ClosedRange<Int> = 3...32
    public var passwordBytes: ClosedRange<Int> = 8...256
    /// IDs are opaque ASCII strings of at most this many characters.
    public var idLength = 64
    public var emailBytes = 254
    public var displayNameBytes = 64
    public var titleBytes = 128

    public init() {}

    /// `[a-z0-9_.-]`, length within `usernameLength`.
    public func isValidUsername(_ name: String) -> Bool {
        usernameLength.contains(name.utf8.count) && name.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2E || c == 0x2D
        }
    }

    /// Printable ASCII without spaces, at most `idLength`.
    public func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= idLength && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// A plausible address: one `@`, something on both sides, no spaces or control characters.
    public func isValidEmail(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        return email.utf8.count <= emailBytes && parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".")
            && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".")
            && email.utf8.allSatisfy { $0 > 0x20 && $0 != 0x7F && $0 != 0x3C && $0 != 0x3E }
    }
}
