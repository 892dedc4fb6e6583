import ChorusPeer

extension APIRequest {
    /// This request as another node runs it; `local`: answer from that node's own state only.
    func forwarded(local: Bool) -> ForwardedHTTP {
        ForwardedHTTP(
            method: method, uri: uri, headers: headers.map { .init(name: $0.name, value: $0.value) }, body: body, clientAddress: clientAddress,
            local: local)
    }

    init(_ f: ForwardedHTTP) {
        self.init(method: f.method, uri: f.uri, headers: f.headers.map { ($0.name, $0.value) }, body: f.body, clientAddress: f.clientAddress)
    }
}

extension APIResponse {
    var forwarded: ForwardedResponse { ForwardedResponse(status: status, headers: headers.map { .init(name: $0.0, value: $0.1) }, body: body) }

    init(_ f: ForwardedResponse) { self.init(status: f.status, headers: f.headers.map { ($0.name, $0.value) }, body: f.body) }
}
