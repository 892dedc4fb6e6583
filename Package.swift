// swift-tools-version: 6.1
import PackageDescription

// Dependency direction (DESIGN.md): Core <- WAL <- executable. Pure modules never import NIO.
let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chorus", targets: ["Chorus"]),
        .library(name: "ChorusWAL", targets: ["ChorusWAL"]),
        .library(name: "ChorusCore", targets: ["ChorusCore"]),
        .library(name: "ChorusTestKit", targets: ["ChorusTestKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"]), .brew(["lz4"])]
        ),
        .target(name: "ChorusCore"),
        // Test doubles and generators shared by tests and benchmarks; never linked into `chorus`.
        .target(name: "ChorusTestKit", dependencies: ["ChorusCore"]),
        .target(
            name: "ChorusWAL",
            dependencies: [
                "CLZ4",
                "ChorusCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "Chorus",
            dependencies: [
                "ChorusWAL",
                "ChorusCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ChorusWALTests", dependencies: ["ChorusWAL", "ChorusCore", "ChorusTestKit"]),
        .testTarget(name: "ChorusCoreTests", dependencies: ["ChorusCore"]),
        .testTarget(
            name: "ChorusIntegrationTests",
            dependencies: ["ChorusWAL", "ChorusCore", "Chorus"]
        ),
    ]
)
