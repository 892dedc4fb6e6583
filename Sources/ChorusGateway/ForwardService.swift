import ChorusCore
import ChorusPeer
import Synchronization

/// Answers `ForwardRequest`s: HTTP requests other nodes forward to this one (run by the router as
/// if a client had sent them here), and this node's client-facing address.
public final class ForwardService: ForwardRequestHandler {
    let router: APIRouter
    /// Set once the gateway listens (empty before).
    public let httpAddress = Mutex("")

    public init(router: APIRouter) { self.router = router }

    public func handle(_ request: ForwardRequest, from peer: String, reply: @escaping PeerReplyHandler) {
        switch request {
        case .http(let h):
            Task { [router] in
                let response = await router.handle(APIRequest(h), forwarded: true, localOnly: h.local)
                reply(.success(.http(response.forwarded)))
            }
        case .info:
            reply(.success(.info(httpAddress: httpAddress.withLock { $0 })))
        }
    }
}
