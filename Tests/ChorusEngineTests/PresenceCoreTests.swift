@testable import ChorusEngine
import Testing

@Suite struct PresenceCoreTests {
    final class Session {}

    @Test func onlineWhileAnySessionIsOpenOfflineAtOnceAfterTheLast() {
        var p = PresenceCore()
        let watcher = Session(), phone = Session(), laptop = Session()
        let w = ObjectIdentifier(watcher)
        #expect(p.watch(w, users: ["ann"], now: 5).map(\.1) == [.init(online: false, lastSeen: 0)])
        #expect(p.opened("ann", now: 10) == .init(userId: "ann", status: .init(online: true, lastSeen: 10), watchers: [w]))
        #expect(p.opened("ann", now: 11) == nil, "a second device changes nothing")
        #expect(p.closed("ann", session: ObjectIdentifier(phone), now: 20) == nil)
        #expect(p.closed("ann", session: ObjectIdentifier(laptop), now: 30) == .init(userId: "ann", status: .init(online: false, lastSeen: 30), watchers: [w]))
        #expect(p.status("ann", now: 40) == .init(online: false, lastSeen: 30))
    }

    @Test func noFanOutWithoutWatchersAndWatchingEndsWithTheSession() {
        var p = PresenceCore()
        let s = Session()
        #expect(p.opened("bob", now: 1) == nil, "nobody watches bob: lazy, no fan-out")
        _ = p.watch(ObjectIdentifier(s), users: ["bob", "cid"], now: 2)
        #expect(p.closed("zed", session: ObjectIdentifier(s), now: 3) == nil)
        #expect(p.closed("bob", session: ObjectIdentifier(Session()), now: 4) == nil, "the watcher's session closed: no one to tell")
    }
}
