import ChorusCore

/// Generates realistic chat-message log records for tests and benchmarks: usernames from a pool,
/// direct-conversation ids, sequence numbers, timestamps, random client message ids (a UUID's 16
/// bytes) and bodies of English words of varying length, in a compact binary layout like the
/// engine's (no JSON). Deterministic per seed.
public struct ChatRecordGenerator: Sendable {
    public static let kind: UInt16 = 0x0101

    private var rng: UInt64
    private var ts: UInt64 = 1_795_000_000_000
    private var seq: UInt64 = 0
    private let users: [String]

    public init(seed: UInt64 = 42, userCount: Int = 1000) {
        rng = seed | 1
        var pool: [String] = []
        var r = seed ^ 0xA5A5
        for i in 0..<userCount {
            r = Self.step(r)
            let name = Self.names[Int(r % UInt64(Self.names.count))]
            pool.append("\(name)\(i % 97 == 0 ? "" : String(Int(r >> 20) % 1000))")
        }
        users = pool
    }

    /// The next record's payload, about `targetBytes` long on average (bodies vary from a few bytes
    /// to several times the average).
    public mutating func next(targetBytes: Int = 200) -> [UInt8] {
        seq += 1
        ts += next(upTo: 3000)
        let from = users[Int(next(upTo: UInt64(users.count)))]
        let to = users[Int(next(upTo: UInt64(users.count)))]
        var w = ByteWriter(capacity: targetBytes + 64)
        w.write(UInt8(1))  // encoding version
        w.writeString(from < to ? "dm:\(from):\(to)" : "dm:\(to):\(from)")
        w.writeVarint(seq)
        // The message id is derived from (conversation, seq) and not stored.
        w.writeString(from)
        w.write(ts)
        w.write(contentsOf: randomBytes(16))  // client message id (a UUID's bytes)
        let bodyTarget = max(4, targetBytes - w.count)
        // Body length varies: mostly short, sometimes long.
        let length = Int(next(upTo: UInt64(bodyTarget * 2))) + 1
        var body = ""
        while body.utf8.count < length {
            if !body.isEmpty { body += next(upTo: 12) == 0 ? ". " : " " }
            body += Self.words[Int(zipf())]
        }
        w.writeString(body)
        return w.bytes
    }

    private static func step(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private mutating func next(upTo n: UInt64) -> UInt64 {
        rng = Self.step(rng)
        return rng % max(n, 1)
    }

    private mutating func randomBytes(_ n: Int) -> [UInt8] {
        (0..<n).map { _ in UInt8(truncatingIfNeeded: next(upTo: 256)) }
    }

    /// Word index with a skew towards common words (roughly Zipfian).
    private mutating func zipf() -> UInt64 {
        let u = Double(next(upTo: 1 << 30)) / Double(1 << 30)
        return UInt64(Double(Self.words.count) * u * u * u) % UInt64(Self.words.count)
    }

    static let names = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
        "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yusuf", "zoe", "amara", "bilal",
        "chen", "dmitri", "elif", "fatima", "goran", "hana", "ines", "jonas", "kenji", "lena", "mateo", "noor",
    ]

    static let words = """
        the i you to a and it is that of in for me we on my have be this not so just are do at with but \
        what can was all if no your yes ok will get know like up out about there now think how one go see \
        good time when they lol what's tomorrow today meeting call later thanks thank sounds great sure \
        maybe let's meet lunch dinner coffee work home back soon morning night weekend friday monday send \
        file link check please sorry late running minutes hour busy free right need want new message chat \
        group team project deadline review code deploy release bug fix test build server down up again \
        love haha nice cool awesome perfect done working on it looking into will do got it see you then \
        where are you here there waiting outside train bus car traffic almost arrived leaving now call me \
        can't talk in a meeting text you later did you see the news game last night watch movie weekend \
        plans birthday party gift cake bring anything should we order pizza sushi tacos burgers vegan
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
}
