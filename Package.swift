// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "xinlian",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "xinlian", targets: ["xinlian"]),
        .library(name: "XinlianCrypto", targets: ["XinlianCrypto"]),
        .library(name: "XinlianMerkle", targets: ["XinlianMerkle"]),
        .library(name: "XinlianCore", targets: ["XinlianCore"]),
        .library(name: "XinlianCredit", targets: ["XinlianCredit"]),
        .library(name: "XinlianAudit", targets: ["XinlianAudit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // System libraries: OpenSSL (libssl-dev) for SM2/SM3, SQLite (libsqlite3-dev) for the index.
        .systemLibrary(name: "CXinlianOpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CXinlianSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),

        // Pure core.
        .target(name: "XinlianCrypto",
                dependencies: [.product(name: "Crypto", package: "swift-crypto"), "CXinlianOpenSSL"],
                swiftSettings: strict),
        .target(name: "XinlianMerkle", dependencies: ["XinlianCrypto"], swiftSettings: strict),
        .target(name: "XinlianCore", dependencies: ["XinlianCrypto", "XinlianMerkle"], swiftSettings: strict),
        .target(name: "XinlianConsensus", dependencies: ["XinlianCore", "XinlianCrypto"], swiftSettings: strict),
        .target(name: "XinlianSimulation", dependencies: ["XinlianConsensus", "XinlianCore", "XinlianCredit", "XinlianCrypto"],
                swiftSettings: strict),
        .target(name: "XinlianCredit", dependencies: ["XinlianCore", "XinlianCrypto", "XinlianMerkle"], swiftSettings: strict),
        .target(name: "XinlianNetwork", dependencies: [
            "XinlianCore", "XinlianConsensus", "XinlianCrypto",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ], swiftSettings: strict),

        // Shell.
        .target(name: "XinlianStorage", dependencies: ["XinlianCore", "XinlianCrypto", "XinlianMerkle", "CXinlianSQLite"],
                swiftSettings: strict),
        .target(name: "XinlianAudit", dependencies: ["XinlianCore", "XinlianStorage", "XinlianCrypto", "XinlianMerkle"],
                swiftSettings: strict),
        .target(name: "XinlianNode", dependencies: [
            "XinlianCore", "XinlianStorage", "XinlianCrypto", "XinlianMerkle", "XinlianCredit", "XinlianConsensus",
            "XinlianNetwork",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ], swiftSettings: strict),
        .executableTarget(name: "xinlian", dependencies: [
            "XinlianCore", "XinlianConsensus", "XinlianCrypto", "XinlianStorage", "XinlianAudit", "XinlianNode", "XinlianCredit",
            "XinlianNetwork",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOTLS", package: "swift-nio"),
        ], swiftSettings: strict),

        // Tests.
        .testTarget(name: "XinlianCryptoTests", dependencies: ["XinlianCrypto"], swiftSettings: strict),
        .testTarget(name: "XinlianMerkleTests", dependencies: ["XinlianMerkle", "XinlianCrypto"], swiftSettings: strict),
        .testTarget(name: "XinlianCoreTests", dependencies: ["XinlianCore", "XinlianCrypto"], swiftSettings: strict),
        .testTarget(name: "XinlianStorageTests", dependencies: ["XinlianStorage", "XinlianCore", "XinlianCrypto"],
                    swiftSettings: strict),
        .testTarget(name: "XinlianAuditTests", dependencies: ["XinlianAudit", "XinlianStorage", "XinlianCore", "XinlianCrypto"],
                    swiftSettings: strict),
        .testTarget(name: "XinlianNodeTests", dependencies: [
            "XinlianNode", "XinlianCore", "XinlianStorage", "XinlianCrypto", "XinlianMerkle", "XinlianConsensus",
            "XinlianNetwork", "XinlianCredit", "XinlianAudit",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ], swiftSettings: strict),
        .testTarget(name: "XinlianConsensusTests",
                    dependencies: ["XinlianConsensus", "XinlianSimulation", "XinlianCore", "XinlianCredit", "XinlianCrypto"],
                    swiftSettings: strict),
        .testTarget(name: "XinlianCreditTests", dependencies: ["XinlianCredit", "XinlianCore", "XinlianCrypto", "XinlianMerkle"],
                    swiftSettings: strict),
        .testTarget(name: "XinlianNetworkTests", dependencies: [
            "XinlianNetwork", "XinlianCore", "XinlianConsensus", "XinlianCrypto",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .testTarget(name: "XinlianCLITests", dependencies: [
            "xinlian", "XinlianCore", "XinlianCredit", "XinlianCrypto",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: strict),
        // Real processes; the hostile peer of `HostileProcessTests` speaks the real protocol with a real validator key.
        .testTarget(name: "XinlianIntegrationTests", dependencies: [
            "XinlianCore", "XinlianCrypto", "XinlianConsensus", "XinlianNetwork", "XinlianNode",
            .product(name: "NIOPosix", package: "swift-nio"),
        ], swiftSettings: strict),
    ]
)
