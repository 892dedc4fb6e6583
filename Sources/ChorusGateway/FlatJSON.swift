/// A strict, fast reader for flat JSON objects (RFC 8259): the top-level members of an object, with
/// strings, integers and arrays of them decoded and anything else validated and skipped. Client frames
/// and server frames are such objects; the generic Foundation parser cost most of a send's CPU.
/// Pure. Returns nil for anything that is not exactly one well-formed object (trailing bytes, bad
/// escapes, raw control characters, nesting deeper than `maxDepth`).
public enum FlatJSON {
    // Not `indirect`: the one recursive case holds an Array, already a reference, and an indirect
    // case would box every value (an allocation per member of every frame).
    public enum Value: Equatable, Sendable {
        case string(String)
        case integer(Int64)
        case array([Value])
        /// A valid value this reader does not decode (object, fraction, true/false/null, huge integer).
        case other
    }

    public static let maxDepth = 32

    public static func parse(_ bytes: some Collection<UInt8>) -> [String: Value]? {
        var object: [String: Value] = Dictionary(minimumCapacity: 8)  // one allocation for a frame's members
        return forEachMember(Array(bytes), { object[$0] = $1 }) ? object : nil
    }

    /// The top-level object's members, in order, handed to `body` as they are read: `parse` without
    /// building the dictionary (a reader of a few known members needs no hashing). Returns false for
    /// anything `parse` refuses; what `body` saw must then be ignored.
    public static func forEachMember(_ bytes: [UInt8], _ body: (String, Value) -> Void) -> Bool {
        var reader = Reader(bytes: bytes)
        guard reader.object(body) else { return false }
        reader.skipSpace()
        return reader.i == reader.bytes.count
    }

    struct Reader {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            skipSpace()
            guard i < bytes.count, bytes[i] == byte else { return false }
            i += 1
            return true
        }

        /// The top-level object, each member decoded and handed to `body`.
        mutating func object(_ body: (String, Value) -> Void) -> Bool {
            guard take(UInt8(ascii: "{")) else { return false }
            if take(UInt8(ascii: "}")) { return true }
            repeat {
                skipSpace()
                guard let key = string(), take(UInt8(ascii: ":")), let value = value(depth: 1) else { return false }
                body(key, value)
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "}"))
        }

        mutating func value(depth: Int) -> Value? {
            skipSpace()
            guard i < bytes.count, depth <= FlatJSON.maxDepth else { return nil }
            switch bytes[i] {
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
            case UInt8(ascii: "["):
                i += 1
                var items: [Value] = []
                if take(UInt8(ascii: "]")) { return .array(items) }
                repeat {
                    guard let item = value(depth: depth + 1) else { return nil }
                    items.append(item)
                } while take(UInt8(ascii: ","))
                return take(UInt8(ascii: "]")) ? .array(items) : nil
            case UInt8(ascii: "{"):
                i += 1
                if take(UInt8(ascii: "}")) { return .other }
                repeat {
                    skipSpace()
                    guard string() != nil, take(UInt8(ascii: ":")), value(depth: depth + 1) != nil else { return nil }
                } while take(UInt8(ascii: ","))
                return take(UInt8(ascii: "}")) ? .other : nil
            default:
                for word in ["true", "false", "null"] where bytes[i...].starts(with: word.utf8) {
                    i += word.utf8.count
                    return .other
                }
                return nil
            }
        }

        mutating func digits() -> Int {
            let start = i
            while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
            return i - start
        }

        /// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
        mutating func number() -> Value? {
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            let intStart = i
            let n = digits()
            guard n > 0, n == 1 || bytes[intStart] != UInt8(ascii: "0") else { return nil }
            var integral = true
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
                i += 1
                guard digits() > 0 else { return nil }
                integral = false
            }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { return nil }
                integral = false
            }
            guard integral else { return .other }
            return Int64(String(decoding: bytes[start..<i], as: UTF8.self)).map(Value.integer) ?? .other
        }

        /// A string starting at `"`; escapes decoded (\uXXXX included, surrogate pairs joined).
        mutating func string() -> String? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            let start = i
            while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\"), bytes[i] >= 0x20 { i += 1 }
            guard i < bytes.count, bytes[i] >= 0x20 else { return nil }
            if bytes[i] == UInt8(ascii: "\"") {
                defer { i += 1 }
                return String(decoding: bytes[start..<i], as: UTF8.self)
            }
            var out = Array(bytes[start..<i])
            while i < bytes.count {
                let b = bytes[i]
                guard b >= 0x20 else { return nil }
                if b == UInt8(ascii: "\"") {
                    i += 1
                    return String(decoding: out, as: UTF8.self)
                }
                guard b == UInt8(ascii: "\\") else {
                    out.append(b)
                    i += 1
                    continue
                }
                guard i + 1 < bytes.count else { return nil }
                let e = bytes[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard var code = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(code), bytes[i...].starts(with: "\\u".utf8) {
                        i += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    // A lone surrogate becomes U+FFFD.
                    out.append(contentsOf: String(Character(Unicode.Scalar(code) ?? "\u{FFFD}")).utf8)
                default: return nil
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard i + 4 <= bytes.count else { return nil }
            var v: UInt32 = 0
            for b in bytes[i..<i + 4] {
                let d: UInt8
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
                default: return nil
                }
                v = v << 4 | UInt32(d)
            }
            i += 4
            return v
        }
    }
}

extension Dictionary where Key == String, Value == FlatJSON.Value {
    /// The member as a string, if it is one.
    public func string(_ key: String) -> String? {
        if case .string(let s)? = self[key] { return s }
        return nil
    }

    /// The member as an integer, if it is one.
    public func integer(_ key: String) -> Int64? {
        if case .integer(let n)? = self[key] { return n }
        return nil
    }
}
