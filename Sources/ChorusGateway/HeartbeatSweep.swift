import NIOCore
import Synchronization

/// Something the heartbeat sweep watches: a session's driver, or a relayed session's edge handler.
protocol HeartbeatWatched: AnyObject {
    /// When the client last sent a frame of any kind.
    var lastSeen: NIODeadline { get }
    /// Nothing from the client for longer than `HeartbeatWindow.silenceLimitMs`: close.
    func silent()
}

/// One timer per event loop instead of one per session: every `HeartbeatWindow.sweepIntervalMs` it
/// closes (1001) the sessions on its loop that `HeartbeatWindow` finds silent. Lives on its loop;
/// sessions register when they open and leave when they end.
final class HeartbeatSweep {
    private var sessions: [ObjectIdentifier: any HeartbeatWatched] = [:]
    private var task: RepeatedTask?
    private let eventLoop: any EventLoop
    private let window: HeartbeatWindow

    private init(eventLoop: any EventLoop, heartbeatMs: Int) {
        self.eventLoop = eventLoop
        window = HeartbeatWindow(heartbeatMs: Int64(heartbeatMs))
        let bound = NIOLoopBound(Unmanaged.passUnretained(self), eventLoop: eventLoop)
        // The sweep lives as long as the process (one per loop): unretained is safe.
        let every = TimeAmount.milliseconds(window.sweepIntervalMs)
        task = eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
            bound.value.takeUnretainedValue().sweep()
        }
    }

    func add(_ handler: any HeartbeatWatched) { sessions[ObjectIdentifier(handler)] = handler }

    func remove(_ handler: any HeartbeatWatched) { sessions[ObjectIdentifier(handler)] = nil }

    private func sweep() {
        let now = NIODeadline.now()
        for handler in sessions.values where window.isSilent(silentForMs: (now - handler.lastSeen).nanoseconds / 1_000_000) {
            handler.silent()
        }
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
