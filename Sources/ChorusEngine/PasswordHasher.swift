import Crypto
import CryptoExtras
import Foundation

/// Hashes and verifies passwords with PBKDF2-HMAC-SHA256 (OWASP 2023: at least 600,000 iterations).
///
/// Stored form: `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`, so the cost can rise later
/// without invalidating old hashes.
public struct PasswordHasher: Sendable {
    /// OWASP's recommended minimum for PBKDF2-HMAC-SHA256.
    public static let recommendedIterations = 600_000
    /// `--insecure-fast-password-hash`: for tests and load runs only.
    public static let insecureFastIterations = 1_000

    public let iterations: Int

    public init(iterations: Int = PasswordHasher.recommendedIterations) {
        self.iterations = iterations
    }

    /// A new salted hash of `password`.
    public func hash(_ password: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var rng = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = rng.next() }
        let key = try derive(password, salt: salt, iterations: iterations)
        let text = "pbkdf2-sha256$\(iterations)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
        // Interpolation leaves spare capacity (about 100 bytes here); every account holds its hash,
        // so it keeps an exact copy, as replay would decode it.
        return String(decoding: Array(text.utf8), as: UTF8.self)
    }

    /// True when `password` matches `stored` (constant-time comparison of the derived keys).
    public func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$")
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let rounds = Int(parts[1]), rounds > 0, rounds <= 10_000_000,
            let salt = Data(base64Encoded: String(parts[2])), let expected = Data(base64Encoded: String(parts[3])),
            let actual = try? derive(password, salt: [UInt8](salt), iterations: rounds), actual.count == expected.count
        else { return false }
        var diff: UInt8 = 0
        for (a, b) in zip(actual, expected) { diff |= a ^ b }
        return diff == 0
    }

    private func derive(_ password: String, salt: [UInt8], iterations: Int) throws -> [UInt8] {
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
        return key.withUnsafeBytes { [UInt8]($0) }
    }
}
