/// Every HTTP route a node answers, as `docs/openapi.yaml` documents it (`OpenAPIDocumentTests`
/// fails when the two differ). The router dispatches only through `match`, so a route served is a
/// route listed here. Pure.
public enum APIRoute: String, CaseIterable, Sendable {
    case webClient, webAsset
    case healthz, readyz, metrics
    case cluster, changeMembership
    case unsubscribePage, unsubscribe
    case register, login, logout, logoutEverywhere, me, findUser, presence, webSocket
    case createConversation, listConversations, getConversation, addMember, removeMember, history, postMessage

    public var method: String {
        switch self {
        case .changeMembership, .unsubscribe, .register, .login, .createConversation, .addMember, .postMessage: "POST"
        case .logout, .logoutEverywhere, .removeMember: "DELETE"
        default: "GET"
        }
    }

    /// The path, with `{name}` for each path parameter (one whole segment).
    public var template: String {
        switch self {
        case .webClient: "/"
        case .webAsset: "/app/{file}"
        case .healthz: "/healthz"
        case .readyz: "/readyz"
        case .metrics: "/metrics"
        case .cluster: "/v1/cluster"
        case .changeMembership: "/v1/cluster/members"
        case .unsubscribePage, .unsubscribe: "/v1/unsubscribe"
        case .register: "/v1/users"
        case .findUser: "/v1/users"
        case .login, .logoutEverywhere: "/v1/sessions"
        case .logout: "/v1/sessions/current"
        case .me: "/v1/me"
        case .presence: "/v1/presence"
        case .webSocket: "/v1/ws"
        case .createConversation, .listConversations: "/v1/conversations"
        case .getConversation: "/v1/conversations/{conversationId}"
        case .addMember: "/v1/conversations/{conversationId}/members"
        case .removeMember: "/v1/conversations/{conversationId}/members/{userId}"
        case .history, .postMessage: "/v1/conversations/{conversationId}/messages"
        }
    }

    /// Whether the route answers without a bearer token (PROTOCOL.md section 1). `webSocket` takes
    /// its token in the upgrade request (header or `?token=`).
    public var isPublic: Bool {
        switch self {
        case .webClient, .webAsset, .healthz, .readyz, .metrics, .cluster, .changeMembership, .unsubscribePage, .unsubscribe, .register, .login,
            .webSocket:
            true
        default: false
        }
    }

    /// Each route's template split into segments once, not per request.
    private static let patterns: [(route: APIRoute, segments: [Substring])] = allCases.map {
        ($0, Array($0.template.split(separator: "/", omittingEmptySubsequences: false).dropFirst()))
    }

    /// The route `method` and `path` (no query) name, and its path parameters in template order.
    public static func match(method: String, path: String) -> (route: APIRoute, parameters: [String])? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        for (route, pattern) in patterns where route.method == method && pattern.count == segments.count {
            var parameters: [String] = []
            var matches = true
            for (p, s) in zip(pattern, segments) {
                if p.hasPrefix("{") {
                    guard !s.isEmpty else { matches = false; break }
                    parameters.append(String(s))
                } else if p != s {
                    matches = false
                    break
                }
            }
            if matches { return (route, parameters) }
        }
        return nil
    }
}
