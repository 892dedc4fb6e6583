@testable import ChorusEngine
import Testing

@Suite struct PresenceCoreTests {
    final class Session {}

    @Test func onlineWhileAnySessionIsOpenOfflineAtOnceAfterTheLast() {
        var p = PresenceCore()
        let watcher = Session(), phone = Session(), laptop = Session()
        let w = ObjectIdentifier(watcher)
        #expect(p.watch(w, users: ["ann"], now: 5)?.map(\.1) == [.init(online: false, lastSeen: 0)])
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

    @Test func aSessionWatchesAtMostAThousandUsersOverAllItsWatchFrames() {
        var p = PresenceCore()
        let s = ObjectIdentifier(Session())
        #expect(p.watch(s, users: (0..<600).map { "u\($0)" }, now: 1)?.count == 600)
        // Watching some again counts once; past 1,000 in all, nothing is added.
        #expect(p.watch(s, users: (300..<1_000).map { "u\($0)" }, now: 1)?.count == 700)
        #expect(p.watch(s, users: ["u1000"], now: 1) == nil)
        #expect(p.opened("u1000", now: 2) == nil, "the refused watch added nothing")
        #expect(p.opened("u999", now: 2)?.watchers == [s])
        p.unwatchAll(s)
        #expect(p.watch(s, users: ["u1000"], now: 3)?.count == 1)
    }
}
