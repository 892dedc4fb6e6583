import ChorusCore
import NIOCore

/// Where a session's server frames go: its own socket, or a peer node that holds the client's
/// socket (the session then runs here, on the user's owner, and its frames travel over the mesh).
enum SessionOutlet: Sendable {
    case channel(any Channel)
    case remote(RemoteOutlet)

    var eventLoop: any EventLoop {
        switch self {
        case .channel(let c): c.eventLoop
        case .remote(let r): r.eventLoop
        }
    }

    var isWritable: Bool {
        switch self {
        case .channel(let c): c.isWritable
        case .remote: true  // bounded by the mesh link's queue (a frame past it is dropped and the session closed)
        }
    }

    var allocator: ByteBufferAllocator {
        switch self {
        case .channel(let c): c.allocator
        case .remote: ByteBufferAllocator()
        }
    }

    /// Queues a whole text frame, header included (no flush). A peer node gets its payload.
    func writeText(frame: ByteBuffer, promise: EventLoopPromise<Void>?) {
        switch self {
        case .channel(let c):
            c.write(frame, promise: promise)
        case .remote(let r):
            r.queue(Array(WebSocketServerFraming.payload(ofFrame: frame).readableBytesView))
            promise?.succeed()
        }
    }

    func flush() {
        switch self {
        case .channel(let c): c.flush()
        case .remote(let r): r.flush()
        }
    }

    /// Sends a close frame with `code`, then closes. On the loop.
    /// `echo`: the client closed first and this is the answer (the connection ends once it is out).
    func close(code: UInt16, reason: String, echo: Bool = false) {
        switch self {
        case .channel(let channel):
            WebSocketSession.closeHandshake(channel, code: code, reason: reason, echo: echo)
        case .remote(let r):
            r.flush()
            r.close(code: code, reason: reason)
        }
    }
}
