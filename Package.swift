// swift-tools-version: 6.1
import PackageDescription

// Dependency direction (README, "Layout"): Core <- Cluster <- Replication <- Peer <- Engine <- Gateway
// <- executables; Core <- WAL <- executables; Peer, Replication <- Replica; Etcd (no Chorus module),
// Replication <- Coordinator. Pure modules never import NIO (ChorusArchitectureTests).
let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chorus", targets: ["Chorus"]),
        .executable(name: "chorus-tools", targets: ["ChorusTools"]),
        .executable(name: "chorus-fuzz", targets: ["ChorusFuzz"]),
        .library(name: "ChorusWAL", targets: ["ChorusWAL"]),
        .library(name: "ChorusCore", targets: ["ChorusCore"]),
        .library(name: "ChorusEngine", targets: ["ChorusEngine"]),
        .library(name: "ChorusCluster", targets: ["ChorusCluster"]),
        .library(name: "ChorusReplication", targets: ["ChorusReplication"]),
        .library(name: "ChorusPeer", targets: ["ChorusPeer"]),
        .library(name: "ChorusMesh", targets: ["ChorusMesh"]),
        .library(name: "ChorusGateway", targets: ["ChorusGateway"]),
        .library(name: "ChorusTestKit", targets: ["ChorusTestKit"]),
        .library(name: "ChorusReengagement", targets: ["ChorusReengagement"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"]), .brew(["lz4"])]
        ),
        .target(name: "ChorusCore"),
        // Ring placement, failure detection and the membership-change rules: pure, no NIO.
        .target(name: "ChorusCluster", dependencies: ["ChorusCore"]),
        // Replication and failover rules (PROTOCOL.md section 7): partitions, epochs, the
        // follower's and leader's state machines, promotion. Pure, no NIO, no clock of its own.
        .target(name: "ChorusReplication", dependencies: ["ChorusCluster"]),
        // The peer protocol: every message between nodes as one typed vocabulary, its codec, the
        // typed client and the dispatcher that routes what arrives. Pure, no NIO.
        .target(
            name: "ChorusPeer",
            dependencies: ["ChorusCore", "ChorusCluster", "ChorusReplication", .product(name: "Logging", package: "swift-log")]),
        // Re-engagement email: the timer wheel and the inactivity/outbox rules (pure, no NIO).
        .target(
            name: "ChorusReengagement",
            dependencies: [
                "ChorusCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]),
        // A client of etcd v3's JSON gateway (leases, transactions, watches) over SwiftNIO.
        .target(
            name: "ChorusEtcd",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]),
        // The control plane of replication: the node's etcd lease, the partition table, takeovers.
        .target(
            name: "ChorusCoordinator",
            dependencies: ["ChorusEtcd", "ChorusReplication"]),
        // The data path of replication: a node's copies over its log (live is replay). Pure, no NIO.
        .target(
            name: "ChorusReplica",
            dependencies: ["ChorusCore", "ChorusPeer", "ChorusReplication"]),
        // The SMTP sender (the re-engagement Mailer over SwiftNIO).
        .target(
            name: "ChorusMail",
            dependencies: [
                "ChorusReengagement",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
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
        .target(
            name: "ChorusEngine",
            dependencies: [
                "ChorusCore",
                "ChorusCluster",
                "ChorusPeer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "ChorusGateway",
            dependencies: [
                "ChorusCore",
                "ChorusEngine",
                "ChorusPeer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The browser client: plain HTML, CSS and JavaScript modules, no build step (docs/WEB.md).
            resources: [.copy("Web")]
        ),
        // The load generator: a NIO WebSocket client with its own framing (`WebSocketClientFraming`) and latency histograms (`chorus load`).
        .target(
            name: "ChorusLoad",
            dependencies: [
                "ChorusCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // The mesh: mutual TLS, framing, handshake and connections between nodes (bytes; `ChorusPeer`
        // gives them meaning), and the certificates `chorus cert` issues for it.
        .target(
            name: "ChorusMesh",
            dependencies: [
                "ChorusCluster",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // Option parsing and output shared by the two executables.
        .target(name: "ChorusCLI", dependencies: ["ChorusWAL"]),
        .executableTarget(
            name: "Chorus",
            dependencies: [
                "ChorusCLI",
                "ChorusWAL",
                "ChorusCluster",
                "ChorusMesh",
                "ChorusPeer",
                "ChorusCore",
                "ChorusEngine",
                "ChorusGateway",
                "ChorusLoad",
                "ChorusReengagement",
                "ChorusMail",
                "ChorusReplication",
                "ChorusReplica",
                "ChorusEtcd",
                "ChorusCoordinator",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Every decoder of outside bytes as a fuzz target (docs/SECURITY.md, "Fuzzing").
        .target(
            name: "ChorusFuzzTargets",
            dependencies: [
                "ChorusCore", "ChorusGateway", "ChorusMesh", "ChorusPeer", "ChorusReengagement", "ChorusReplication", "ChorusWAL",
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        // libFuzzer's entry over ChorusFuzzTargets (built with -sanitize=fuzzer; see its main.swift).
        .executableTarget(name: "ChorusFuzz", dependencies: ["ChorusFuzzTargets"]),
        // Benchmarks, crash tests, simulations and the mutation fuzzer: out of the production binary.
        .executableTarget(
            name: "ChorusTools",
            dependencies: [
                "ChorusFuzzTargets",
                "ChorusTestKit",
                "ChorusCLI",
                "ChorusWAL",
                "ChorusCore",
                "ChorusEngine",
                "ChorusMesh",
                "ChorusMail",
                "ChorusReengagement",
                "ChorusLoad",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ChorusWALTests", dependencies: ["ChorusWAL", "ChorusCore", "ChorusTestKit"]),
        .testTarget(name: "ChorusCoreTests", dependencies: ["ChorusCore"]),
        // Reads Sources/: pure modules import no NIO, dependencies point one way.
        .testTarget(name: "ChorusArchitectureTests"),
        .testTarget(name: "ChorusClusterTests", dependencies: ["ChorusCluster"]),
        .testTarget(
            name: "ChorusEtcdTests",
            dependencies: [
                "ChorusEtcd", "ChorusCoordinator", "ChorusReplication", "ChorusReplica", "ChorusPeer", "ChorusCore", "ChorusCluster", "ChorusTestKit",
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
            ]),
        .testTarget(
            name: "ChorusReplicationTests",
            dependencies: [
                "ChorusReplication", "ChorusReplica", "ChorusPeer", "ChorusCore", "ChorusCluster", "ChorusEngine", "ChorusTestKit",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]),
        .testTarget(
            name: "ChorusPeerTests",
            dependencies: ["ChorusPeer", "ChorusCore", "ChorusCluster", "ChorusReplication", "ChorusTestKit", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "ChorusMeshTests",
            dependencies: [
                "ChorusMesh",
                "ChorusCluster",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "ChorusEngineTests", dependencies: ["ChorusEngine", "ChorusCore", "ChorusTestKit"]),
        .testTarget(name: "ChorusReengagementTests", dependencies: ["ChorusReengagement", "ChorusCore", "ChorusTestKit"]),
        .testTarget(
            name: "ChorusMailTests",
            dependencies: [
                "ChorusMail", "ChorusReengagement",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]),
        .testTarget(
            name: "ChorusGatewayTests",
            dependencies: [
                "ChorusGateway", "ChorusEngine", "ChorusCore",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]),
        .testTarget(
            name: "ChorusLoadTests",
            dependencies: ["ChorusLoad", "ChorusCore", "ChorusGateway", .product(name: "NIOCore", package: "swift-nio")]),
        // The executables' own pure parts: option parsing, the node's composite snapshot.
        .testTarget(name: "ChorusCommandTests", dependencies: ["ChorusCLI", "Chorus", "ChorusCore", "ChorusEngine", "ChorusReengagement"]),
        .testTarget(
            name: "ChorusIntegrationTests",
            dependencies: ["ChorusWAL", "ChorusCore", "ChorusLoad", "Chorus", "ChorusTools"]
        ),
    ]
)
