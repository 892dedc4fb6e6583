import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Frames HTTP/1.1 requests (head + bounded body) into `APIRequest`s, hands them to the router one at
/// a time per connection, and writes the responses back in order. No business logic here.
final class HTTPServerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Requests read ahead while one is being answered (pipelining); past it the connection closes.
    static let maxQueuedRequests = 16

    private let router: APIRouter
    private let maxBodyBytes: Int
    /// Peers whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    private let trustedProxies: [CIDR]
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyTooLarge = false
    private var queue: [(HTTPRequestHead, [UInt8])] = []
    private var busy = false

    init(router: APIRouter, maxBodyBytes: Int, trustedProxies: [CIDR] = []) {
        self.trustedProxies = trustedProxies
        self.router = router
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = nil
            bodyTooLarge = false
        case .body(var chunk):
            guard !bodyTooLarge else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > maxBodyBytes {
                bodyTooLarge = true
                body = nil
                return
            }
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            guard let h = head else { return }
            head = nil
            if bodyTooLarge {
                write(context, APIResponse.error(413, code: "bad_request", message: "request body over \(maxBodyBytes) bytes"), keepAlive: false)
                return
            }
            let bytes = body.map { Array($0.readableBytesView) } ?? []
            body = nil
            guard queue.count < Self.maxQueuedRequests else {
                context.close(promise: nil)
                return
            }
            queue.append((h, bytes))
            serveNext(context)
        }
    }

    private func serveNext(_ context: ChannelHandlerContext) {
        guard !busy, !queue.isEmpty else { return }
        busy = true
        let (h, bytes) = queue.removeFirst()
        let peer = context.channel.remoteAddress?.ipAddress ?? "unknown"
        let address = ClientAddress.resolve(peer: peer, forwardedFor: h.headers["X-Forwarded-For"], trusted: trustedProxies)
        let request = APIRequest(
            method: h.method.rawValue, uri: h.uri, headers: h.headers.map { ($0.name, $0.value) }, body: bytes, clientAddress: address)
        let keepAlive = h.isKeepAlive
        let router = self.router
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.makeFutureWithTask { await router.handle(request) }.whenSuccess { response in
            let (handler, context) = bound.value
            handler.busy = false
            handler.write(context, response, keepAlive: keepAlive)
            if keepAlive { handler.serveNext(context) }
        }
    }

    private func write(_ context: ChannelHandlerContext, _ response: APIResponse, keepAlive: Bool) {
        var headers = HTTPHeaders(response.headers)
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        let done = context.writeAndFlushPromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive { done.futureResult.whenComplete { _ in context.close(promise: nil) } }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A declined WebSocket upgrade (no or bad token): the request comes next as plain HTTP and
        // the router answers it (401), so the connection stays.
        if error is NIOWebSocketUpgradeError { return }
        // Malformed HTTP from the client: answer once if no response is under way, then close. A
        // head over its bounds (header count or bytes) is `431`.
        guard let parse = error as? HTTPParserError, !busy else { return context.close(promise: nil) }
        let response = parse == .headerOverflow
            ? APIResponse.error(431, code: "bad_request", message: "request head over its bounds (100 headers, 16 KiB)")
            : APIResponse.error(400, code: "bad_request", message: "malformed HTTP request")
        write(context, response, keepAlive: false)
    }
}

extension ChannelHandlerContext {
    fileprivate func writeAndFlushPromise() -> EventLoopPromise<Void> { eventLoop.makePromise() }
}
