import ChorusCore
@testable import ChorusEngine
import Testing

/// Whose presence a user may see (PROTOCOL.md section 6): itself and those who share a
/// conversation with it; leaving the conversation ends it.
@Suite struct PresenceVisibilityTests {
    @Test func onlyTheViewerAndThoseWhoShareAConversation() async throws {
        let s = EngineReplayTests.Setup()
        let a = try await s.user("ann"), b = try await s.user("bea"), c = try await s.user("cid"), d = try await s.user("dan")
        _ = try await s.conversations.create(by: a, members: [b], title: nil)
        let (group, _) = try await s.conversations.create(by: c, members: [a, d], title: "g")
        #expect(await s.conversations.visible(to: a, among: [a, b, c, d, "nobody"]) == [a, b, c, d])
        #expect(await s.conversations.visible(to: b, among: [a, c, d]) == [a])
        #expect(await s.conversations.sharing(b, among: [c, d]) == [])
        _ = try await s.conversations.changeMember(group.id, userId: a, add: false, by: a)
        #expect(await s.conversations.visible(to: a, among: [b, c, d]) == [b])
    }
}
