import Foundation
import Testing

/// The real `chorus serve` binary over real sockets: accounts, errors, durability, lifecycle.
@Suite(.serialized) struct ServeHTTPTests {
    @Test func accountsLifecycleAndErrorCodes() throws {
        let dir = ScratchDir("serve-accounts")
        defer { dir.cleanup() }
        let server = try ServerProcess(data: dir.path + "/data")
        defer { _ = server.stop() }

        #expect(try server.request("GET", "/healthz").status == 200)
        #expect(try server.request("GET", "/readyz").status == 200)

        let created = try server.request("POST", "/v1/users", json: ["username": "alice", "password": "password1", "email": "alice@example.com", "displayName": "Alice"])
        #expect(created.status == 201)
        #expect(created.json["username"] as? String == "alice" && created.json["displayName"] as? String == "Alice")
        #expect(created.json["email"] as? String == "alice@example.com")
        let userId = try #require(created.json["userId"] as? String)
        #expect(created.headers["content-type"] == "application/json; charset=utf-8")

        let dup = try server.request("POST", "/v1/users", json: ["username": "alice", "password": "password1", "email": "b@example.com"])
        #expect(dup.status == 409 && dup.errorCode == "username_taken")
        let missing = try server.request("POST", "/v1/users", json: ["username": "bob", "password": "password1"])
        #expect(missing.status == 400 && missing.errorCode == "bad_request")
        #expect(((missing.json["error"] as? [String: Any])?["message"] as? String)?.contains("email") == true, "names the field")
        let mistyped = try server.request("POST", "/v1/users", json: ["username": 5, "password": "password1", "email": "b@example.com"])
        #expect(mistyped.status == 400 && mistyped.errorCode == "bad_request")
        let garbage = try HTTPTestClient.request(port: server.port, "POST", "/v1/users", rawBody: "{not json")
        #expect(garbage.status == 400 && garbage.errorCode == "bad_request")

        let wrong = try server.request("POST", "/v1/sessions", json: ["username": "alice", "password": "password2"])
        #expect(wrong.status == 401 && wrong.errorCode == "invalid_credentials")
        let login = try server.request("POST", "/v1/sessions", json: ["username": "alice", "password": "password1"])
        #expect(login.status == 201 && login.json["userId"] as? String == userId)
        let token = try #require(login.json["token"] as? String)
        #expect((login.json["expiresAt"] as? Int ?? 0) > Int(Date().timeIntervalSince1970 * 1000))

        let me = try server.request("GET", "/v1/me", token: token)
        #expect(me.status == 200 && me.json["userId"] as? String == userId && me.json["lastLoginAt"] is Int)
        #expect(try server.request("GET", "/v1/me").errorCode == "unauthorized")
        #expect(try server.request("GET", "/v1/me", token: "forged").status == 401)
        #expect(try server.request("GET", "/v1/users?username=alice", token: token).json["userId"] as? String == userId)
        #expect(try server.request("GET", "/v1/users?username=nobody", token: token).errorCode == "unknown_user")
        // By id too (docs/WEB.md: the web client names members it knows only by id).
        #expect(try server.request("GET", "/v1/users?userId=\(userId)", token: token).json["username"] as? String == "alice")
        #expect(try server.request("GET", "/v1/users?userId=u_nobody", token: token).errorCode == "unknown_user")
        #expect(try server.request("GET", "/v1/users", token: token).errorCode == "bad_request")
        #expect(try server.request("GET", "/v1/users?userId=\(userId)").status == 401)

        #expect(try server.request("DELETE", "/v1/sessions/current", token: token).status == 204)
        #expect(try server.request("GET", "/v1/me", token: token).status == 401, "revoked at once")
    }

    @Test func anAcknowledgedRegistrationSurvivesKillMinus9() throws {
        let dir = ScratchDir("serve-kill")
        defer { dir.cleanup() }
        let first = try ServerProcess(data: dir.path + "/data")
        for i in 0..<5 {
            let r = try first.request("POST", "/v1/users", json: ["username": "user\(i)", "password": "password1", "email": "u\(i)@example.com"])
            #expect(r.status == 201)
        }
        first.crash()
        let second = try ServerProcess(data: dir.path + "/data")
        defer { _ = second.stop() }
        for i in 0..<5 {
            let r = try second.request("POST", "/v1/sessions", json: ["username": "user\(i)", "password": "password1"])
            #expect(r.status == 201, "user\(i) lost after kill -9")
        }
    }

