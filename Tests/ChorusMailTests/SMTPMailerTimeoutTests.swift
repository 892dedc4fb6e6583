import ChorusMail
import ChorusReengagement
import Logging
import NIOCore
import NIOPosix
import Testing

/// The mailer against a real socket: a server that greets, answers EHLO, then goes silent.
@Suite struct SMTPMailerTimeoutTests {
    /// Answers the greeting and EHLO; every later line gets no reply.
    final class GoesSilentAfterEHLO: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        var pending = ""
        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "220 silent.example ESMTP\r\n")), promise: nil)
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            pending += String(buffer: unwrapInboundIn(data))
            while let end = pending.range(of: "\r\n") {
                let line = pending[..<end.lowerBound]
                if line.hasPrefix("EHLO") {
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "250 silent.example\r\n")), promise: nil)
                }
                pending.removeSubrange(..<end.upperBound)
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func aStepWithoutAReplyTimesOutAndTheEmailIsRetriedLater() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { $0.pipeline.addHandler(GoesSilentAfterEHLO()) }
            .bind(host: "127.0.0.1", port: 0).get()
        var settings = SMTPSettings(host: "127.0.0.1", port: server.localAddress!.port!, sender: "chorus@chat.example")
        settings.tls = .off
        settings.stepTimeout = .milliseconds(200)
        let mailer = SMTPMailer(settings: settings, group: group, logger: Logger(label: "test"), connections: 1)
        let message = EmailMessage(
            from: "Chorus <chorus@chat.example>", to: "ann@example.com", subject: "Hi", dateMs: 0,
            messageId: "<m1@chat.example>", unsubscribeURL: "http://chat.example/u", text: "hello", html: "<p>hello</p>")
        let outcome = await mailer.send(message, to: "ann@example.com")
        guard case .retryLater(let why) = outcome else { Issue.record("expected retryLater, got \(outcome)"); return }
        #expect(why.contains("timeout") && why.contains("MAIL"), "\(why)")
        await mailer.close()
        try await server.close()
        try await group.shutdownGracefully()
    }
}
