import ChorusCLI
import Testing

@Suite struct ConfigParsingTests {
    @Test func durations() throws {
        #expect(try ConfigParsing.durationMs("10d") == 864_000_000)
        #expect(try ConfigParsing.durationMs("36h") == 129_600_000)
        #expect(try ConfigParsing.durationMs("15m") == 900_000)
        #expect(try ConfigParsing.durationMs("2s") == 2000)
        #expect(try ConfigParsing.durationMs("500ms") == 500)
        for bad in ["", "10", "d", "-1s", "1.5h", "10 d", "0s", "99999999999999999999d", "10x"] {
            #expect(throws: ConfigParsing.Failure.self, "\(bad)") { try ConfigParsing.durationMs(bad) }
        }
    }

    @Test func hostsAndPeers() throws {
        #expect(try ConfigParsing.hostPort("127.0.0.1:8080") == ("127.0.0.1", 8080))
        #expect(try ConfigParsing.hostPort("[::1]:9000") == ("::1", 9000))
        #expect(try ConfigParsing.hostPort("localhost:0") == ("localhost", 0))
        for bad in ["8080", ":80", "host:", "host:70000", "host:http"] {
            #expect(throws: ConfigParsing.Failure.self, "\(bad)") { try ConfigParsing.hostPort(bad) }
        }
        let p = try ConfigParsing.peer("node2@127.0.0.1:7002")
        #expect(p.id == "node2" && p.host == "127.0.0.1" && p.port == 7002)
        #expect(throws: ConfigParsing.Failure.self) { try ConfigParsing.peer("@h:1") }
        #expect(throws: ConfigParsing.Failure.self) { try ConfigParsing.peer("n@h:0") }
    }
}
