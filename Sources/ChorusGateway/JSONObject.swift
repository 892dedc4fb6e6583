import ChorusCore
import Foundation

/// Typed access to a decoded JSON object; every miss names the field (PROTOCOL.md section 1).
public struct JSONObject: @unchecked Sendable {
    let values: [String: Any]

    init(_ values: [String: Any]) { self.values = values }

    public func string(_ field: String) throws(ChatError) -> String {
        guard let raw = values[field] else { throw .badRequest("missing field '\(field)'") }
        guard let s = raw as? String else { throw .badRequest("field '\(field)' must be a string") }
        return s
    }

    public func optionalString(_ field: String) throws(ChatError) -> String? {
        guard let raw = values[field], !(raw is NSNull) else { return nil }
        guard let s = raw as? String else { throw .badRequest("field '\(field)' must be a string") }
        return s
    }

    public func stringArray(_ field: String) throws(ChatError) -> [String] {
        guard let raw = values[field] else { throw .badRequest("missing field '\(field)'") }
        guard let a = raw as? [Any], let strings = a as? [String] else { throw .badRequest("field '\(field)' must be an array of strings") }
        return strings
    }
}
