import Foundation
import Testing

/// The module rules of the README's layout table, read off the sources: pure modules never import
/// NIO, and dependencies point one way (the engine knows neither the log, the mesh nor the gateway).
@Suite struct LayeringTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every module each file of `module` imports (`import X`, `@testable import X`, `import struct X.Y`).
    static func imports(of module: String) throws -> [String: Set<String>] {
        let dir = root.appendingPathComponent("Sources/\(module)")
        let files = try FileManager.default.subpathsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }
        var out: [String: Set<String>] = [:]
        for f in files {
            let text = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
            for line in text.split(separator: "\n") {
                var words = line.split(separator: " ").map(String.init)
                while let w = words.first, w.hasPrefix("@") || ["public", "package", "internal", "private"].contains(w) { words.removeFirst() }
                guard words.first == "import", words.count >= 2 else { continue }
                let target = words.count >= 3 && ["struct", "class", "enum", "protocol", "func", "typealias", "var", "let"].contains(words[1]) ? words[2] : words[1]
                out["\(module)/\(f)", default: []].insert(String(target.split(separator: ".").first ?? ""))
            }
        }
        return out
    }

    static func violations(_ module: String, forbidden: (String) -> Bool) throws -> [String] {
        try imports(of: module).flatMap { file, modules in modules.filter(forbidden).map { "\(file) imports \($0)" } }.sorted()
    }

    static let pure = ["ChorusCore", "ChorusWAL", "ChorusCluster", "ChorusReplication", "ChorusReplica", "ChorusPeer", "ChorusEngine", "ChorusReengagement", "ChorusTestKit"]

    @Test(arguments: pure) func pureModulesDoNotImportNIO(module: String) throws {
        #expect(try Self.violations(module) { $0.hasPrefix("NIO") || $0 == "ServiceLifecycle" } == [])
    }

    @Test func dependenciesPointOneWay() throws {
        let chorus = { (m: String) in m.hasPrefix("Chorus") || m == "CLZ4" }
        #expect(try Self.violations("ChorusCore") { chorus($0) } == [])
        #expect(try Self.violations("ChorusCluster") { chorus($0) && $0 != "ChorusCore" } == [])
        #expect(try Self.violations("ChorusReplica") { chorus($0) && !["ChorusCore", "ChorusPeer", "ChorusReplication", "ChorusCluster"].contains($0) } == [])
        // The etcd client knows nothing of Chorus: the node's shell maps partitions onto its keys.
        #expect(try Self.violations("ChorusEtcd") { chorus($0) } == [])
        #expect(try Self.violations("ChorusCoordinator") {
            (chorus($0) && !["ChorusEtcd", "ChorusReplication", "ChorusCluster", "ChorusCore"].contains($0)) || $0.hasPrefix("NIO")
        } == [])
        #expect(try Self.violations("ChorusReplication") { chorus($0) && !["ChorusCore", "ChorusCluster"].contains($0) } == [])
        #expect(try Self.violations("ChorusPeer") { chorus($0) && !["ChorusCore", "ChorusCluster", "ChorusReplication"].contains($0) } == [])
        #expect(try Self.violations("ChorusWAL") { chorus($0) && !["ChorusCore", "CLZ4"].contains($0) } == [])
        #expect(try Self.violations("ChorusReengagement") { chorus($0) && $0 != "ChorusCore" } == [])
        // The engine decides; the log, the mesh and the gateway carry its decisions out. The email
        // outbox is a section of the node's snapshot, not part of the engine.
        #expect(try Self.violations("ChorusEngine") {
            ["ChorusWAL", "ChorusMesh", "ChorusGateway", "ChorusMail", "ChorusLoad", "ChorusReengagement", "CLZ4"].contains($0)
        } == [])
        #expect(try Self.violations("ChorusMesh") { chorus($0) && !["ChorusCore", "ChorusCluster"].contains($0) } == [])
        #expect(try Self.violations("ChorusGateway") { ["ChorusWAL", "ChorusMesh", "ChorusMail", "ChorusLoad"].contains($0) } == [])
    }

    @Test func theScannerSeesImports() throws {
        // The rules above pass vacuously if nothing is read: the mesh must be seen importing NIO.
        #expect(try Self.violations("ChorusMesh") { $0 == "NIOCore" }.isEmpty == false)
        #expect(try Self.imports(of: "ChorusEngine").values.contains { $0.contains("ChorusPeer") })
    }
}
