import ChorusReengagement
import Testing

@Suite struct EmailMessageTests {
    let message = EmailMessage(
        from: "Chorus <chorus@example.com>", to: "ann@example.com", subject: "Ann, your conversations are waiting",
        dateMs: 1_795_834_293_000, messageId: "<reengage.u_1.5@chat.example>", unsubscribeURL: "http://chat.example/v1/unsubscribe?token=u_1.abc",
        text: "Hello Ann", html: "<p>Hello Ann</p>")

    @Test func headersPartsAndOneClickUnsubscribe() {
        let text = message.rendered()
        let (head, body) = (text.components(separatedBy: "\r\n\r\n")[0], text)
        #expect(head.contains("From: Chorus <chorus@example.com>\r\nTo: ann@example.com\r\n"))
        #expect(head.contains("Date: Sat, 28 Nov 2026 02:51:33 +0000"))
        #expect(head.contains("Message-ID: <reengage.u_1.5@chat.example>"))
        #expect(head.contains("List-Unsubscribe: <http://chat.example/v1/unsubscribe?token=u_1.abc>"))
        #expect(head.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"))
        #expect(head.contains("Content-Type: multipart/alternative; boundary=\"=_chorus_alt\""))
        #expect(body.contains("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8gQW5u\r\n"))
        #expect(body.contains("Content-Type: text/html; charset=utf-8"))
        #expect(body.hasSuffix("--=_chorus_alt--\r\n"))
        #expect(text.split(separator: "\r\n").allSatisfy { $0.utf8.count <= 998 }, "RFC 5322 line limit")
    }

    @Test func noInputCanAddAHeader() {
        var m = message
        m.subject = "hi\r\nBcc: everyone@example.com"
        m.to = "ann@example.com\nX-Evil: 1"
        let head = m.rendered().components(separatedBy: "\r\n\r\n")[0]
        let names = head.components(separatedBy: "\r\n").map { $0.split(separator: ":").first.map(String.init) ?? "" }
        #expect(!names.contains("Bcc") && !names.contains("X-Evil"))
        #expect(head.contains("Subject: hi  Bcc: everyone@example.com"))
    }

    @Test func nonASCIIHeaderValuesAreEncodedWords() {
        #expect(EmailMessage.header("Zoë") == "=?UTF-8?B?Wm/Dqw==?=")
        let long = EmailMessage.header(String(repeating: "é", count: 40))
        #expect(long.components(separatedBy: "\r\n ").count == 2 && long.hasPrefix("=?UTF-8?B?"))
    }

    @Test func datesAreRFC5322() {
        #expect(EmailMessage.rfc5322Date(0) == "Thu, 1 Jan 1970 00:00:00 +0000")
        #expect(EmailMessage.rfc5322Date(951_782_400_000) == "Tue, 29 Feb 2000 00:00:00 +0000")
    }

    @Test func templatesFillValuesAndEscapeThemInHTML() throws {
        let t = try EmailTemplates(subject: "{{name}}!", text: "Hi {{ name }} {{missing}}.", html: "<b>{{name}}</b>")
        let out = t.render(["name": "<Ann & co>"])
        #expect(out.subject == "<Ann & co>!" && out.text == "Hi <Ann & co> .")
        #expect(out.html == "<b>&lt;Ann &amp; co&gt;</b>")
    }

    @Test func templatesAreMustache() throws {
        // Sections and inverted sections work; a broken template is refused with its part named.
        let t = try EmailTemplates(
            subject: "{{#name}}Hi {{name}}{{/name}}{{^name}}Hello{{/name}}", text: "{{{loginURL}}}", html: "{{{name}}}|{{name}}")
        #expect(t.render(["name": "Ann"]).subject == "Hi Ann")
        #expect(t.render([:]).subject == "Hello")
        #expect(t.render(["name": "<b>"]).html == "<b>|&lt;b&gt;")
        #expect(throws: EmailTemplates.Invalid.self) { try EmailTemplates(subject: "{{#open}} never closed", text: "", html: "") }
        do {
            _ = try EmailTemplates(subject: "ok", text: "ok", html: "{{#a}}{{/b}}")
        } catch {
            #expect(error.part == "html")
        }
    }
}
