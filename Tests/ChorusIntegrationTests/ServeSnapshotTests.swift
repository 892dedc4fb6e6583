import Foundation
import Testing

/// Engine snapshots against the real binary: a clean stop leaves a snapshot so the next start replays
/// nothing; after a kill -9 the start loads the newest snapshot, replays the tail, and every
/// acknowledged message is there once, in order, with dedup intact.
@Suite(.serialized) struct ServeSnapshotTests {
    func recoveredLine(_ server: ServerProcess) -> String {
        let log = (try? String(contentsOfFile: server.data + ".stderr.log", encoding: .utf8)) ?? ""
        return log.split(separator: "\n").last { $0.contains("[Chorus] recovered") }.map(String.init) ?? ""
    }

    func field(_ line: String, _ name: String) -> Int? {
        guard let r = line.range(of: " \(name)=") else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
    }

    @Test func snapshotsBoundReplayAndKeepEveryMessage() throws {
        let dir = ScratchDir("serve-snap")
        defer { dir.cleanup() }
        let data = dir.path + "/data"
        var server = try ServerProcess(data: data, extra: ["--snapshot-every", "1"])
        let tests = ServeConversationTests()
        let alice = try tests.user(server, "alice"), bob = try tests.user(server, "bob")
        let created = try server.request("POST", "/v1/conversations", json: ["members": [bob.id]], token: alice.token)
        let id = try #require(created.json["conversationId"] as? String)
        for i in 1...12 { #expect(try tests.send(server, i % 2 == 0 ? bob : alice, id, "m\(i)", "hello \(i)").status == 201) }
        #expect(server.stop().status == 0)

        // A clean stop wrote a snapshot of everything: nothing to replay.
        server = try ServerProcess(data: data, extra: ["--snapshot-every", "1"])
        let clean = recoveredLine(server)
        #expect(field(clean, "records") == 0, "\(clean)")
        #expect((field(clean, "snapshotLSN") ?? 0) > 12 && field(clean, "snapshotLSN") == field(clean, "lastLSN"))
        let again = try #require(try server.request("POST", "/v1/sessions", json: ["username": "alice", "password": "password1"]).json["token"] as? String)
        let alice2 = ServeConversationTests.User(id: alice.id, token: again)
        #expect(try tests.send(server, alice2, id, "m2", "repeat").json["seq"] as? Int == 2, "dedup from a snapshot")
        for i in 13...15 { #expect(try tests.send(server, alice2, id, "m\(i)", "hello \(i)").status == 201) }
        server.crash()

        server = try ServerProcess(data: data, extra: ["--snapshot-every", "1000000"])
        defer { _ = server.stop() }
        let crashed = recoveredLine(server)
        #expect((field(crashed, "snapshotLSN") ?? 0) > 0, "\(crashed)")
        let token = try #require(try server.request("POST", "/v1/sessions", json: ["username": "bob", "password": "password1"]).json["token"] as? String)
        let page = try server.request("GET", "/v1/conversations/\(id)/messages?limit=200", token: token)
        let messages = page.json["messages"] as? [[String: Any]] ?? []
        #expect(messages.compactMap { $0["seq"] as? Int } == Array(1...15))
        #expect(messages.compactMap { $0["body"] as? String } == (1...15).map { "hello \($0)" })
        let list = try server.request("GET", "/v1/conversations", token: token)
        let last = ((list.json["conversations"] as? [[String: Any]])?.first?["lastMessage"] as? [String: Any])?["body"] as? String
        #expect(last == "hello 15")
    }
}

/// A node whose log stops (the disk fills) stops acknowledging and says so on /healthz and /readyz,
/// while everything it acknowledged before stays readable.
@Suite(.serialized) struct ServeLogFailureTests {
    @Test(.enabled(if: Tmpfs.canMount, "needs root to mount a tmpfs"))
    func fullDiskTurnsHealthRedAndStopsAcks() throws {
        let fs = try #require(Tmpfs(options: "size=6m"))
        defer { fs.unmount() }
        let server = try ServerProcess(data: fs.path + "/data", extra: ["--wal-segment-bytes", "\(4 << 20)", "--snapshot-every", "0", "--user-send-rate-limit", "off"])
        defer { _ = server.stop() }
        let tests = ServeConversationTests()
        let alice = try tests.user(server, "alice"), bob = try tests.user(server, "bob")
        let created = try server.request("POST", "/v1/conversations", json: ["members": [bob.id]], token: alice.token)
        let id = try #require(created.json["conversationId"] as? String)
        #expect(try server.request("GET", "/healthz").status == 200)
        var acked = 0
        var refusal: HTTPTestResponse?
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        for i in 1...5000 {
            let body = String((0..<4000).map { _ in letters.randomElement()! })  // barely compressible
            let r = try tests.send(server, alice, id, "m\(i)", body)
            if r.status != 201 {
                refusal = r
                break
            }
            acked += 1
        }
        let refused = try #require(refusal, "the 6 MiB disk never filled")
        #expect(refused.status == 503 && refused.errorCode == "unavailable", "\(refused.status) \(refused.text)")
        #expect(acked > 100)
        let health = try server.request("GET", "/healthz")
        #expect(health.status == 503)
        #expect(health.text.contains("No space left on device"), "\(health.text)")
        #expect(try server.request("GET", "/readyz").status == 503)
        // What was acknowledged is still served (from memory and the log's readable part).
        let page = try server.request("GET", "/v1/conversations/\(id)/messages?after=\(max(0, acked - 3))", token: bob.token)
        #expect((page.json["messages"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int } == Array(max(1, acked - 2)...acked))
    }
}
