import ChorusGateway
import Foundation
import Testing

/// docs/openapi.yaml against the router's route table (`APIRoute`): every route served is
/// documented under its `operationId`, nothing documented is missing from the router, and the
/// routes that take no user token say so (`security` on the operation). The document's paths and
/// operations are read in the layout it is written in (two-space indents).
@Suite struct OpenAPIDocumentTests {
    struct Operation: Hashable {
        var method: String
        var path: String
        var operationId: String
        var ownSecurity: Bool
    }

    static func operations() throws -> [Operation] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/openapi.yaml")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(of: "paths:"), let end = lines.firstIndex(of: "components:") else { return [] }
        var out: [Operation] = []
        var path: String?
        for line in lines[(start + 1)..<end] {
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":"),
                ["get", "post", "put", "patch", "delete"].contains(line.trimmingCharacters(in: .whitespaces).dropLast()), let path
            {
                out.append(Operation(method: String(line.trimmingCharacters(in: .whitespaces).dropLast()).uppercased(), path: path, operationId: "", ownSecurity: false))
            } else if line.hasPrefix("      operationId: "), !out.isEmpty {
                out[out.count - 1].operationId = String(line.dropFirst("      operationId: ".count))
            } else if line.hasPrefix("      security:"), !out.isEmpty {
                out[out.count - 1].ownSecurity = true
            }
        }
        return out
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedRouteIsServed() throws {
        let documented = try Self.operations()
        #expect(documented.count >= 20, "the document was read")
        let served = APIRoute.allCases.map { Operation(method: $0.method, path: $0.template, operationId: $0.rawValue, ownSecurity: $0.isPublic) }
        #expect(Set(served).subtracting(documented).sorted { $0.operationId < $1.operationId } == [], "served but not documented (or documented differently)")
        #expect(Set(documented).subtracting(served).sorted { $0.operationId < $1.operationId } == [], "documented but not served")
    }

    @Test func routesMatchTheirTemplatesOnly() {
        #expect(APIRoute.match(method: "GET", path: "/v1/conversations/c_1/messages")! == (.history, ["c_1"]))
        #expect(APIRoute.match(method: "POST", path: "/v1/conversations/c_1/messages")! == (.postMessage, ["c_1"]))
        #expect(APIRoute.match(method: "DELETE", path: "/v1/conversations/c_1/members/u_2")! == (.removeMember, ["c_1", "u_2"]))
        #expect(APIRoute.match(method: "GET", path: "/v1/users")!.route == .findUser)
        #expect(APIRoute.match(method: "POST", path: "/v1/users")!.route == .register)
        #expect(APIRoute.match(method: "GET", path: "/")!.route == .webClient)
        #expect(APIRoute.match(method: "GET", path: "/v1/conversations//messages") == nil, "an empty parameter is no parameter")
        #expect(APIRoute.match(method: "PUT", path: "/v1/me") == nil)
        #expect(APIRoute.match(method: "GET", path: "/v1/me/") == nil)
        #expect(APIRoute.match(method: "GET", path: "/v1/conversations/c_1/members/u_2") == nil)
    }
}
