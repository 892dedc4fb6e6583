import NIOCore
import NIOHTTP1
import NIOPosix

/// One etcd endpoint, from `http://HOST:PORT`.
public struct EtcdEndpoint: Equatable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int

    /// Nil for anything but `http://HOST:PORT` (TLS to etcd is not built: run it on a trusted network).
    public init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst("http://".count).split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        let host = String(rest[..<colon])
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { "http://\(host):\(port)" }
}

/// Collects one HTTP response, or hands a streamed body on line by line (a watch).
final class EtcdResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    /// Bound on one response (or one line of a stream): past it the connection is closed and the call fails.
    static let maxBytes = 8 << 20

    private let promise: EventLoopPromise<(status: Int, body: [UInt8])>
    private let onLine: (@Sendable ([UInt8]) -> Void)?
    private var status = 0
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<(status: Int, body: [UInt8])>, onLine: (@Sendable ([UInt8]) -> Void)?) {
        self.promise = promise
        self.onLine = onLine
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(var buffer):
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
            if let onLine, status == 200 {
                // grpc-gateway ends every streamed message with a newline.
                while let nl = body.firstIndex(of: 0x0A) {
                    let line = Array(body[..<nl])
                    body.removeSubrange(...nl)
                    if !line.isEmpty { onLine(line) }
                }
            }
            if body.count > Self.maxBytes {
                promise.fail(EtcdError.malformed("answer over \(Self.maxBytes) bytes"))
                context.close(promise: nil)
            }
        case .end:
            promise.succeed((status, body))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(EtcdError.unreachable("connection closed"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(EtcdError.unreachable("\(error)"))
        context.close(promise: nil)
    }
}

/// HTTP/1.1 POSTs to etcd's JSON gateway, one connection each (calls are rare: keep-alives, failovers).
enum EtcdHTTP {
    /// POSTs `body` and returns the answer; fails after `timeout`. `onLine` streams a long answer.
    static func post(
        group: any EventLoopGroup, endpoint: EtcdEndpoint, path: String, body: [UInt8], timeout: TimeAmount,
        onLine: (@Sendable ([UInt8]) -> Void)? = nil, started: (@Sendable (any Channel) -> Void)? = nil
    ) async throws(EtcdError) -> (status: Int, body: [UInt8]) {
        let loop = group.next()
        let promise = loop.makePromise(of: (status: Int, body: [UInt8]).self)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(EtcdResponseHandler(promise: promise, onLine: onLine))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            promise.fail(EtcdError.unreachable("\(endpoint): \(error)"))
            throw .unreachable("\(endpoint): \(error)")
        }
        started?(channel)
        if onLine == nil {
            let timer = loop.scheduleTask(in: timeout) {
                promise.fail(EtcdError.unreachable("\(endpoint): no answer in \(timeout.nanoseconds / 1_000_000) ms"))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "Host", value: "\(endpoint.host):\(endpoint.port)")
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(body.count))
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        do {
            return try await promise.futureResult.get()
        } catch let e as EtcdError {
            throw e
        } catch {
            throw .unreachable("\(error)")
        }
    }
}
