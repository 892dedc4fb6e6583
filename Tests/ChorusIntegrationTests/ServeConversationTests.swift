import Foundation
import Testing

/// Conversations and messages over HTTP against the real binary, including a kill -9 and restart.
@Suite(.serialized) struct ServeConversationTests {
    struct User {
        let id: String
        let token: String
    }

    func user(_ server: ServerProcess, _ name: String) throws -> User {
        let created = try server.request("POST", "/v1/users", json: ["username": name, "password": "password1", "email": "\(name)@example.com"])
        let login = try server.request("POST", "/v1/sessions", json: ["username": name, "password": "password1"])
        return User(id: try #require(created.json["userId"] as? String), token: try #require(login.json["token"] as? String))
    }

    func send(_ server: ServerProcess, _ u: User, _ conversation: String, _ clientMsgId: String, _ body: String) throws -> HTTPTestResponse {
        try server.request("POST", "/v1/conversations/\(conversation)/messages", json: ["clientMsgId": clientMsgId, "body": body], token: u.token)
    }

    @Test func directConversationMessagesDedupHistoryAndRestart() throws {
        let dir = ScratchDir("serve-conv")
        defer { dir.cleanup() }
        var server = try ServerProcess(data: dir.path + "/data")
        let alice = try user(server, "alice"), bob = try user(server, "bob"), carol = try user(server, "carol")

        let created = try server.request("POST", "/v1/conversations", json: ["members": [bob.id]], token: alice.token)
        #expect(created.status == 201 && created.json["kind"] as? String == "direct")
        let id = try #require(created.json["conversationId"] as? String)
        #expect(Set(created.json["members"] as? [String] ?? []) == [alice.id, bob.id])
        // The pair's single direct conversation, from either side; title ignored.
        let again = try server.request("POST", "/v1/conversations", json: ["members": [alice.id], "title": "x"], token: bob.token)
        #expect(again.status == 200 && again.json["conversationId"] as? String == id)

        for i in 1...5 {
            let r = try send(server, i % 2 == 0 ? bob : alice, id, "m\(i)", "hello \(i)")
            #expect(r.status == 201 && r.json["seq"] as? Int == i)
        }
        let dup = try send(server, alice, id, "m3", "something else")
        #expect(dup.status == 200 && dup.json["seq"] as? Int == 3 && dup.json["body"] as? String == "hello 3")

        #expect(try send(server, carol, id, "x", "hi").errorCode == "not_member")
        #expect(try send(server, alice, id, "e", "").errorCode == "empty_body")
        #expect(try send(server, alice, id, "big", String(repeating: "a", count: 4097)).errorCode == "body_too_large")
        #expect(try server.request("GET", "/v1/conversations/\(id)", token: carol.token).status == 403)
        #expect(try server.request("GET", "/v1/conversations/c_nope", token: alice.token).errorCode == "unknown_conversation")
        #expect(try server.request("POST", "/v1/conversations", json: ["members": ["u_nobody"]], token: alice.token).errorCode == "unknown_user")

        let page = try server.request("GET", "/v1/conversations/\(id)/messages?before=5&limit=2", token: bob.token)
        #expect((page.json["messages"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int } == [3, 4])
        #expect(page.json["hasMore"] as? Bool == true)
        let tail = try server.request("GET", "/v1/conversations/\(id)/messages?after=3", token: bob.token)
        #expect((tail.json["messages"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int } == [4, 5])
        #expect(tail.json["hasMore"] as? Bool == false)
        #expect(try server.request("GET", "/v1/conversations/\(id)/messages?limit=201", token: bob.token).status == 400)

        let list = try server.request("GET", "/v1/conversations", token: bob.token)
        let first = (list.json["conversations"] as? [[String: Any]])?.first
        #expect(first?["lastSeq"] as? Int == 5 && (first?["lastMessage"] as? [String: Any])?["seq"] as? Int == 5)

        // kill -9 after the acks: every acknowledged message is there, in order, once; seq continues.
        server.crash()
        server = try ServerProcess(data: dir.path + "/data")
        defer { _ = server.stop() }
        let login = try server.request("POST", "/v1/sessions", json: ["username": "alice", "password": "password1"])
        let token = try #require(login.json["token"] as? String)
        let all = try server.request("GET", "/v1/conversations/\(id)/messages", token: token)
        let messages = all.json["messages"] as? [[String: Any]] ?? []
        #expect(messages.compactMap { $0["seq"] as? Int } == [1, 2, 3, 4, 5])
        #expect(messages.compactMap { $0["body"] as? String } == (1...5).map { "hello \($0)" })
        let after = User(id: alice.id, token: token)
        #expect(try send(server, after, id, "m3", "dup after restart").json["seq"] as? Int == 3, "dedup survives restarts")
        #expect(try send(server, after, id, "m6", "hello 6").json["seq"] as? Int == 6)
    }

    @Test func groupsMembershipAndLimits() throws {
        let dir = ScratchDir("serve-group")
        defer { dir.cleanup() }
        let server = try ServerProcess(data: dir.path + "/data", extra: [])
        defer { _ = server.stop() }
        let a = try user(server, "anna"), b = try user(server, "ben"), c = try user(server, "cleo"), d = try user(server, "dan")
        let g = try server.request("POST", "/v1/conversations", json: ["members": [b.id, c.id], "title": "Team"], token: a.token)
        #expect(g.status == 201 && g.json["kind"] as? String == "group" && g.json["title"] as? String == "Team")
        let id = try #require(g.json["conversationId"] as? String)
        #expect(try send(server, c, id, "1", "hi all").status == 201)

        let added = try server.request("POST", "/v1/conversations/\(id)/members", json: ["userId": d.id], token: b.token)
        #expect(added.status == 200 && (added.json["members"] as? [String])?.contains(d.id) == true)
        #expect(try server.request("POST", "/v1/conversations/\(id)/members", json: ["userId": "u_ghost"], token: b.token).errorCode == "unknown_user")
        // A member may remove itself; then it is refused like any non-member.
        #expect(try server.request("DELETE", "/v1/conversations/\(id)/members/\(c.id)", token: c.token).status == 200)
        #expect(try send(server, c, id, "2", "still here?").errorCode == "not_member")
        #expect(try server.request("GET", "/v1/conversations/\(id)/messages", token: c.token).errorCode == "not_member")
        #expect(try server.request("GET", "/v1/conversations", token: c.token).json["conversations"] as? [Any] != nil)
        let cList = try server.request("GET", "/v1/conversations", token: c.token).json["conversations"] as? [[String: Any]] ?? []
        #expect(!cList.contains { $0["conversationId"] as? String == id })
    }
}
