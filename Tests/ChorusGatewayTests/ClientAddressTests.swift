import ChorusGateway
import Testing

@Suite struct ClientAddressTests {
    let proxies = [CIDR("10.0.0.0/8")!, CIDR("fd00::/8")!]

    @Test func cidrsParseAndRefuseNonsense() {
        #expect(CIDR("10.1.2.3/8")?.description == "10.0.0.0/8")
        #expect(CIDR("127.0.0.1")?.description == "127.0.0.1/32")
        #expect(CIDR("2001:db8::1/64")?.description == "2001:db8::/64")
        for bad in ["", "10.0.0.0/33", "10.0.0/8", "::1/129", "10.0.0.0/x", "host/8", "1.2.3.4/8/9"] { #expect(CIDR(bad) == nil, "\(bad)") }
    }

    @Test func forwardedForIsTakenOnlyFromTrustedProxies() {
        // Straight from a client: the header is the client's to invent, so it is ignored.
        #expect(ClientAddress.resolve(peer: "203.0.113.9", forwardedFor: ["198.51.100.1"], trusted: proxies) == "203.0.113.9")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["198.51.100.1"], trusted: []) == "10.0.0.2")
        // Through the proxy: the nearest untrusted hop; a spoofed left part is not believed.
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["198.51.100.1"], trusted: proxies) == "198.51.100.1")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["1.1.1.1, 198.51.100.1, 10.0.0.7"], trusted: proxies) == "198.51.100.1")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["1.1.1.1", "198.51.100.1"], trusted: proxies) == "198.51.100.1")
        // All trusted: the leftmost; garbage stops the walk at the last trusted hop; no header: the proxy.
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["10.0.0.5, 10.0.0.6"], trusted: proxies) == "10.0.0.5")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["198.51.100.1, junk"], trusted: proxies) == "10.0.0.2")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: [], trusted: proxies) == "10.0.0.2")
        #expect(ClientAddress.resolve(peer: "fd00::1", forwardedFor: ["2001:db8::5"], trusted: proxies) == "2001:db8::5")
    }

    @Test func ipv6LimitsCountPerSlash64() {
        #expect(ClientAddress.limitKey("2001:db8:0:1::1") == "2001:db8:0:1::/64")
        #expect(ClientAddress.limitKey("2001:db8:0:1:ffff::9") == "2001:db8:0:1::/64")
        #expect(ClientAddress.limitKey("2001:db8:0:2::1") == "2001:db8:0:2::/64")
        #expect(ClientAddress.limitKey("203.0.113.9") == "203.0.113.9")
        #expect(ClientAddress.limitKey("unknown") == "unknown")
    }
}
