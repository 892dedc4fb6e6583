import Foundation

/// An IPv4 or IPv6 network, `ADDRESS/BITS` (a bare address is a /32 or /128).
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    let network: [UInt8]
    let bits: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let address = ClientAddress.bytes(String(parts[0])) else { return nil }
        let bits = parts.count == 2 ? Int(parts[1]) : address.count * 8
        guard let bits, (0...(address.count * 8)).contains(bits) else { return nil }
        network = ClientAddress.prefix(address, bits: bits)
        self.bits = bits
    }

    /// Whether `address` (already parsed) lies in this network (IPv4 and IPv6 never match each other).
    func contains(_ address: [UInt8]) -> Bool {
        address.count == network.count && ClientAddress.prefix(address, bits: bits) == network
    }

    public var description: String { "\(ClientAddress.text(network))/\(bits)" }
}

/// Whose address a request comes from (PROTOCOL.md section 6). Pure.
public enum ClientAddress {
    /// The client of a request from `peer`: `peer` itself unless it is a trusted proxy; then the
    /// nearest address of `X-Forwarded-For` (read right to left) that is not a trusted proxy, or the
    /// leftmost if all are. A malformed entry ends the walk at the last trusted hop.
    public static func resolve(peer: String, forwardedFor: [String], trusted: [CIDR]) -> String {
        func isTrusted(_ a: String) -> Bool { bytes(a).map { b in trusted.contains { $0.contains(b) } } ?? false }
        guard !trusted.isEmpty, isTrusted(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        var client = peer
        for hop in hops.reversed() {
            guard bytes(hop) != nil else { break }
            client = hop
            if !isTrusted(hop) { break }
        }
        return client
    }

    /// The key per-address limits count under: an IPv4 address whole, an IPv6 address by its /64
    /// (one customer's network), anything else as given.
    public static func limitKey(_ address: String) -> String {
        guard let b = bytes(address), b.count == 16 else { return address }
        return text(prefix(b, bits: 64)) + "/64"
    }

    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func prefix(_ address: [UInt8], bits: Int) -> [UInt8] {
        address.enumerated().map { i, byte in
            let keep = max(0, min(8, bits - i * 8))
            return keep == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
    }

    static func text(_ address: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = address.count == 4 ? AF_INET : AF_INET6
        return address.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil ? String(cString: buffer) : "?"
        }
    }
}
