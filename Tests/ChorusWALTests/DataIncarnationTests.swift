import ChorusTestKit
import ChorusWAL
import Foundation
import Testing

@Suite struct DataIncarnationTests {
    static func directory() throws -> String {
        let path = NSTemporaryDirectory() + "chorus-incarnation-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func madeOnceThenReadBack() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SplitMix64(seed: 3)
        let first = try DataIncarnation.loadOrCreate(directory: dir, using: &rng)
        #expect(first.created && first.value != 0)
        var other = SplitMix64(seed: 4)
        let again = try DataIncarnation.loadOrCreate(directory: dir, using: &other)
        #expect(again == (first.value, false))
        // A wiped directory gets a different one.
        try FileManager.default.removeItem(atPath: dir + "/incarnation")
        let fresh = try DataIncarnation.loadOrCreate(directory: dir, using: &other)
        #expect(fresh.created && fresh.value != first.value)
    }

    @Test func aDamagedFileIsRefusedNotReplaced() throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for bad in ["", "0\n", "12x\n", "-5"] {
            try Data(bad.utf8).write(to: URL(fileURLWithPath: dir + "/incarnation"))
            var rng = SplitMix64(seed: 1)
            #expect(throws: DataIncarnation.Failure.unreadable(path: dir + "/incarnation")) { try DataIncarnation.loadOrCreate(directory: dir, using: &rng) }
            #expect(try String(contentsOfFile: dir + "/incarnation", encoding: .utf8) == bad)
        }
    }
}
