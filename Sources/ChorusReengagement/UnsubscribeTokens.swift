import ChorusCore
import Crypto

/// One-click unsubscribe tokens: `<userId>.<signature>`, the signature the first 128 bits of
/// HMAC-SHA256 over the user id with the node's secret, base64url. They cannot be forged or guessed
/// without the secret, name their user (so any node of a cluster routes them to its owner), and
/// never expire (an old email's link keeps working). Pure.
public struct UnsubscribeTokens: Sendable {
    private let key: SymmetricKey

    public init(secret: [UInt8]) {
        precondition(secret.count >= 32, "a 256-bit secret")
        key = SymmetricKey(data: secret)
    }

    public func token(for userId: String) -> String { userId + "." + signature(userId) }

    /// The user a token unsubscribes, or nil for anything not signed with this secret.
    public func verify(_ token: String) -> String? {
        guard token.utf8.count <= 256, let dot = token.lastIndex(of: "."), dot != token.startIndex else { return nil }
        let userId = String(token[..<dot])
        let given = Array(token[token.index(after: dot)...].utf8)
        let expected = Array(signature(userId).utf8)
        guard given.count == expected.count else { return nil }
        var diff: UInt8 = 0
        for i in given.indices { diff |= given[i] ^ expected[i] }
        return diff == 0 ? userId : nil
    }

    private func signature(_ userId: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(("unsubscribe:" + userId).utf8), using: key)
        return Base64URL.encode(Array(mac).prefix(16))
    }
}
