import ChorusCore
import ChorusEngine
import ChorusReengagement

/// What replay rebuilds on a node: the engine's state and the re-engagement outbox, each from the
/// records it owns. Pure.
struct NodeState {
    var engine = EngineState()
    var outbox = Outbox()

    /// Record kinds the outbox applies (`emailQueued`, `emailSent`, `emailFailed`, `unsubscribed`).
    static let emailKinds: ClosedRange<UInt16> = 15...18

    mutating func apply(kind: UInt16, payload: [UInt8], lsn: UInt64, inboxes: InboxDirectory) throws(EventDecodingError) {
        try engine.apply(kind: kind, payload: payload, lsn: lsn, inboxes: inboxes)
        if Self.emailKinds.contains(kind) { outbox.apply(try ChorusEvent.decode(kind: kind, payload: payload)) }
    }
}

/// A node's snapshot payload: sections, each owned by its module.
///
///     version 7 = 7 u8 | engine section length varint | `EngineSnapshot` (version 7) | `Outbox`
///
/// Versions 4 to 6 were the engine's payload with the outbox at its end; they are read (the
/// engine hands the tail over) so a node whose older segments are gone still restarts. Pure.
enum NodeSnapshot {
    static let version: UInt8 = 7

    static func encode(_ state: NodeState, inboxes: InboxDirectory) -> [UInt8] {
        let engine = EngineSnapshot.encode(state.engine, inboxes: inboxes)
        var w = ByteWriter(capacity: engine.count + 4096)
        w.write(version)
        w.writeLengthPrefixed(engine)
        state.outbox.encode(into: &w)
        return w.bytes
    }

    static func decode(_ payload: [UInt8]) throws(EngineSnapshotError) -> (NodeState, InboxDirectory) {
        guard let v = payload.first else { throw .malformed(.truncated(needed: 1, remaining: 0)) }
        var r = ByteReader(payload, offset: 1)
        let outboxBytes: [UInt8]
        var node = NodeState()
        let inboxes: InboxDirectory
        switch v {
        case 4...6:
            let legacy = try EngineSnapshot.decode(payload)
            (node.engine, inboxes, outboxBytes) = (legacy.state, legacy.inboxes, legacy.legacyTail)
        case version:
            let section: [UInt8]
            do { section = Array(try r.readLengthPrefixed(bound: payload.count)) } catch { throw .malformed(error) }
            let engine = try EngineSnapshot.decode(section)
            guard engine.legacyTail.isEmpty else { throw .invalid("an engine section of an older version inside a version-7 snapshot") }
            (node.engine, inboxes, outboxBytes) = (engine.state, engine.inboxes, Array(payload[r.offset...]))
        default:
            throw .unsupportedVersion(v)
        }
        var o = ByteReader(outboxBytes)
        do { node.outbox = try Outbox.decode(from: &o, bound: 1 << 31) } catch let e as ByteReaderError { throw .malformed(e) } catch {
            throw .invalid("outbox: \(error)")
        }
        guard o.isAtEnd else { throw .invalid("\(o.remaining) trailing bytes after the outbox") }
        return (node, inboxes)
    }
}
