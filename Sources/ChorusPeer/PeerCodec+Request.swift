import ChorusCluster
import ChorusCore
import ChorusReplication

extension PeerCodec {
    static func write(_ request: PeerRequest, to w: inout ByteWriter) {
        switch request {
        case .engine(let r): write(r, to: &w)
        case .session(let r): write(r, to: &w)
        case .forward(let r): write(r, to: &w)
        case .membership(let r): write(r, to: &w)
        case .replication(let r): write(r, to: &w)
        }
    }

    static func readRequest(_ r: inout PeerReader) throws(PeerDecodingError) -> PeerRequest {
        let byte = try r.u8()
        guard let kind = PeerKind(rawValue: byte) else { throw .unknownKind(byte) }
        switch kind {
        case .authenticate: return .engine(.authenticate(token: try r.string(PeerBounds.token)))
        case .send:
            return .engine(.send(PeerSend(
                conversationId: try r.string(PeerBounds.id), from: try r.string(PeerBounds.id), clientMsgId: try r.string(PeerBounds.clientMsgId),
                body: try r.string(PeerBounds.body), origin: try r.u64())))
        case .messages:
            return .engine(.messages(conversationId: try r.string(PeerBounds.id), seqs: try r.list(PeerBounds.seqsAsked) { (r: inout PeerReader) throws(PeerDecodingError) in try r.varint() }))
        case .direct: return .engine(.direct(creator: try r.string(PeerBounds.id), other: try r.string(PeerBounds.id)))
        case .read: return .engine(.read(conversationId: try r.string(PeerBounds.id), userId: try r.string(PeerBounds.id), upTo: try r.u64()))
        case .inboxAppend: return .engine(.inboxAppend(try r.list(PeerBounds.inboxItems, readInboxItem)))
        case .usersExist: return .engine(.usersExist(try r.list(PeerBounds.usersAsked) { (r: inout PeerReader) throws(PeerDecodingError) in try r.string(PeerBounds.id) }))
        case .sharing:
            return .engine(.sharing(
                userId: try r.string(PeerBounds.id),
                among: try r.list(PeerBounds.usersAsked) { (r: inout PeerReader) throws(PeerDecodingError) in try r.string(PeerBounds.id) }))
        case .inboxHigh:
            return .engine(.inboxHigh(try r.list(PeerBounds.highsAsked) { (r: inout PeerReader) throws(PeerDecodingError) in
                PeerInboxKey(userId: try r.string(PeerBounds.id), conversationId: try r.string(PeerBounds.id))
            }))
        case .receiptHigh:
            return .engine(.receiptHigh(try r.list(PeerBounds.highsAsked) { (r: inout PeerReader) throws(PeerDecodingError) in
                PeerReceiptKey(userId: try r.string(PeerBounds.id), conversationId: try r.string(PeerBounds.id), from: try r.string(PeerBounds.id), kind: try readReceiptKind(&r))
            }))
        case .sessionOpen: return .session(.open(proxy: try r.u64(), token: try r.string(PeerBounds.token)))
        case .presenceWatch:
            let watch = try r.bool()
            return .session(.presence(users: try r.list(PeerBounds.usersAsked) { (r: inout PeerReader) throws(PeerDecodingError) in try r.string(PeerBounds.id) }, watch: watch))
        case .typing: return .session(.typing(conversationId: try r.string(PeerBounds.id), userId: try r.string(PeerBounds.id)))
        case .sessionCount: return .session(.sessionCount(userId: try r.string(PeerBounds.id)))
        case .http: return .forward(.http(try readHTTP(&r)))
        case .info: return .forward(.info)
        case .membershipPrepare: return .membership(.prepare(try readMembership(&r)))
        case .membershipStatus: return .membership(.status(epoch: try r.u64()))
        case .membershipCommit: return .membership(.commit(try readMembership(&r)))
        case .membershipAbort: return .membership(.abort(try readMembership(&r)))
        case .handover:
            let epoch = try r.u64()
            return .membership(.handover(epoch: epoch, events: try r.list(PeerBounds.handoverEvents) { (r: inout PeerReader) throws(PeerDecodingError) in
                let kind = try r.u16()
                let payload = try r.bytes(PeerBounds.record)
                do { return try ChorusEvent.decode(kind: kind, payload: payload) } catch { throw .invalid("hand-over event of kind \(kind): \(error)") }
            }))
        case .replicaFence: return .replication(.fence(partition: try readPartition(&r), epoch: try r.u64()))
        case .replicaAppend: return .replication(try readAppend(&r))
        case .sessionFrame, .sessionPush, .sessionClose, .userPush, .presence:
            throw .unknownKind(byte)
        }
    }

