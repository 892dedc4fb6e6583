import NIOCore
import Synchronization

/// Something the heartbeat sweep watches: a session's driver, or a relayed session's edge handler.
protocol HeartbeatWatched: AnyObject {
    /// When the client last sent a frame of any kind.
    var lastSeen: NIODeadline { get }
    /// Nothing from the client for 2 x heartbeatMs: close.
    func silent()
}

/// One timer per event loop instead of one per session: every `interval` it closes (1001) the
/// sessions on its loop that have sent nothing for `window`. Lives on its loop; sessions register
/// when they open and leave when they end.
final class HeartbeatSweep {
    private var sessions: [ObjectIdentifier: any HeartbeatWatched] = [:]
    private var task: RepeatedTask?
    private let eventLoop: any EventLoop
    private let window: TimeAmount

    private init(eventLoop: any EventLoop, heartbeatMs: Int) {
        self.eventLoop = eventLoop
        window = .milliseconds(Int64(heartbeatMs) * 2)
        let bound = NIOLoopBound(Unmanaged.passUnretained(self), eventLoop: eventLoop)
        // The sweep lives as long as the process (one per loop): unretained is safe.
        task = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(Int64(heartbeatMs) / 2), delay: .milliseconds(Int64(heartbeatMs) / 2)) { _ in
            bound.value.takeUnretainedValue().sweep()
        }
    }

    func add(_ handler: any HeartbeatWatched) { sessions[ObjectIdentifier(handler)] = handler }

    func remove(_ handler: any HeartbeatWatched) { sessions[ObjectIdentifier(handler)] = nil }

    private func sweep() {
        let now = NIODeadline.now()
        for handler in sessions.values where now - handler.lastSeen > window { handler.silent() }
    }

    /// The sweep of `eventLoop` (made on first use; call on that loop).
    static func of(_ eventLoop: any EventLoop, heartbeatMs: Int) -> HeartbeatSweep {
        eventLoop.preconditionInEventLoop()
        let key = ObjectIdentifier(eventLoop)
        if let existing = registry.withLock({ $0[key] }) { return existing.sweep.value }
        let made = HeartbeatSweep(eventLoop: eventLoop, heartbeatMs: heartbeatMs)
        registry.withLock { $0[key] = (eventLoop, NIOLoopBound(made, eventLoop: eventLoop)) }
        return made
    }

    /// Keyed by loop identity; holding the loop keeps its identity from being reused by a new one.
    private static let registry = Mutex<[ObjectIdentifier: (loop: any EventLoop, sweep: NIOLoopBound<HeartbeatSweep>)]>([:])
}
