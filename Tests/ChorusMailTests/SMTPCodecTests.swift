@testable import ChorusMail
import ChorusReengagement
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite struct SMTPCodecTests {
    @Test func repliesDecodeWhateverTheReadsSplitOrMerge() throws {
        let wire = "220 mail.example ESMTP\r\n250-mail.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n451 4.3.0 try later\n"
        let expected = [
            SMTPReply(code: 220, lines: ["mail.example ESMTP"]),
            SMTPReply(code: 250, lines: ["mail.example", "PIPELINING", "AUTH PLAIN LOGIN", "8BITMIME"]),
            SMTPReply(code: 451, lines: ["4.3.0 try later"]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(ByteBuffer(string: wire), expected)], decoderFactory: { SMTPReplyDecoder() })
        #expect(expected[1].extensions == ["PIPELINING", "AUTH", "8BITMIME"])
    }

    @Test func garbageAndOverlongLinesAreRefused() {
        var parser = SMTPReplyParser()
        #expect(throws: SMTPReplyParser.Failure.self) { try parser.feed("hello") }
        #expect(throws: SMTPReplyParser.Failure.self) { try parser.feed("99 x") }
        #expect(throws: SMTPReplyParser.Failure.self) { try parser.feed("250*x") }
        var mixed = SMTPReplyParser()
        _ = try? mixed.feed("250-first")
        #expect(throws: SMTPReplyParser.Failure.self) { try mixed.feed("220 other code") }
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SMTPReplyDecoder()))
        #expect(throws: (any Error).self) { try channel.writeInbound(ByteBuffer(string: String(repeating: "2", count: 5000))) }
    }

    @Test func dataIsDotStuffedWithCRLFAndTerminated() {
        let payload = String(decoding: smtpDataPayload("Subject: x\r\n\r\n.hidden\nline\r.\r\nend"), as: UTF8.self)
        #expect(payload == "Subject: x\r\n\r\n..hidden\r\nline\r\n..\r\nend\r\n.\r\n")
        #expect(String(decoding: smtpDataPayload(".\r\n"), as: UTF8.self) == "..\r\n.\r\n")
    }

    @Test func envelopeAddressesCannotCarryACommand() {
        #expect(SMTPMailer.address("ann@example.com>\r\nRCPT TO:<evil@x>") == "ann@example.comRCPTTO:evil@x")
    }
}
