import NIOConcurrencyHelpers
import NIOCore

/// A client of etcd v3's JSON gateway: leases, reads, transactions and watches, over plain HTTP.
///
/// Every call goes to the endpoint that answered last, then each other in turn; an endpoint that
/// cannot be reached is skipped, an error answered by one is returned. Each call has `timeout`.
public final class EtcdClient: Sendable {
    public let endpoints: [EtcdEndpoint]
    let group: any EventLoopGroup
    let timeout: TimeAmount
    private let preferred = NIOLockedValueBox(0)

    public init(endpoints: [EtcdEndpoint], group: any EventLoopGroup, timeout: TimeAmount = .seconds(1)) {
        precondition(!endpoints.isEmpty, "etcd needs an endpoint")
        self.endpoints = endpoints
        self.group = group
        self.timeout = timeout
    }

    func call(_ path: String, _ request: [String: Any]) async throws(EtcdError) -> [String: Any] {
        let body = EtcdJSON.body(request)
        let first = preferred.withLockedValue { $0 }
        var lastError = EtcdError.unreachable("no endpoint")
        for k in 0..<endpoints.count {
            let i = (first + k) % endpoints.count
            do throws(EtcdError) {
                let (status, answer) = try await EtcdHTTP.post(group: group, endpoint: endpoints[i], path: path, body: body, timeout: timeout)
                preferred.withLockedValue { $0 = i }
                guard status == 200 else {
                    let message = (try? EtcdJSON.object(answer))?["message"] as? String ?? String(decoding: answer.prefix(200), as: UTF8.self)
                    throw .server(status: status, message: message)
                }
                return try EtcdJSON.object(answer)
            } catch {
                guard case .unreachable = error else { throw error }
                lastError = error
            }
        }
        throw lastError
    }

    /// A new lease of `ttlSeconds`; keys put with it vanish when it lapses.
    public func grantLease(ttlSeconds: Int64) async throws(EtcdError) -> Int64 {
        let o = try await call("/v3/lease/grant", ["TTL": String(ttlSeconds)])
        let id = EtcdJSON.int(o["ID"])
        guard id != 0 else { throw .malformed("lease grant without an ID") }
        return id
    }

    /// Renews a lease; returns its TTL. Throws `leaseExpired` if etcd no longer has it.
    public func keepAlive(lease: Int64) async throws(EtcdError) -> Int64 {
        let o = try await call("/v3/lease/keepalive", ["ID": String(lease)])
        let ttl = EtcdJSON.int((o["result"] as? [String: Any])?["TTL"])
        guard ttl > 0 else { throw .leaseExpired(lease) }
        return ttl
    }

    /// Ends a lease at once (a clean shutdown: the node's partitions fail over without waiting).
    public func revoke(lease: Int64) async throws(EtcdError) {
        _ = try await call("/v3/lease/revoke", ["ID": String(lease)])
    }

    /// Puts a key; returns the store's revision after it.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) async throws(EtcdError) -> Int64 {
        var request: [String: Any] = ["key": EtcdJSON.b64(key), "value": EtcdJSON.b64(value)]
        if lease != 0 { request["lease"] = String(lease) }
        return EtcdJSON.revision(try await call("/v3/kv/put", request))
    }

    /// One key, or nil.
    public func get(_ key: String) async throws(EtcdError) -> EtcdKeyValue? {
        EtcdJSON.range(try await call("/v3/kv/range", ["key": EtcdJSON.b64(key)])).kvs.first
    }

    /// Every key under `prefix`, and the revision read at.
    public func range(prefix: String) async throws(EtcdError) -> EtcdRange {
        let request = ["key": EtcdJSON.b64(prefix), "range_end": EtcdJSON.b64(EtcdJSON.prefixEnd(prefix))]
        return EtcdJSON.range(try await call("/v3/kv/range", request))
    }

    public func delete(_ key: String) async throws(EtcdError) {
        _ = try await call("/v3/kv/deleterange", ["key": EtcdJSON.b64(key)])
    }

    /// If every compare holds, runs `success`, else `failure`; atomically.
    public func txn(_ compares: [EtcdCompare], success: [EtcdOperation], failure: [EtcdOperation] = []) async throws(EtcdError) -> EtcdTxnResult {
        let request: [String: Any] = [
            "compare": compares.map(EtcdJSON.compare),
            "success": success.map(EtcdJSON.operation),
            "failure": failure.map(EtcdJSON.operation),
        ]
        return EtcdJSON.txnResult(try await call("/v3/kv/txn", request))
    }
}
