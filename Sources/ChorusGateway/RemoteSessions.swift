import ChorusCore
import ChorusEngine
import ChorusPeer
import NIOCore
import Synchronization

/// The outlet of a session whose client is connected to another node (the edge): frames written in
/// one loop tick go to the edge as one `sessionPush`. Loop-confined (`eventLoop`).
final class RemoteOutlet: @unchecked Sendable {
    let eventLoop: any EventLoop
    let edge: String
    let proxy: UInt64
    private let client: PeerClient
    private let closed: @Sendable () -> Void
    private var buffer: [[UInt8]] = []

    init(eventLoop: any EventLoop, edge: String, proxy: UInt64, client: PeerClient, closed: @escaping @Sendable () -> Void) {
        self.eventLoop = eventLoop
        self.edge = edge
        self.proxy = proxy
        self.client = client
        self.closed = closed
    }

    func queue(_ frame: [UInt8]) {
        buffer.append(frame)
        if buffer.count >= PeerBounds.framesPerPush { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        client.tell(.sessionPush(proxy: proxy, frames: buffer), to: edge)
        buffer.removeAll(keepingCapacity: true)
    }

    /// The session closes itself: tell the edge (which closes the socket with `code`), end it here.
    func close(code: UInt16, reason: String) {
        client.tell(.sessionClose(proxy: proxy, code: code, reason: reason), to: edge)
        closed()
    }
}

/// Sessions run on this node (the user's owner) for clients connected to other nodes. Keyed by
/// (edge node, proxy id). Bound: one entry per relayed connection, and edges hold at most
/// `--max-connections` each.
final class RemoteSessions: Sendable {
    struct Key: Hashable, Sendable {
        var edge: String
        var proxy: UInt64
    }

    /// A session being opened (token check in flight) holds the frames that arrive meanwhile.
    final class Entry: @unchecked Sendable {
        let loop: any EventLoop
        var driver: SessionDriver?
        var early: [(text: Bool, bytes: [UInt8])] = []
        var ended = false
        init(loop: any EventLoop) { self.loop = loop }
    }

    static let maxEarlyFrames = 64
    private let entries = Mutex<[Key: Entry]>([:])
    private let services: SessionServices
    private let client: PeerClient
    private let loops: any EventLoopGroup

    init(services: SessionServices, client: PeerClient, loops: any EventLoopGroup) {
        self.services = services
        self.client = client
        self.loops = loops
    }

    var count: Int { entries.withLock { $0.count } }

    /// `sessionOpen` from `edge`. Registered before the token is checked, so frames the edge sends
    /// right after (same link, in order) are held, not lost.
    func open(edge: String, proxy: UInt64, token: String, authenticate: @escaping @Sendable (String) async throws(ChatError) -> UserRecord,
              reply: @escaping @Sendable (Result<Void, ChatError>) -> Void) {
        let key = Key(edge: edge, proxy: proxy)
        let entry = Entry(loop: loops.next())
        entries.withLock { $0[key] = entry }
        let services = self.services
        let client = self.client
        Task {
            let result: Result<UserRecord, ChatError>
            do throws(ChatError) {
                let user = try await authenticate(token)
                // The user's sessions all run here, relayed or not: the cap is counted here.
                guard services.registry.sessionCount(of: user.userId) < services.maxSessionsPerUser else {
                    throw .rateLimited(retryAfterMs: 1000)
                }
                result = .success(user)
            } catch { result = .failure(error) }
            entry.loop.execute { [self] in
                guard case .success(let user) = result, !entry.ended else {
                    remove(key)
                    if case .failure(let e) = result { reply(.failure(e)) } else { reply(.failure(.unavailable("session closed"))) }
                    return
                }
                let outlet = RemoteOutlet(eventLoop: entry.loop, edge: edge, proxy: proxy, client: client) { [self] in
                    entry.loop.execute { self.end(key) }
                }
                let driver = SessionDriver(services: services, user: user, tokenHash: Accounts.hash(token: token))
                entry.driver = driver
                driver.start(outlet: .remote(outlet), watchSilence: false)
                reply(.success(()))
                for f in entry.early { deliver(f.text, f.bytes, to: driver) }
                entry.early = []
            }
        }
    }

    /// A client frame relayed by `edge`.
    func frame(edge: String, proxy: UInt64, text: Bool, bytes: [UInt8]) {
        guard let entry = entries.withLock({ $0[Key(edge: edge, proxy: proxy)] }) else {
            // The owner node no longer holds the WebSocket (it restarted, or the queue overflowed):
            // the edge closes the socket.
            client.tell(.sessionClose(proxy: proxy, code: 1011, reason: "session lost on its owner node; reconnect and sync"), to: edge)
            return
        }
        entry.loop.execute { [self] in
            if let driver = entry.driver {
                deliver(text, bytes, to: driver)
            } else if entry.early.count < Self.maxEarlyFrames {
                entry.early.append((text, bytes))
            }
        }
    }

    private func deliver(_ text: Bool, _ bytes: [UInt8], to driver: SessionDriver) {
        if text { driver.text(bytes) } else { driver.nonText() }
    }

    /// The edge's socket closed (`code` is what the client sent, if anything).
    func closed(edge: String, proxy: UInt64) {
        let key = Key(edge: edge, proxy: proxy)
        guard let entry = entries.withLock({ $0[key] }) else { return }
        entry.loop.execute { self.end(key) }
    }

    /// Every session relayed by `edge` ends (it is unreachable; its clients reconnect and sync).
    func edgeDown(_ edge: String) {
        for (key, entry) in entries.withLock({ $0.filter { $0.key.edge == edge } }) { entry.loop.execute { self.end(key) } }
    }

    /// On the entry's loop.
    private func end(_ key: Key) {
        guard let entry = remove(key) else { return }
        entry.ended = true
        entry.driver?.end()
    }

    @discardableResult
    private func remove(_ key: Key) -> Entry? { entries.withLock { $0.removeValue(forKey: key) } }
}
