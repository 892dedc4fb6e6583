import ChorusCore
import Foundation

/// An HTTP request as the router sees it: already framed and bounded by the NIO handler.
public struct APIRequest: Sendable {
    public var method: String
    /// As the client sent it (path and query), for forwarding to another node.
    public var uri: String
    /// Path without the query string, percent-decoding not applied.
    public var path: String
    public var query: [String: String]
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The peer's IP address (for login rate limits).
    public var clientAddress: String

    public init(method: String, uri: String, headers: [(String, String)], body: [UInt8], clientAddress: String) {
        self.method = method
        self.uri = uri
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts.first ?? "/")
        query = parts.count > 1 ? Self.parseQuery(String(parts[1])) : [:]
        self.headers = headers.map { (name: $0.0, value: $0.1) }
        self.body = body
        self.clientAddress = clientAddress
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// The bearer token from `Authorization`, if any.
    public var bearerToken: String? {
        guard let auth = header("Authorization"), auth.lowercased().hasPrefix("bearer ") else { return nil }
        return String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    static func parseQuery(_ q: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in q.split(separator: "&") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(kv[0]).removingPercentEncoding ?? String(kv[0])
            let value = kv.count > 1 ? (String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "") : ""
            if out[key] == nil { out[key] = value }
        }
        return out
    }

    /// The body as a JSON object, or `bad_request` saying why not.
    public func jsonObject() throws(ChatError) -> JSONObject {
        guard !body.isEmpty else { throw .badRequest("request body must be a JSON object") }
        guard let value = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]),
            let object = value as? [String: Any]
        else { throw .badRequest("request body is not a JSON object") }
        return JSONObject(object)
    }
}

extension ChatError {
    /// The HTTP status of each code (PROTOCOL.md section 2).
    public var httpStatus: Int {
        switch self {
        case .badRequest, .groupTooLarge, .emptyBody, .bodyTooLarge: 400
        case .unauthorized, .invalidCredentials: 401
        case .notMember, .notOwner: 403
        case .unknownUser, .unknownConversation: 404
        case .usernameTaken: 409
        case .rateLimited: 429
        case .unavailable: 503
        }
    }
}
