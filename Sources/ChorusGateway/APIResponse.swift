import ChorusCore
import Foundation

/// An HTTP response: status, extra headers, body bytes.
public struct APIResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON body from a dictionary of JSON-compatible values.
    public static func json(_ status: Int, _ object: [String: Any], headers: [(String, String)] = []) -> APIResponse {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8)
        return APIResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")] + headers, body: [UInt8](data))
    }

    /// `{"error":{"code","message"}}` with the status PROTOCOL.md gives the code.
    public static func error(_ e: ChatError) -> APIResponse {
        var headers: [(String, String)] = []
        switch e {
        case .rateLimited(let ms): headers.append(("Retry-After", String(max(1, (ms + 999) / 1000))))
        // Overload, an owner down or a log that cannot take the change: worth a retry soon.
        case .unavailable: headers.append(("Retry-After", "1"))
        default: break
        }
        return .json(e.httpStatus, ["error": ["code": e.code, "message": e.message]], headers: headers)
    }

    public static func error(_ status: Int, code: String, message: String) -> APIResponse {
        .json(status, ["error": ["code": code, "message": message]])
    }
}
