import Foundation
import NIOCore
import NIOPosix
import Synchronization

extension LoadRunner {
    /// Runs `body(i)` for i in 0..<count on `workers` threads; the first error wins.
    func parallel(_ count: Int, workers: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
        let next = Mutex(0)
        let failure = Mutex<(any Error)?>(nil)
        let group = DispatchGroup()
        for _ in 0..<max(1, min(workers, count)) {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while true {
                    let i = next.withLock { n -> Int in
                        defer { n += 1 }
                        return n
                    }
                    guard i < count, failure.withLock({ $0 == nil }) else { return }
                    do { try body(i) } catch { failure.withLock { $0 = $0 ?? error } }
                }
            }
        }
        group.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// Registers (or reuses) one user per connection and logs each in.
    func setUpAccounts() throws -> [Account] {
        let accounts = Mutex([Account](repeating: Account(), count: options.connections))
        let o = options
        try parallel(o.connections, workers: o.setupWorkers) { i in
            let username = "\(o.userPrefix)\(i)"
            let created = try PlainHTTPClient.request(
                host: o.host, port: o.port, "POST", "/v1/users",
                json: ["username": username, "password": o.password, "email": "\(username)@load.invalid"])
            guard created.status == 201 || created.status == 409 else {
                throw PlainHTTPClient.Failure(
                    description: "register \(username): \(created.status) \(created.text) (run the server with --register-rate-limit off)")
            }
            let login = try PlainHTTPClient.request(
                host: o.host, port: o.port, "POST", "/v1/sessions", json: ["username": username, "password": o.password])
            guard login.status == 201, let token = login.json["token"] as? String, let userId = login.json["userId"] as? String
            else {
                throw PlainHTTPClient.Failure(
                    description: "log in \(username): \(login.status) \(login.text) (run the server with --login-rate-limit off)")
            }
            accounts.withLock { $0[i] = Account(userId: userId, token: token) }
        }
        log("set up \(options.connections) users")
        return accounts.withLock { $0 }
    }

    /// Opens (or finds) the direct conversation of every pair; returns it per connection.
    func setUpConversations(_ accounts: [Account]) throws -> [String] {
        let ids = Mutex([String](repeating: "", count: options.connections))
        let o = options
        try parallel(o.connections / 2, workers: o.setupWorkers) { pair in
            let a = accounts[pair * 2]
            let b = accounts[pair * 2 + 1]
            let r = try PlainHTTPClient.request(
                host: o.host, port: o.port, "POST", "/v1/conversations", json: ["members": [b.userId]], token: a.token)
            guard r.status == 200 || r.status == 201, let id = r.json["conversationId"] as? String else {
                throw PlainHTTPClient.Failure(description: "conversation for pair \(pair): \(r.status) \(r.text)")
            }
            ids.withLock {
                $0[pair * 2] = id
                $0[pair * 2 + 1] = id
            }
        }
        return ids.withLock { $0 }
    }

    /// Upgrades every connection (blocking handshakes on worker threads), hands each socket to NIO
    /// and waits for its `hello`.
    func connect(
        group: MultiThreadedEventLoopGroup, accounts: [Account], conversations: [String], stats: [ObjectIdentifier: LoopStats]
    ) throws -> [LoadConnection] {
        let made = Mutex([LoadConnection?](repeating: nil, count: options.connections))
        let o = options
        let plan = self.plan
        let runId = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        try parallel(o.connections, workers: o.setupWorkers) { i in
            let targets = [(o.host, o.port)] + o.moreTargets
            let (host, port) = targets[i % targets.count]
            let fd = try WebSocketHandshake.open(host: host, port: port, token: accounts[i].token)
            let channel = try ClientBootstrap(group: group)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let connection = LoadConnection(
                            index: i, plan: plan, runId: runId, conversationId: conversations[i], bodyBytes: o.bodyBytes,
                            stats: stats[ObjectIdentifier(channel.eventLoop)]!, channel: channel)
                        try channel.pipeline.syncOperations.addHandler(WebSocketClientFramingHandler(connection: connection))
                        made.withLock { $0[i] = connection }
                    }
                }
                .withConnectedSocket(fd).wait()
            guard let connection = made.withLock({ $0[i] }) else { throw ChannelError.ioOnClosedChannel }
            _ = channel
            try connection.hello.futureResult.wait()
        }
        return made.withLock { $0.compactMap { $0 } }
    }
}