    private static func write(_ request: EngineRequest, to w: inout ByteWriter) {
        switch request {
        case .authenticate(let token):
            w.write(PeerKind.authenticate.rawValue); w.writeString(token)
        case .send(let s):
            w.write(PeerKind.send.rawValue)
            w.writeString(s.conversationId); w.writeString(s.from); w.writeString(s.clientMsgId); w.writeString(s.body); w.write(s.origin)
        case .messages(let id, let seqs):
            w.write(PeerKind.messages.rawValue); w.writeString(id)
            w.writeList(seqs) { $0.writeVarint($1) }
        case .direct(let creator, let other):
            w.write(PeerKind.direct.rawValue); w.writeString(creator); w.writeString(other)
        case .read(let id, let user, let seq):
            w.write(PeerKind.read.rawValue); w.writeString(id); w.writeString(user); w.write(seq)
        case .inboxAppend(let items):
            w.write(PeerKind.inboxAppend.rawValue)
            w.writeList(items) { writeInboxItem($1, to: &$0) }
        case .usersExist(let ids):
            w.write(PeerKind.usersExist.rawValue)
            w.writeList(ids) { $0.writeString($1) }
        case .sharing(let user, let among):
            w.write(PeerKind.sharing.rawValue)
            w.writeString(user)
            w.writeList(among) { $0.writeString($1) }
        case .inboxHigh(let keys):
            w.write(PeerKind.inboxHigh.rawValue)
            w.writeList(keys) { w, k in w.writeString(k.userId); w.writeString(k.conversationId) }
        case .receiptHigh(let keys):
            w.write(PeerKind.receiptHigh.rawValue)
            w.writeList(keys) { w, k in w.writeString(k.userId); w.writeString(k.conversationId); w.writeString(k.from); w.write(k.kind.rawValue) }
        }
    }

    private static func write(_ request: SessionRequest, to w: inout ByteWriter) {
        switch request {
        case .open(let proxy, let token):
            w.write(PeerKind.sessionOpen.rawValue); w.write(proxy); w.writeString(token)
        case .presence(let users, let watch):
            w.write(PeerKind.presenceWatch.rawValue); w.write(watch)
            w.writeList(users) { $0.writeString($1) }
        case .typing(let id, let user):
            w.write(PeerKind.typing.rawValue); w.writeString(id); w.writeString(user)
        case .sessionCount(let user):
            w.write(PeerKind.sessionCount.rawValue); w.writeString(user)
        }
    }

    private static func write(_ request: ForwardRequest, to w: inout ByteWriter) {
        switch request {
        case .http(let h):
            w.write(PeerKind.http.rawValue)
            w.write(h.local); w.writeString(h.method); w.writeString(h.uri)
            writeHeaders(h.headers, to: &w)
            w.writeLengthPrefixed(h.body)
            w.writeString(h.clientAddress)
        case .info:
            w.write(PeerKind.info.rawValue)
        }
    }

    private static func write(_ request: MembershipRequest, to w: inout ByteWriter) {
        switch request {
        case .prepare(let m): w.write(PeerKind.membershipPrepare.rawValue); m.write(to: &w)
        case .status(let epoch): w.write(PeerKind.membershipStatus.rawValue); w.write(epoch)
        case .commit(let m): w.write(PeerKind.membershipCommit.rawValue); m.write(to: &w)
        case .abort(let m): w.write(PeerKind.membershipAbort.rawValue); m.write(to: &w)
        case .handover(let epoch, let events):
            w.write(PeerKind.handover.rawValue); w.write(epoch)
            w.writeList(events) { w, e in w.write(e.kind); w.writeLengthPrefixed(e.encode()) }
        }
    }

    // MARK: shared fields

