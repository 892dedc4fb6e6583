import Mustache

/// The re-engagement email's wording: a subject, a plain-text and an HTML Mustache template
/// (swift-mustache: `{{name}}`, `{{#section}}…{{/section}}`, `{{{raw}}}`), given `name`,
/// `loginURL` and `unsubscribeURL`. Values are HTML-escaped in the HTML part only. The defaults
/// below; an operator replaces them with the files `subject.txt`, `body.txt` and `body.html` of
/// `--email-templates DIR`, parsed once at start (a syntax error stops the node with exit 2). Pure.
public struct EmailTemplates: Sendable, Equatable {
    public let subject: String
    public let text: String
    public let html: String
    private let compiled: (subject: MustacheTemplate, text: MustacheTemplate, html: MustacheTemplate)

    /// A template that does not parse, and which part it is.
    public struct Invalid: Error, CustomStringConvertible {
        public let part: String
        public let reason: String
        public var description: String { "the \(part) template does not parse: \(reason)" }
    }

    public init(subject: String, text: String, html: String) throws(Invalid) {
        self.subject = subject
        self.text = text
        self.html = html
        func parse(_ part: String, _ source: String, plain: Bool) throws(Invalid) -> MustacheTemplate {
            // Plain parts are not HTML: their values go in as they are.
            do { return try MustacheTemplate(string: (plain ? "{{% CONTENT_TYPE: TEXT}}" : "") + source) } catch {
                throw Invalid(part: part, reason: "\(error)")
            }
        }
        compiled = (try parse("subject", subject, plain: true), try parse("text", text, plain: true), try parse("html", html, plain: false))
    }

    public static func == (a: EmailTemplates, b: EmailTemplates) -> Bool {
        a.subject == b.subject && a.text == b.text && a.html == b.html
    }

    public static let standard = try! EmailTemplates(
        subject: "{{name}}, your conversations are waiting",
        text: """
            Hello {{name}},

            You have not been on Chorus for a while. Your conversations are where you left them:
            {{loginURL}}

            You get this email once per period of inactivity. To get no more of them:
            {{unsubscribeURL}}
            """,
        html: """
            <!doctype html>
            <html><body>
            <p>Hello {{name}},</p>
            <p>You have not been on Chorus for a while. Your conversations are where you left them.</p>
            <p><a href="{{loginURL}}">Open Chorus</a></p>
            <p style="font-size:small">You get this email once per period of inactivity.
            <a href="{{unsubscribeURL}}">Unsubscribe</a></p>
            </body></html>
            """)

    /// The three parts with `values` filled in (unknown names: empty).
    public func render(_ values: [String: String]) -> (subject: String, text: String, html: String) {
        (compiled.subject.render(values), compiled.text.render(values), compiled.html.render(values))
    }

    public static func htmlEscaped(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }
}
