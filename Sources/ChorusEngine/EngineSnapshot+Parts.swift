import ChorusCore

extension AccountsState {
    func encode(into w: inout ByteWriter) {
        w.writeVarint(UInt64(records.count))
        for (u, lastLogin) in zip(records, lastLogins) {
            w.writeString(u.userId); w.writeString(u.username); w.writeString(u.email); w.writeString(u.displayName)
            w.writeString(u.passwordHash); w.write(u.createdAt)
            w.write(lastLogin)
        }
        w.writeVarint(UInt64(tokens.count))
        for (hash, t) in tokens.sorted(by: { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }) {
            w.writeLengthPrefixed(hash.bytes); w.writeVarint(UInt64(t.user)); w.write(t.expiresAt)
        }
    }

    static func decode(from r: inout ByteReader) throws -> AccountsState {
        var a = AccountsState()
        let n = try r.readVarint()
        guard n < UInt64(Int32.max) else { throw EngineSnapshotError.invalid("\(n) users") }
        func s() throws(ByteReaderError) -> String { try r.readString(bound: EngineSnapshot.stringBound) }
        for _ in 0..<n {
            let u = UserRecord(
                userId: try s(), username: try s(), email: try s(), displayName: try s(), passwordHash: try s(),
                createdAt: try r.readInt64())
            a.put(u, lastLogin: try r.readInt64())
        }
        let t = try r.readVarint()
        guard t <= UInt64(EngineSnapshot.countBound) else { throw EngineSnapshotError.invalid("\(t) tokens") }
        for _ in 0..<t {
            let hash = TokenHash(Array(try r.readLengthPrefixed(bound: 32)))
            let user = try r.readVarint()
            guard user < UInt64(a.records.count) else { throw EngineSnapshotError.invalid("token of user #\(user) of \(a.records.count)") }
            a.tokens[hash] = TokenGrant(user: Int32(user), expiresAt: try r.readInt64())
        }
        return a
    }
}

extension ConversationCore {
    /// Durable state only: nothing is in flight in replayed state, and the dedup index is rebuilt
    /// from the hashes on the first send.
    func encode(into w: inout ByteWriter) {
        w.writeString(id); w.write(kind.rawValue); w.writeString(title)
        w.writeVarint(UInt64(members.count))
        for m in members { w.writeString(m) }
        w.writeVarint(lastSeq); w.write(lastActivity)
        switch lastMessageSource {
        case .none: w.write(UInt8(0))
        case .record(let m):
            w.write(UInt8(1)); w.writeLengthPrefixed(ChorusEvent.messageAppended(m).encode())
        case .payload(let p):
            w.write(UInt8(1)); w.writeLengthPrefixed(p)
        }
        w.writeVarint(UInt64(readSeq.count))
        for (user, seq) in readSeq.sorted(by: { $0.key < $1.key }) { w.writeString(user); w.writeVarint(seq) }
        lsnIndex.blocks.encode(into: &w)
        w.writeVarint(clientIdHashBase)
        w.writeArray(clientIdHashBySeq)
    }

    /// `version` 4 kept a hash for every message (no base); the older ones are dropped on reading.
    /// Versions 4 and 5 wrote the LSN index as 8-byte entries; 6 writes its coded blocks.
    static func decode(from r: inout ByteReader, version: UInt8) throws -> ConversationCore {
        func s() throws(ByteReaderError) -> String { try r.readString(bound: EngineSnapshot.stringBound) }
        let id = try s()
        let rawKind = try r.readUInt8()
        guard let kind = ConversationKind(rawValue: rawKind) else { throw EngineSnapshotError.invalid("conversation kind \(rawKind)") }
        let title = try s()
        let n = try r.readVarint()
        guard n <= 1_000_000 else { throw EngineSnapshotError.invalid("\(n) members") }
        var members: [String] = []
        for _ in 0..<n { members.append(try s()) }
        var core = ConversationCore(id: id, kind: kind, title: title, members: members, createdAt: 0)
        core.lastSeq = try r.readVarint()
        core.reservedSeq = core.lastSeq
        core.membershipSeq = core.lastSeq  // not in the snapshot: who was a member before is not known
        core.lastActivity = try r.readInt64()
        if try r.readUInt8() == 1 {
            core.lastMessageSource = .payload(Array(try r.readLengthPrefixed(bound: 1 << 20)))
        }
        let reads = try r.readVarint()
        guard reads <= n else { throw EngineSnapshotError.invalid("\(reads) read cursors for \(n) members") }
        for _ in 0..<reads { core.raiseReadCursor(try s(), to: try r.readVarint()) }
        if version >= 6 {
            let p = try VarintBlocks.readParts(from: &r, bound: EngineSnapshot.countBound)
            guard let index = LSNIndex(bytes: p.bytes, blockStarts: p.blockStarts, count: p.count) else {
                throw EngineSnapshotError.invalid("conversation \(id): a malformed LSN index")
            }
            core.lsnIndex = index
        } else {
            core.lsnIndex = LSNIndex(try r.readArray(of: UInt64.self, bound: EngineSnapshot.countBound))
        }
        core.clientIdHashBase = version >= 5 ? try r.readVarint() : 0
        core.clientIdHashBySeq = try r.readArray(of: UInt64.self, bound: EngineSnapshot.countBound)
        guard core.lsnIndex.count == Int(core.lastSeq), core.clientIdHashBase <= core.lastSeq,
            UInt64(core.clientIdHashBySeq.count) == core.lastSeq - core.clientIdHashBase
        else {
            throw EngineSnapshotError.invalid(
                "conversation \(id): \(core.lsnIndex.count) index entries and \(core.clientIdHashBySeq.count) hashes after seq \(core.clientIdHashBase) for \(core.lastSeq) messages")
        }
        core.trimHashes()
        return core
    }
}
