// swift-tools-version:6.1
// Benchmarks of algate's FTP and SIP engines (AlgateRewrite's FTPSessionStateMachine and SIPGatewayStateMachine),
// its policy rules and its pinhole backends (target Pinholes: ../Scripts/bench-pinholes), with ordo-one's
// package-benchmark.
//
//     ../Scripts/bench-engine                     # run, print the tables and a summary with ratios
//     ../Scripts/bench-engine check               # allocations per rewritten line vs. Thresholds/
//     swift package --allow-writing-to-package-directory benchmark     # the plain package-benchmark run
//
// Builds go to Benchmarks/.build (ignored by the root .gitignore).
import PackageDescription

let package = Package(
    name: "algate-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        // The repository was renamed from ordo-one/package-benchmark to ordo-one/benchmark; both URLs resolve to the
        // same releases, but the old identifier makes the plugin print a deprecation warning on every run.
        // Only the MallocInterposer trait: the other default trait (RuntimeInterposer, Linux + Swift 6.3) would pull
        // in ordo-one/swift-runtime-interposer, which only the ARC metrics need and which is not used here.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        // The root package. A path dependency's identity is its folder's name (a clone may be called anything), so
        // it is named here and the target refers to it as "algate".
        .package(name: "algate", path: ".."),
        // For ByteBuffer, which AlgateRewrite's API takes and returns (the version the root package resolves).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        // For the Logger that the pinhole backends take (the version the root package resolves).
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "FTPEngine",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "AlgateRewrite", package: "algate"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/FTPEngine",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SIPEngine",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "AlgateRewrite", package: "algate"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/SIPEngine",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "PolicyEngine",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "AlgatePolicy", package: "algate"),
                .product(name: "AlgateRewrite", package: "algate"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/PolicyEngine",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Pinhole set-up latency and 10,000 open pinholes, userspace and nftables backends. The nftables ones need
        // CAP_NET_ADMIN: run them through ../Scripts/bench-pinholes, in a network namespace of their own.
        .executableTarget(
            name: "Pinholes",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "AlgatePinholes", package: "algate"),
                .product(name: "AlgateRewrite", package: "algate"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/Pinholes",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
