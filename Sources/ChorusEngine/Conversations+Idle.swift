import ChorusCore
import Synchronization

/// A conversation as the node holds it: an actor while in use, only its state while idle.
enum ConversationSlot: Sendable {
    case live(ConversationActor)
    case cold(ColdConversation)

    var isLive: Bool { if case .live = self { true } else { false } }

    /// The conversation's state now (a live actor's under its lock).
    var core: ConversationCore {
        switch self {
        case .live(let actor): actor.snapshot
        case .cold(let cold): cold.core
        }
    }
}

/// An idle conversation's state, boxed: a slot stays one reference wide.
final class ColdConversation: Sendable {
    let core: ConversationCore
    init(_ core: ConversationCore) { self.core = core }
}

/// What one idle sweep did.
public struct IdleSweep: Sendable, Equatable {
    /// Conversations whose caches (recent messages, dedup index) were dropped.
    public var trimmed = 0
    /// Actors released: the conversation is only its state until the next lookup rebuilds it.
    public var released = 0
}

// Lock order: the map's (`actors`), then an actor's (`ConversationSlot.core`, `isQuiet`); nothing
// that holds an actor's lock takes the map's (replies given under it only write frames).
extension Conversations {
    /// The conversation's actor, rebuilt from its state if it was idle. Any thread, no hop.
    public nonisolated func conversation(_ id: String) throws(ChatError) -> ConversationActor {
        let context = self.context
        let found = actors.withLock { a -> ConversationActor? in
            switch a[id] {
            case .live(let actor)?: return actor
            case .cold(let cold)?:
                let actor = ConversationActor(core: cold.core, context: context)
                a[id] = .live(actor)
                live.add(1, ordering: .relaxed)
                return actor
            case nil: return nil
            }
        }
        guard let found else { throw absent(id) }
        warm.withLock { _ = $0.insert(id) }
        return found
    }

    /// The conversation's state, without rebuilding an idle one's actor.
    public nonisolated func core(_ id: String) throws(ChatError) -> ConversationCore {
        guard let core = actors.withLock({ $0[id]?.core }) else { throw absent(id) }
        return core
    }

    /// Why a conversation is not here: unknown, or (a request that reached a node which does not
    /// serve its key now: a replicated partition moving) unavailable, to retry.
    nonisolated func absent(_ id: String) -> ChatError {
        do throws(ChatError) { try placement.admit(conversation: id) } catch { return error }
        return .unknownConversation
    }

    /// Conversations with an actor now.
    public nonisolated var liveCount: Int { live.load(ordering: .relaxed) }

    /// Conversations this node holds.
    public nonisolated var count: Int { actors.withLock { $0.count } }

    /// Visits the live conversations (those looked up since they were last released): one idle for
    /// `idleMs` drops its caches, and its actor is released once nothing holds it (no send, read,
    /// history page or hand-over in flight). Run it periodically (the node does, every minute).
    public nonisolated func trimIdle(now: Int64, idleMs: Int64) async -> IdleSweep {
        var sweep = IdleSweep()
        for id in warm.withLock({ $0 }) {
            guard let dropped = await trim(id, now: now, idleMs: idleMs) else { continue }
            if dropped { sweep.trimmed += 1 }
            if release(id, now: now, idleMs: idleMs) { sweep.released += 1 }
        }
        return sweep
    }

    /// Trims one live conversation: nil if it is gone, cold already or busy; else whether caches
    /// were dropped. Holds the actor only while it runs, so `release` can see it unheld.
    private nonisolated func trim(_ id: String, now: Int64, idleMs: Int64) async -> Bool? {
        guard case .live(let actor)? = actors.withLock({ $0[id] }) else {
            warm.withLock { _ = $0.remove(id) }
            return nil
        }
        return await actor.trimIfIdle(now: now, idleMs: idleMs)
    }

    /// Replaces an idle actor by its state if the map holds its only reference: then no operation
    /// is in flight on it and none can start (lookups take the same lock), so no change is lost.
    private nonisolated func release(_ id: String, now: Int64, idleMs: Int64) -> Bool {
        actors.withLock { a in
            guard case .live(var actor)? = a[id] else { return false }
            a[id] = nil
            guard isKnownUniquelyReferenced(&actor), actor.isQuiet(now: now, idleMs: idleMs) else {
                a[id] = .live(actor)
                return false
            }
            a[id] = .cold(ColdConversation(actor.snapshot))
            live.subtract(1, ordering: .relaxed)
            // Under the map's lock: a lookup that rebuilds it re-warms it after this.
            warm.withLock { _ = $0.remove(id) }
            return true
        }
    }
}
