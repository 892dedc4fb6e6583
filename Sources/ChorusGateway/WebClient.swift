import Foundation

/// The browser client's files (`Sources/ChorusGateway/Web`, shipped as the target's resources),
/// read once at start and served from memory: `GET /` is `index.html`, `GET /app/NAME` the rest.
/// Every answer carries a strict Content-Security-Policy: scripts, styles and connections only from
/// this origin, no inline code, no framing.
public struct WebClient: Sendable {
    public struct Asset: Sendable {
        public var contentType: String
        public var body: [UInt8]
    }

    /// File name -> contents. Empty when the resources were not found (logged by the caller).
    public let assets: [String: Asset]
    /// Where the files were read from, or nil.
    public let directory: String?

    public static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

    /// Files larger than this are not loaded (the client is a few tens of KB).
    static let maxFileBytes = 1 << 20

    public init(directory: String?) {
        var assets: [String: Asset] = [:]
        if let directory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory) {
            for name in names.sorted() {
                guard let type = Self.contentType(of: name), let data = FileManager.default.contents(atPath: directory + "/" + name),
                    data.count <= Self.maxFileBytes
                else { continue }
                assets[name] = Asset(contentType: type, body: [UInt8](data))
            }
        }
        self.assets = assets
        self.directory = assets.isEmpty ? nil : directory
    }

    /// The resource folder SwiftPM puts beside the executable (`Chorus_ChorusGateway.resources/Web`),
    /// else the source tree this binary was built from (a development build run from elsewhere).
    public static func defaultDirectory() -> String? {
        var candidates: [String] = []
        if let exe = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() {
            candidates.append(exe.appendingPathComponent("Chorus_ChorusGateway.resources/Web").path)
        }
        candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Web").path)
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/index.html") }
    }

    /// The answer for `GET path`, or nil when the path is not the web client's.
    public func response(method: String, path: String) -> APIResponse? {
        guard method == "GET" else { return nil }
        let name: String
        if path == "/" || path == "/index.html" {
            name = "index.html"
        } else if path.hasPrefix("/app/") {
            name = String(path.dropFirst("/app/".count))
        } else {
            return nil
        }
        guard let asset = assets[name] else {
            if assets.isEmpty {
                return .error(503, code: "unavailable", message: "the web client's files were not found beside this binary")
            }
            return .error(404, code: "not_found", message: "no such file: \(path)")
        }
        return APIResponse(
            status: 200,
            headers: [
                ("Content-Type", asset.contentType),
                ("Content-Security-Policy", Self.contentSecurityPolicy),
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"),
                ("Cache-Control", "no-cache"),
            ],
            body: asset.body)
    }

    static func contentType(of name: String) -> String? {
        // Only plain names: no paths, no hidden files.
        guard !name.hasPrefix("."), !name.contains("/") else { return nil }
        switch (name as NSString).pathExtension {
        case "html": return "text/html; charset=utf-8"
        case "js": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "ico": return "image/x-icon"
        default: return nil
        }
    }
}
