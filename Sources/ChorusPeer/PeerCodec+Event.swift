import ChorusCore

extension PeerCodec {
    static func write(_ event: PeerEvent, to w: inout ByteWriter) {
        switch event {
        case .sessionFrame(let proxy, let text, let bytes):
            w.write(PeerKind.sessionFrame.rawValue); w.write(proxy); w.write(text); w.writeLengthPrefixed(bytes)
        case .sessionPush(let proxy, let frames):
            w.write(PeerKind.sessionPush.rawValue); w.write(proxy)
            w.writeList(frames) { $0.writeLengthPrefixed($1) }
        case .sessionClose(let proxy, let code, let reason):
            w.write(PeerKind.sessionClose.rawValue); w.write(proxy); w.write(code); w.writeString(reason)
        case .userPush(let users, let frame):
            w.write(PeerKind.userPush.rawValue)
            w.writeList(users) { $0.writeString($1) }
            w.writeLengthPrefixed(frame)
        case .presence(let user, let status):
            w.write(PeerKind.presence.rawValue); w.writeString(user); w.write(status.online); w.write(status.lastSeen)
        }
    }

    static func readEvent(_ r: inout PeerReader) throws(PeerDecodingError) -> PeerEvent {
        let byte = try r.u8()
        switch PeerKind(rawValue: byte) {
        case .sessionFrame: return .sessionFrame(proxy: try r.u64(), text: try r.bool(), bytes: try r.bytes(PeerBounds.frame))
        case .sessionPush:
            let proxy = try r.u64()
            return .sessionPush(proxy: proxy, frames: try r.list(PeerBounds.framesPerPush) { (r: inout PeerReader) throws(PeerDecodingError) in try r.bytes(PeerBounds.frame) })
        case .sessionClose: return .sessionClose(proxy: try r.u64(), code: try r.u16(), reason: try r.string(PeerBounds.closeReason))
        case .userPush:
            let users = try r.list(PeerBounds.pushUsers) { (r: inout PeerReader) throws(PeerDecodingError) in try r.string(PeerBounds.id) }
            return .userPush(users: users, frame: try r.bytes(PeerBounds.frame))
        case .presence: return .presence(userId: try r.string(PeerBounds.id), PresenceStatus(online: try r.bool(), lastSeen: try r.i64()))
        default: throw .unknownKind(byte)
        }
    }
}

extension PeerEvent {
    var encodedSizeHint: Int {
        switch self {
        case .sessionFrame(_, _, let bytes): 16 + bytes.count
        case .sessionPush(_, let frames): frames.reduce(16) { $0 + $1.count + 4 }
        case .userPush(let users, let frame): 16 + frame.count + users.count * 16
        default: 48
        }
    }
}
