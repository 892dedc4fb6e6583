/// The re-engagement email's wording: a subject, a plain-text and an HTML template, with `{{name}}`,
/// `{{username}}`, `{{loginURL}}` and `{{unsubscribeURL}}` filled in (HTML-escaped in the HTML
/// part). The defaults below; an operator replaces them with the files `subject.txt`, `body.txt`
/// and `body.html` of `--email-templates DIR`. Pure.
public struct EmailTemplates: Sendable, Equatable {
    public var subject: String
    public var text: String
    public var html: String

    public init(subject: String, text: String, html: String) {
        self.subject = subject
        self.text = text
        self.html = html
    }

    public static let standard = EmailTemplates(
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

    /// The three parts with `values` filled in.
    public func render(_ values: [String: String]) -> (subject: String, text: String, html: String) {
        (Self.fill(subject, values, escape: false), Self.fill(text, values, escape: false), Self.fill(html, values, escape: true))
    }

    /// Replaces each `{{key}}` with its value (unknown keys: empty), HTML-escaped if asked.
    static func fill(_ template: String, _ values: [String: String], escape: Bool) -> String {
        var out = ""
        var rest = template[...]
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                rest = rest[open.lowerBound...]
                break
            }
            let key = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: " ")
            let value = values[key] ?? ""
            out += escape ? htmlEscaped(value) : value
            rest = rest[close.upperBound...]
        }
        return out + rest
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

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
