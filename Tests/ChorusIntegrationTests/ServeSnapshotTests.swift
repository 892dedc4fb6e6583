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
