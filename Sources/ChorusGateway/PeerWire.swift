import ChorusCore

/// Payload layouts of the gateway's peer messages (after the `PeerKind` byte). Pure.
enum PeerWire {
    static let maxFrames = 4096
    static let stringBound = 1 << 20

    /// `local`: answer from this node's own state only (a part of a cluster-wide list).
    static func http(_ r: APIRequest, local: Bool = false) -> [UInt8] {
        var w = ByteWriter(capacity: 128 + r.body.count)
        w.write(PeerKind.http.rawValue)
        w.write(local)
        w.writeString(r.method)
        w.writeString(r.uri)
        w.writeVarint(UInt64(r.headers.count))
        for h in r.headers {
            w.writeString(h.name)
            w.writeString(h.value)
        }
        w.writeLengthPrefixed(r.body)
        w.writeString(r.clientAddress)
        return w.bytes
    }

    static func readHTTP(_ r: inout ByteReader) throws(ByteReaderError) -> (request: APIRequest, local: Bool) {
        let local = try r.readBool()
        let method = try r.readString(bound: 16)
        let uri = try r.readString(bound: 16_384)
        let n = try r.readVarint()
        guard n <= 256 else { throw .lengthOverBound(length: n, bound: 256) }
        var headers: [(String, String)] = []
        for _ in 0..<n { headers.append((try r.readString(bound: 16_384), try r.readString(bound: 16_384))) }
        let body = Array(try r.readLengthPrefixed(bound: stringBound))
        let address = try r.readString(bound: 256)
        return (APIRequest(method: method, uri: uri, headers: headers, body: body, clientAddress: address), local)
    }

    static func response(_ a: APIResponse) -> [UInt8] {
        var w = ByteWriter(capacity: 64 + a.body.count)
        w.write(UInt16(a.status))
        w.writeVarint(UInt64(a.headers.count))
        for (name, value) in a.headers {
            w.writeString(name)
            w.writeString(value)
        }
        w.writeLengthPrefixed(a.body)
        return w.bytes
    }

    static func readResponse(_ r: inout ByteReader) throws(ByteReaderError) -> APIResponse {
        let status = Int(try r.readUInt16())
        let n = try r.readVarint()
        guard n <= 256 else { throw .lengthOverBound(length: n, bound: 256) }
        var headers: [(String, String)] = []
        for _ in 0..<n { headers.append((try r.readString(bound: 16_384), try r.readString(bound: 16_384))) }
        return APIResponse(status: status, headers: headers, body: Array(try r.readLengthPrefixed(bound: stringBound)))
    }

    static func user(_ u: UserRecord) -> [UInt8] {
        var w = ByteWriter(capacity: 96)
        w.writeString(u.userId); w.writeString(u.username); w.writeString(u.email); w.writeString(u.displayName); w.write(u.createdAt)
        return w.bytes
    }

    /// A user as peers see it: everything but the password hash.
    static func readUser(_ r: inout ByteReader) throws(ByteReaderError) -> UserRecord {
        UserRecord(
            userId: try r.readString(bound: 256), username: try r.readString(bound: 256), email: try r.readString(bound: 512),
            displayName: try r.readString(bound: 1024), passwordHash: "", createdAt: try r.readInt64())
    }

    static func sessionOpen(proxy: UInt64, token: String) -> [UInt8] {
        var w = ByteWriter(capacity: 96)
        w.write(PeerKind.sessionOpen.rawValue); w.write(proxy); w.writeString(token)
        return w.bytes
    }

    /// `text` false: a binary or other data frame (refused by the session's rules).
    static func sessionFrame(proxy: UInt64, text: Bool, _ bytes: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: 16 + bytes.count)
        w.write(PeerKind.sessionFrame.rawValue); w.write(proxy); w.write(text); w.write(contentsOf: bytes)
        return w.bytes
    }

    static func sessionPush(proxy: UInt64, _ frames: [[UInt8]]) -> [UInt8] {
        var size = 16
        for f in frames { size += f.count + 4 }
        var w = ByteWriter(capacity: size)
        w.write(PeerKind.sessionPush.rawValue); w.write(proxy); w.writeVarint(UInt64(frames.count))
        for f in frames { w.writeLengthPrefixed(f) }
        return w.bytes
    }

    static func readPush(_ r: inout ByteReader) throws(ByteReaderError) -> (proxy: UInt64, frames: [[UInt8]]) {
        let proxy = try r.readUInt64()
        let n = try r.readVarint()
        guard n <= UInt64(maxFrames) else { throw .lengthOverBound(length: n, bound: maxFrames) }
        var frames: [[UInt8]] = []
        for _ in 0..<n { frames.append(Array(try r.readLengthPrefixed(bound: stringBound))) }
        return (proxy, frames)
    }

    static func sessionClose(proxy: UInt64, code: UInt16, reason: String) -> [UInt8] {
        var w = ByteWriter(capacity: 32 + reason.utf8.count)
        w.write(PeerKind.sessionClose.rawValue); w.write(proxy); w.write(code); w.writeString(reason)
        return w.bytes
    }
}