    static func writeInboxItem(_ item: RemoteInboxItem, to w: inout ByteWriter) {
        w.writeString(item.userId)
        w.write(item.origin)
        switch item.entry {
        case .message(let m):
            w.write(UInt8(0))
            writeMessage(m, to: &w)
            w.write(item.previous)
        case .receipt(let c, let from, let kind, let seq):
            w.write(UInt8(1)); w.writeString(c); w.writeString(from); w.write(kind.rawValue); w.write(seq)
        }
    }

    static func readInboxItem(_ r: inout PeerReader) throws(PeerDecodingError) -> RemoteInboxItem {
        let user = try r.string(PeerBounds.id)
        let origin = try r.u64()
        switch try r.u8() {
        case 0:
            let message = try readMessage(&r)
            return RemoteInboxItem(userId: user, entry: .message(message), origin: origin, previous: try r.u64())
        case 1:
            let entry = RemoteInboxItem.Entry.receipt(
                conversationId: try r.string(PeerBounds.id), from: try r.string(PeerBounds.id), kind: try readReceiptKind(&r), seq: try r.u64())
            return RemoteInboxItem(userId: user, entry: entry, origin: origin)
        case let other: throw .invalid("inbox entry kind \(other)")
        }
    }

    static func readReceiptKind(_ r: inout PeerReader) throws(PeerDecodingError) -> ReceiptKind {
        let raw = try r.u8()
        guard let kind = ReceiptKind(rawValue: raw) else { throw .invalid("receipt kind \(raw)") }
        return kind
    }

    /// `ChorusEvent.messageAppended`'s record kind.
    static let messageAppendedKind: UInt16 = 8

    /// A message travels as its log encoding (`ChorusEvent.messageAppended`).
    static func writeMessage(_ m: MessageRecord, to w: inout ByteWriter) { w.writeLengthPrefixed(ChorusEvent.messageAppended(m).encode()) }

    static func readMessage(_ r: inout PeerReader) throws(PeerDecodingError) -> MessageRecord {
        let payload = try r.bytes(PeerBounds.record)
        let event: ChorusEvent
        do { event = try ChorusEvent.decode(kind: messageAppendedKind, payload: payload) } catch {
            throw .invalid("message record: \(error)")
        }
        guard case .messageAppended(let m) = event else { throw .invalid("not a message record") }
        return m
    }

    static func writeHeaders(_ headers: [ForwardedHTTP.Header], to w: inout ByteWriter) {
        w.writeList(headers) { w, h in w.writeString(h.name); w.writeString(h.value) }
    }

    static func readHeaders(_ r: inout PeerReader) throws(PeerDecodingError) -> [ForwardedHTTP.Header] {
        try r.list(PeerBounds.headers) { (r: inout PeerReader) throws(PeerDecodingError) in
            ForwardedHTTP.Header(name: try r.string(PeerBounds.headerText), value: try r.string(PeerBounds.headerText))
        }
    }

    private static func readHTTP(_ r: inout PeerReader) throws(PeerDecodingError) -> ForwardedHTTP {
        let local = try r.bool()
        let method = try r.string(PeerBounds.method)
        let uri = try r.string(PeerBounds.uri)
        let headers = try readHeaders(&r)
        let body = try r.bytes(PeerBounds.body)
        return ForwardedHTTP(method: method, uri: uri, headers: headers, body: body, clientAddress: try r.string(PeerBounds.address), local: local)
    }

    private static func readMembership(_ r: inout PeerReader) throws(PeerDecodingError) -> ClusterMembership {
        try r.wrap { (b: inout ByteReader) throws(ByteReaderError) in try ClusterMembership.read(from: &b) }
    }
}

extension PeerRequest {
    /// Bytes to reserve before encoding (exact for the large fields, a guess for the rest).
    var encodedSizeHint: Int {
        switch self {
        case .engine(.send(let s)): 64 + s.body.utf8.count + s.clientMsgId.utf8.count
        case .engine(.inboxAppend(let items)): 16 + items.count * 128
        case .forward(.http(let h)): 128 + h.body.count + h.uri.utf8.count
        case .membership(.handover(_, let events)): 16 + events.count * 96
        case .replication(.append(_, _, let records)): 64 + records.reduce(0) { $0 + 12 + $1.payload.count }
        default: 64
        }
    }
}
