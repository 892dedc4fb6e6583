import ChorusCore

/// Why a snapshot payload could not be restored (the log then falls back to an older one or fails).
public enum EngineSnapshotError: Error, Equatable, Sendable {
    case unsupportedVersion(UInt8)
    case malformed(ByteReaderError)
    case invalid(String)
}

/// The engine's replayed state (accounts, conversations, every inbox) as one snapshot payload, so a
/// restart loads it and replays only the log after it. Pure. The big arrays (LSN index, clientMsgId
/// hashes, inbox entries) are written as raw blocks, so loading is mostly copying.
public enum EngineSnapshot {
    /// 2: tokens name their user by position. (1, from before, is declined: the log is replayed.)
    /// 3: the delivered-receipt ledger follows the inboxes. 4: then the re-engagement outbox.
    /// 5: a conversation writes the seq its kept clientMsgId hashes start after, then those (the
    /// dedup window's); a version-4 snapshot, with every message's hash, is read and trimmed.
    /// 6: LSN indexes and inbox entries as their coded blocks (`VarintBlocks`); 4 and 5, with 8- and
    /// 16-byte entries, are read and coded. 7: the engine's part only; the outbox that 4 to 6 carry
    /// at the end is a section of the node's composite snapshot (`legacyTail` hands it over).
    public static let version: UInt8 = 7
    static let stringBound = 16_384
    static let countBound = 1 << 31

    public static func encode(_ state: EngineState, inboxes: InboxDirectory) -> [UInt8] {
        var w = ByteWriter(capacity: 1 << 20)
        w.write(version)
        state.accounts.encode(into: &w)
        w.writeVarint(UInt64(state.conversations.count))
        for core in state.conversations.values.sorted(by: { $0.id < $1.id }) { core.encode(into: &w) }
        let symbols = inboxes.symbols.strings
        w.writeVarint(UInt64(symbols.count))
        for s in symbols { w.writeString(s) }
        let all = inboxes.all.sorted { $0.userId < $1.userId }
        w.writeVarint(UInt64(all.count))
        for (userId, inbox) in all {
            let (entries, receivedUpTo) = inbox.snapshotState
            w.writeString(userId)
            w.writeVarint(receivedUpTo)
            entries.blocks.encode(into: &w)
        }
        state.deliveredSent.encode(into: &w)
        return w.bytes
    }

    /// One inbox's entries; every symbol number they hold must name a symbol (a bad one would trap
    /// later, on a live read).
    private static func readEntries(_ r: inout ByteReader, version: UInt8, symbols: UInt32, userId: String) throws -> InboxEntries {
        guard version >= 6 else {
            let entries = try r.readArray(of: PackedInboxEntry.self, bound: countBound)
            for e in entries where e.conversation >= symbols || (e.receipt & 0x7FFF_FFFF) > symbols {
                throw EngineSnapshotError.invalid("inbox of \(userId) names symbol \(max(e.conversation, e.receipt & 0x7FFF_FFFF))")
            }
            return InboxEntries(entries)
        }
        let p = try VarintBlocks.readParts(from: &r, bound: countBound)
        guard let entries = InboxEntries(bytes: p.bytes, blockStarts: p.blockStarts, count: p.count, symbols: symbols) else {
            throw EngineSnapshotError.invalid("inbox of \(userId): malformed entries or an unknown symbol")
        }
        return entries
    }

    /// The state and inboxes of a payload of any version read; `legacyTail` is what versions 4 to 6
    /// carry after the engine's part (the re-engagement outbox), empty for version 7.
    public static func decode(_ payload: [UInt8]) throws(EngineSnapshotError) -> (state: EngineState, inboxes: InboxDirectory, legacyTail: [UInt8]) {
        var r = ByteReader(payload)
        do {
            let v = try r.readUInt8()
            // Version 4 keeps every message's clientMsgId hash (read, then trimmed); 4 and 5 keep
            // entries uncoded (read, then coded).
            guard (4...version).contains(v) else { throw EngineSnapshotError.unsupportedVersion(v) }
            var state = EngineState()
            state.accounts = try AccountsState.decode(from: &r)
            let conversations = try r.readVarint()
            guard conversations <= UInt64(countBound) else { throw EngineSnapshotError.invalid("\(conversations) conversations") }
            for _ in 0..<conversations {
                let core = try ConversationCore.decode(from: &r, version: v)
                state.restore(core)
            }
            let symbolCount = try r.readVarint()
            guard symbolCount <= UInt64(countBound) else { throw EngineSnapshotError.invalid("\(symbolCount) symbols") }
            var strings: [String] = []
            strings.reserveCapacity(Int(symbolCount))
            for _ in 0..<symbolCount { strings.append(try r.readString(bound: stringBound)) }
            let inboxes = InboxDirectory(symbols: SymbolTable(strings: strings))
            let inboxCount = try r.readVarint()
            guard inboxCount <= UInt64(countBound) else { throw EngineSnapshotError.invalid("\(inboxCount) inboxes") }
            for _ in 0..<inboxCount {
                let userId = try r.readString(bound: stringBound)
                let receivedUpTo = try r.readVarint()
                let entries = try readEntries(&r, version: v, symbols: UInt32(strings.count), userId: userId)
                guard receivedUpTo <= UInt64(entries.count) else { throw EngineSnapshotError.invalid("inbox of \(userId) received past its end") }
                inboxes.inbox(userId).restore(entries: entries, receivedUpTo: receivedUpTo)
            }
            state.deliveredSent = try DeliveredLedger.decode(from: &r, bound: countBound)
            if v < 7 { return (state, inboxes, Array(r.bytes[r.offset...])) }
            guard r.isAtEnd else { throw EngineSnapshotError.invalid("\(r.remaining) trailing bytes") }
            return (state, inboxes, [])
        } catch let e as EngineSnapshotError {
            throw e
        } catch let e as ByteReaderError {
            throw .malformed(e)
        } catch {
            throw .invalid("\(error)")
        }
    }
}

extension EngineState {
    /// Registers a restored conversation and everything derived from its membership.
    mutating func restore(_ core: ConversationCore) {
        conversations[core.id] = core
        if core.kind == .direct, core.members.count == 2 { directPairs[Self.pairKey(core.members[0], core.members[1])] = core.id }
        for m in core.members { userConversations[m, default: []].insert(core.id) }
    }
}
