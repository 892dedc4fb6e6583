// swift-tools-version: 6.1
import PackageDescription

// Benchmarks live in their own package so `swift build` / `swift test` of Chorus never build them.
// Run: `swift package benchmark` here (release build); thresholds are in Thresholds/.
let package = Package(
    name: "ChorusBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Chorus", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "WALBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ChorusWAL", package: "Chorus"),
                .product(name: "ChorusCore", package: "Chorus"),
                .product(name: "ChorusTestKit", package: "Chorus"),
            ],
            path: "Benchmarks/WALBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "EngineBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ChorusEngine", package: "Chorus"),
                .product(name: "ChorusCore", package: "Chorus"),
                .product(name: "ChorusGateway", package: "Chorus"),
                .product(name: "ChorusCluster", package: "Chorus"),
                .product(name: "ChorusTestKit", package: "Chorus"),
            ],
            path: "Benchmarks/EngineBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "GatewayBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ChorusGateway", package: "Chorus"),
                .product(name: "ChorusTestKit", package: "Chorus"),
            ],
            path: "Benchmarks/GatewayBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "MeshBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ChorusMesh", package: "Chorus"),
                .product(name: "ChorusCluster", package: "Chorus"),
            ],
            path: "Benchmarks/MeshBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ReengagementBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ChorusCore", package: "Chorus"),
                .product(name: "ChorusReengagement", package: "Chorus"),
            ],
            path: "Benchmarks/ReengagementBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
