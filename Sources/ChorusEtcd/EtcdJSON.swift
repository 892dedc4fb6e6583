import Foundation

/// The JSON of etcd v3's gateway (grpc-gateway): bytes as base64, 64-bit integers as strings. Pure:
/// request bodies out, typed values in.
enum EtcdJSON {
    static func b64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
    static func b64(_ s: String) -> String { b64(Array(s.utf8)) }

    /// The key just past every key that starts with `prefix` (etcd's `range_end` for a prefix).
    static func prefixEnd(_ prefix: String) -> [UInt8] {
        var end = Array(prefix.utf8)
        while let last = end.last {
            if last < 0xFF {
                end[end.count - 1] = last + 1
                return end
            }
            end.removeLast()
        }
        return [0]  // every key
    }

    static func body(_ object: [String: Any]) -> [UInt8] {
        (try? JSONSerialization.data(withJSONObject: object)).map { [UInt8]($0) } ?? []
    }

    static func object(_ bytes: [UInt8]) throws(EtcdError) -> [String: Any] {
        guard let any = try? JSONSerialization.jsonObject(with: Data(bytes)), let o = any as? [String: Any] else {
            throw .malformed(String(decoding: bytes.prefix(200), as: UTF8.self))
        }
        if let error = o["error"] as? String ?? (o["error"] as? [String: Any])?["message"] as? String {
            throw .server(status: 200, message: error)
        }
        return o
    }

    static func int(_ any: Any?) -> Int64 {
        if let s = any as? String { return Int64(s) ?? 0 }
        if let n = any as? NSNumber { return n.int64Value }
        return 0
    }

    static func bytes(_ any: Any?) -> [UInt8] {
        guard let s = any as? String, let d = Data(base64Encoded: s) else { return [] }
        return [UInt8](d)
    }

    static func keyValue(_ any: Any?) -> EtcdKeyValue? {
        guard let o = any as? [String: Any] else { return nil }
        return EtcdKeyValue(
            key: bytes(o["key"]), value: bytes(o["value"]), createRevision: int(o["create_revision"]),
            modRevision: int(o["mod_revision"]), version: int(o["version"]), lease: int(o["lease"]))
    }

    static func revision(_ o: [String: Any]) -> Int64 { int((o["header"] as? [String: Any])?["revision"]) }

    static func range(_ o: [String: Any]) -> EtcdRange {
        EtcdRange(kvs: (o["kvs"] as? [Any] ?? []).compactMap(keyValue), revision: revision(o))
    }

    static func compare(_ c: EtcdCompare) -> [String: Any] {
        switch c {
        case .valueEquals(let key, let value):
            ["key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(value)]
        case .modRevisionEquals(let key, let revision):
            ["key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": String(revision)]
        case .versionEquals(let key, let version):
            ["key": b64(key), "target": "VERSION", "result": "EQUAL", "version": String(version)]
        }
    }

    static func operation(_ op: EtcdOperation) -> [String: Any] {
        switch op {
        case .put(let key, let value, let lease):
            var put: [String: Any] = ["key": b64(key), "value": b64(value)]
            if lease != 0 { put["lease"] = String(lease) }
            return ["request_put": put]
        case .get(let key): return ["request_range": ["key": b64(key)]]
        case .delete(let key): return ["request_delete_range": ["key": b64(key)]]
        }
    }

    static func txnResult(_ o: [String: Any]) -> EtcdTxnResult {
        var kvs: [EtcdKeyValue] = []
        for r in o["responses"] as? [[String: Any]] ?? [] {
            if let range = r["response_range"] as? [String: Any] { kvs += (range["kvs"] as? [Any] ?? []).compactMap(keyValue) }
        }
        return EtcdTxnResult(succeeded: o["succeeded"] as? Bool ?? false, revision: revision(o), kvs: kvs)
    }

    /// One message of a watch stream: its events, or why the watch ended (nil: keep reading).
    static func watchMessage(_ bytes: [UInt8]) throws(EtcdError) -> (events: [EtcdWatchEvent], revision: Int64, ended: String?) {
        let o = try object(bytes)
        guard let result = o["result"] as? [String: Any] else { throw .malformed("watch message without a result") }
        if result["canceled"] as? Bool == true {
            let compacted = int(result["compact_revision"])
            return ([], revision(result), compacted > 0 ? "compacted at \(compacted)" : (result["cancel_reason"] as? String ?? "canceled"))
        }
        let events: [EtcdWatchEvent] = (result["events"] as? [[String: Any]] ?? []).compactMap { e in
            guard let kv = keyValue(e["kv"]) else { return nil }
            return EtcdWatchEvent(kind: (e["type"] as? String) == "DELETE" ? .delete : .put, kv: kv)
        }
        return (events, revision(result), nil)
    }
}