    @Test func sigtermStopsCleanlyWithExitZero() throws {
        let dir = ScratchDir("serve-term")
        defer { dir.cleanup() }
        let server = try ServerProcess(data: dir.path + "/data")
        _ = try server.request("POST", "/v1/users", json: ["username": "carol", "password": "password1", "email": "c@example.com"])
        let (status, stderr) = server.stop()
        #expect(status == 0, "\(stderr)")
        #expect(stderr.contains("write-ahead log flushed and closed"))
    }

    @Test(arguments: [
        ["--fsync", "sometimes"], ["--http", "nope"], ["--inactivity-after", "5x"], ["--session-rate-limit", "fast"],
        ["--max-connections", "0"], ["--event-loops", "0"], ["--commit-interval-us", "200000"], ["--bogus"],
        ["--peer", "node2@127.0.0.1:7002"],
    ])
    func badOptionsExitTwoWithAMessage(_ args: [String]) throws {
        let child = try Child(["serve"] + args)
        while child.readLine() != nil {}
        let (status, stderr) = child.wait()
        #expect(status == 2)
        #expect(stderr.contains("Error:") && stderr.contains(args[0]) || stderr.contains("Unknown option"), "\(stderr)")
    }

    @Test func environmentVariablesStandForOptions() throws {
        let child = try Child(["serve"], environment: ["CHORUS_FSYNC": "sometimes"])
        while child.readLine() != nil {}
        let (status, stderr) = child.wait()
        #expect(status == 2 && stderr.contains("--fsync"), "\(stderr)")
    }

    @Test func loginRateLimitAnswers429WithRetryAfter() throws {
        let dir = ScratchDir("serve-ratelimit")
        defer { dir.cleanup() }
        let server = try ServerProcess(data: dir.path + "/data", extra: ["--login-rate-limit", "0.5:2"])
        defer { _ = server.stop() }
        _ = try server.request("POST", "/v1/users", json: ["username": "dave", "password": "password1", "email": "d@example.com"])
        #expect(try server.request("POST", "/v1/sessions", json: ["username": "dave", "password": "password1"]).status == 201)
        #expect(try server.request("POST", "/v1/sessions", json: ["username": "dave", "password": "password1"]).status == 201)
        let limited = try server.request("POST", "/v1/sessions", json: ["username": "dave", "password": "password1"])
        #expect(limited.status == 429 && limited.errorCode == "rate_limited")
        #expect(Int(limited.headers["retry-after"] ?? "") ?? 0 >= 1)
    }

    @Test func pastTheConnectionCapNewConnectionsGet503() throws {
        let dir = ScratchDir("serve-cap")
        defer { dir.cleanup() }
        let server = try ServerProcess(data: dir.path + "/data", extra: ["--max-connections", "2"])
        defer { _ = server.stop() }
        // Two idle connections fill the cap.
        let a = try HTTPTestClient.connect(port: server.port)
        let b = try HTTPTestClient.connect(port: server.port)
        // Each descriptor is closed exactly once: tests share the process, and closing a number twice
        // would close whatever another test opened under it meanwhile.
        defer { close(b) }
        let refused = try HTTPTestClient.request(port: server.port, "GET", "/healthz")
        #expect(refused.status == 503 && refused.errorCode == "unavailable")
        close(a)
        // The held connections were not disturbed; once one closes, service resumes.
        try HTTPTestClient.sendAll(b, Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(try HTTPTestClient.parse(HTTPTestClient.readAll(b)).status == 200)
    }

    @Test func metricsExposeTheLog() throws {
        let dir = ScratchDir("serve-metrics")
        defer { dir.cleanup() }
        let server = try ServerProcess(data: dir.path + "/data")
        defer { _ = server.stop() }
        _ = try server.request("POST", "/v1/users", json: ["username": "erin", "password": "password1", "email": "e@example.com"])
        let frank = try server.request("POST", "/v1/users", json: ["username": "frank", "password": "password1", "email": "f@example.com"])
        let token = try server.request("POST", "/v1/sessions", json: ["username": "erin", "password": "password1"]).json["token"] as? String
        let conv = try server.request("POST", "/v1/conversations", json: ["members": [frank.json["userId"] as? String ?? ""]], token: token)
        let id = conv.json["conversationId"] as? String ?? ""
        #expect(try server.request("POST", "/v1/conversations/\(id)/messages", json: ["clientMsgId": "1", "body": "hi"], token: token).status == 201)
        let metrics = try server.request("GET", "/metrics")
        #expect(metrics.status == 200 && metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        for series in ["chorus_connections_open", "chorus_wal_fsync_seconds_bucket", "chorus_wal_commits_total", "chorus_wal_healthy 1",
                       "chorus_messages_accepted_total 1", "chorus_wal_size_bytes", "chorus_sessions_open 0",
                       "chorus_conversations 1", "chorus_conversations_live 1"] {
            #expect(metrics.text.contains(series), "\(series)")
        }
    }
}
