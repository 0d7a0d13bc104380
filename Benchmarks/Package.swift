// swift-tools-version: 6.1
// Benchmarks for Xinlian, kept out of the main package so that the test command never builds them.
// Run: cd Benchmarks && swift package benchmark   (or scripts/bench for the ratio figures)
import PackageDescription

let package = Package(
    name: "XinlianBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "xinlian", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "LedgerBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "XinlianCore", package: "xinlian"),
                .product(name: "XinlianCrypto", package: "xinlian"),
                .product(name: "XinlianMerkle", package: "xinlian"),
                .product(name: "XinlianCredit", package: "xinlian"),
            ],
            path: "Benchmarks/LedgerBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)
