import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Options of one `chorus load` run.
public struct LoadOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// More nodes of the same cluster: connection `i` opens its WebSocket on node `i % (1 + count)`
    /// (the first being `host:port`); set-up goes through the first.
    public var moreTargets: [(host: String, port: Int)] = []
    public var connections = 100
    /// Messages per second over all connections; 0 = closed loop with `window` in flight each.
    public var rate = 1000.0
    public var window = 1
    public var durationSeconds = 10.0
    public var warmupSeconds = 1.0
    public var drainSeconds = 10.0
    public var bodyBytes = 100
    public var userPrefix = "load"
    public var password = "load-password"
    public var serverPid: Int32?
    public var setupWorkers = 16
    public var eventLoops = System.coreCount

    public init() {}
}

/// Carries out a load run: set-up over HTTP, connect, send on the plan, drain, report.
/// Blocking by design: it is a command-line tool's main thread; the traffic itself runs on NIO loops.
public final class LoadRunner {
    let options: LoadOptions
    let plan: LoadPlan
    let log: (String) -> Void

    public init(options: LoadOptions, log: @escaping (String) -> Void) {
        self.options = options
        self.plan = LoadPlan(
            connections: options.connections, rate: options.rate, window: options.window,
            durationNanos: UInt64(options.durationSeconds * 1e9), warmupNanos: UInt64(options.warmupSeconds * 1e9))
        self.log = log
    }

    struct Account: Sendable {
        var userId = ""
        var token = ""
    }

    public func run() throws -> LoadReport {
        var report = LoadReport()
        report.mode = plan.isOpenLoop ? "open" : "closed"
        report.connections = options.connections
        report.targetRate = options.rate
        report.window = options.window
        report.durationSeconds = options.durationSeconds
        report.warmupSeconds = options.warmupSeconds
        report.serverPid = options.serverPid

        let accounts = try setUpAccounts()
        let conversations = try setUpConversations(accounts)
        report.serverRssBeforeBytes = options.serverPid.flatMap(residentSetBytes(pid:))

        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.eventLoops))
        defer { try? group.syncShutdownGracefully() }
        var stats: [ObjectIdentifier: LoopStats] = [:]
        for loop in group.makeIterator() { stats[ObjectIdentifier(loop)] = LoopStats(loop: loop) }
        let loopStats = stats

        let connections = try connect(group: group, accounts: accounts, conversations: conversations, stats: loopStats)
        report.connected = connections.count
        report.serverRssConnectedBytes = options.serverPid.flatMap(residentSetBytes(pid:))
        log("connected \(connections.count) WebSockets; sending for \(options.durationSeconds) s")

        let start = LoadConnection.now() + 100_000_000
        for c in connections { c.channel.eventLoop.execute { c.start(at: start) } }
        var pacers: [OpenLoopPacer] = []
        if plan.isOpenLoop {
            for (id, s) in loopStats {
                let mine = connections.filter { ObjectIdentifier($0.channel.eventLoop) == id }
                let pacer = OpenLoopPacer(loop: s.loop, plan: plan, connections: mine)
                pacers.append(pacer)
                s.loop.execute { pacer.start(at: start) }
            }
        }
        let sendEnd = start + plan.durationNanos
        while LoadConnection.now() < sendEnd { Thread.sleep(forTimeInterval: Double(sendEnd - LoadConnection.now()) / 1e9) }
        for p in pacers { try p.loop.submit { p.stop() }.wait() }
        drain(stats: Array(loopStats.values))

        var ledgers: [ConnectionLedger] = []
        for c in connections {
            let (ledger, closed) = try c.channel.eventLoop.submit { () -> (ConnectionLedger, Bool) in
                c.stop()
                return (c.ledger, c.closedByServer)
            }.wait()
            ledgers.append(ledger)
            if closed { report.closedByServer += 1 }
        }
        for i in ledgers.indices { report.add(ledger: ledgers[i], peer: ledgers[plan.peer(of: i)]) }
        var lastAck: UInt64 = 0
        for s in loopStats.values {
            let (h, last) = try s.loop.submit { (s.histograms, s.lastAckNanos) }.wait()
            report.histograms.merge(h)
            lastAck = max(lastAck, last)
        }
        report.ackSpanSeconds = lastAck > start ? max(Double(lastAck - start), Double(plan.durationNanos)) / 1e9 : 0
        report.serverRssEndBytes = options.serverPid.flatMap(residentSetBytes(pid:))
        close(connections)
        return report
    }

    /// Waits until every sent message is acked (or refused) and every ack delivered, at most `drainSeconds`.
    func drain(stats: [LoopStats]) {
        let deadline = LoadConnection.now() + UInt64(options.drainSeconds * 1e9)
        while LoadConnection.now() < deadline {
            var outstanding = 0
            var acked = 0
            var delivered = 0
            for s in stats {
                guard let v = try? s.loop.submit({ (s.outstanding, s.acked, s.delivered) }).wait() else { continue }
                outstanding += v.0
                acked += v.1
                delivered += v.2
            }
            if outstanding == 0 && delivered >= acked { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        log("drain: gave up after \(options.drainSeconds) s; the report counts what never arrived")
    }

    func close(_ connections: [LoadConnection]) {
        for c in connections {
            c.channel.eventLoop.execute {
                var frame = c.channel.allocator.buffer(capacity: 8)
                withUnsafeBytes(of: UInt16(1000).bigEndian) {
                    WebSocketClientFraming.writeFrame(opcode: WebSocketClientFraming.close, payload: $0, maskKey: c.stats.nextMaskKey32(), into: &frame)
                }
                c.channel.writeAndFlush(frame).whenComplete { _ in c.channel.close(promise: nil) }
            }
        }
        for c in connections { try? c.channel.closeFuture.wait() }
    }
}
