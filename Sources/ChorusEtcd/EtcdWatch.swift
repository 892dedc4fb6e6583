import NIOConcurrencyHelpers
import NIOCore

/// A watch on every key under a prefix, from a revision on, that reconnects (to any endpoint) from
/// the last revision it delivered, so no change is missed or delivered twice. Changes are handed
/// to `onEvents` in revision order, one call at a time.
public final class EtcdWatch: Sendable {
    private let task: NIOLockedValueBox<Task<Void, Never>?> = NIOLockedValueBox(nil)
    private let channel: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)

    /// Starts watching. `onEnd` is called once if etcd ends the watch for good (history compacted
    /// past the revision to resume from: the caller must read the range again and watch anew).
    public init(
        client: EtcdClient, prefix: String, fromRevision: Int64,
        onEvents: @escaping @Sendable ([EtcdWatchEvent]) -> Void,
        onEnd: @escaping @Sendable (EtcdError) -> Void = { _ in }
    ) {
        let next = NIOLockedValueBox(fromRevision)
        let channel = self.channel
        task.withLockedValue {
            $0 = Task {
                var endpointIndex = 0
                var failures = 0
                while !Task.isCancelled {
                    let endpoint = client.endpoints[endpointIndex % client.endpoints.count]
                    endpointIndex += 1
                    let heard = NIOLockedValueBox(false)
                    let request: [String: Any] = [
                        "create_request": [
                            "key": EtcdJSON.b64(prefix), "range_end": EtcdJSON.b64(EtcdJSON.prefixEnd(prefix)),
                            "start_revision": String(next.withLockedValue { $0 }),
                        ] as [String: Any]
                    ]
                    let ended = NIOLockedValueBox<String?>(nil)
                    _ = try? await EtcdHTTP.post(
                        group: client.group, endpoint: endpoint, path: "/v3/watch", body: EtcdJSON.body(request), timeout: client.timeout,
                        onLine: { line in
                            heard.withLockedValue { $0 = true }
                            guard let message = try? EtcdJSON.watchMessage(line) else { return }
                            if let why = message.ended {
                                ended.withLockedValue { $0 = why }
                                channel.withLockedValue { $0?.close(promise: nil) }
                                return
                            }
                            let fresh = message.events.filter { $0.kv.modRevision >= next.withLockedValue { $0 } }
                            guard !fresh.isEmpty else { return }
                            next.withLockedValue { $0 = fresh.map(\.kv.modRevision).max()! + 1 }
                            onEvents(fresh)
                        },
                        started: { ch in channel.withLockedValue { $0 = ch } })
                    if let why = ended.withLockedValue({ $0 }) {
                        onEnd(.watchEnded(why))
                        return
                    }
                    // Reconnect (the next endpoint) after a pause that grows while none answers.
                    failures = heard.withLockedValue { $0 } ? 0 : failures + 1
                    try? await Task.sleep(for: .milliseconds(min(50 * failures, 1_000)))
                }
            }
        }
    }

    /// Stops the watch (a message already being handed on may still arrive).
    public func cancel() {
        task.withLockedValue { $0?.cancel() }
        channel.withLockedValue { $0?.close(promise: nil) }
    }

    deinit { cancel() }
}
