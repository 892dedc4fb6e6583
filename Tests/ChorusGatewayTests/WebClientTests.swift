import Foundation
import Testing

@testable import ChorusGateway

@Suite struct WebClientTests {
    func folder(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-web-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/" + name)) }
        return dir
    }

    @Test func servesIndexAndAppFilesWithAStrictPolicy() throws {
        let web = WebClient(directory: try folder(["index.html": "<p>hi</p>", "app.js": "x()", "app.css": "p{}", "notes.txt": "no", ".hidden.js": "no"]))
        let index = try #require(web.response(method: "GET", path: "/"))
        #expect(index.status == 200 && index.body == Array("<p>hi</p>".utf8))
        let headers = Dictionary(index.headers, uniquingKeysWith: { a, _ in a })
        #expect(headers["Content-Type"] == "text/html; charset=utf-8")
        #expect(headers["Content-Security-Policy"]?.contains("script-src 'self'") == true)
        #expect(headers["Content-Security-Policy"]?.contains("unsafe-inline") == false)
        #expect(headers["X-Content-Type-Options"] == "nosniff")
        #expect(web.response(method: "GET", path: "/app/app.js")?.headers.first?.1 == "text/javascript; charset=utf-8")
        #expect(web.response(method: "GET", path: "/app/app.css")?.status == 200)
        // Only known types, no hidden files, no paths out of the folder.
        for path in ["/app/notes.txt", "/app/.hidden.js", "/app/../Package.swift", "/app/", "/app/x/app.js"] {
            #expect(web.response(method: "GET", path: path)?.status == 404, "\(path)")
        }
    }

    @Test func leavesOtherPathsAndMethodsToTheAPI() throws {
        let web = WebClient(directory: try folder(["index.html": "x"]))
        #expect(web.response(method: "GET", path: "/v1/me") == nil)
        #expect(web.response(method: "POST", path: "/") == nil)
        #expect(web.response(method: "GET", path: "/healthz") == nil)
    }

    @Test func withoutItsFilesTheClientAnswers503AndTheAPIIsUntouched() {
        let web = WebClient(directory: "/nonexistent/chorus-web")
        #expect(web.directory == nil)
        #expect(web.response(method: "GET", path: "/")?.status == 503)
        #expect(web.response(method: "GET", path: "/v1/users") == nil)
    }

    @Test func theShippedClientIsFound() throws {
        // The resources beside the test binary or the source tree: index.html and its modules.
        let dir = try #require(WebClient.defaultDirectory())
        let web = WebClient(directory: dir)
        for name in ["index.html", "app.js", "client.js", "api.js", "app.css"] { #expect(web.assets[name] != nil, "\(name)") }
    }
}
