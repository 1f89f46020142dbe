// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "algate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "algate", targets: ["algate"]),
        .library(name: "AlgateRewrite", targets: ["AlgateRewrite"]),
        .library(name: "AlgatePinholes", targets: ["AlgatePinholes"]),
        .library(name: "AlgateProxy", targets: ["AlgateProxy"]),
        .library(name: "AlgateConfig", targets: ["AlgateConfig"]),
        .library(name: "AlgatePolicy", targets: ["AlgatePolicy"]),
        // For the fuzz harnesses in Fuzz/ (a package of their own), which drive the replay's packet layer.
        .library(name: "AlgateReplay", targets: ["AlgateReplay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
    ],
    targets: [
        // The parser module: Sans-IO; the standard library and NIOCore's ByteBuffer only.
        .target(
            name: "AlgateRewrite",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // libnftables, for the nftables pinhole backend and the transparent-mode steering rules.
        .systemLibrary(name: "CNftables", pkgConfig: "libnftables", providers: [.apt(["libnftables-dev"])]),
        .target(
            name: "AlgatePinholes",
            dependencies: [
                "AlgateRewrite", "CNftables",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // libpcre2-8, for policy patterns.
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        .target(name: "AlgatePolicy", dependencies: ["CPCRE2", "AlgateRewrite"], swiftSettings: strict),
        // libpcap, for reading captures.
        .systemLibrary(name: "CPcap", providers: [.apt(["libpcap-dev"])]),
        .target(
            name: "AlgateReplay",
            dependencies: ["CPcap", "AlgateRewrite", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        .target(
            name: "AlgateConfig",
            dependencies: [
                "AlgateRewrite", "AlgatePolicy",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "AlgateProxy",
            dependencies: [
                "AlgateRewrite", "AlgatePinholes", "AlgateConfig", "AlgatePolicy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "algate",
            dependencies: [
                "AlgateRewrite", "AlgateConfig", "AlgateProxy", "AlgatePinholes", "AlgateReplay",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "AlgateRewriteTests", dependencies: ["AlgateRewrite"], swiftSettings: strict),
        .testTarget(
            name: "AlgatePinholesTests",
            dependencies: [
                "AlgatePinholes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "AlgatePolicyTests", dependencies: ["AlgatePolicy", "AlgateRewrite"], swiftSettings: strict),
        .testTarget(name: "AlgateConfigTests", dependencies: ["AlgateConfig", "AlgateRewrite", "AlgatePolicy"], swiftSettings: strict),
        .testTarget(name: "AlgateCLITests", dependencies: ["algate"], swiftSettings: strict),
        // Network-namespace tests (Scripts/lab): run as root, skipped otherwise.
        .testTarget(name: "LabTests", dependencies: ["algate"], swiftSettings: strict),
        .testTarget(
            name: "AlgateReplayTests",
            dependencies: ["AlgateReplay", "AlgateRewrite"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AlgateProxyTests",
            dependencies: [
                "AlgateProxy", "AlgateRewrite", "AlgatePinholes", "AlgateConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
