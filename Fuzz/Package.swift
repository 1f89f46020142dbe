// swift-tools-version:5.4
// The libFuzzer harnesses (issue 10). Tools version 5.4 on purpose: from 5.5 on SwiftPM renames an executable's
// entry point to `<target>_main` and links `main` to it, which a harness does not have (libFuzzer's runtime brings
// `main` and calls `LLVMFuzzerTestOneInput`), so the link fails with "undefined symbol 'X_main'". Swift 6 language
// mode is asked for by flag, since a 5.4 manifest cannot name it.
//
// Build with Scripts/fuzz, which adds `-sanitize=address` and libFuzzer's coverage instrumentation to every module
// (the gateway's too, or the fuzzer would be blind inside it); only the harnesses link libFuzzer's runtime.
import PackageDescription

let swift6: [SwiftSetting] = [
    .unsafeFlags(["-swift-version", "6", "-enable-upcoming-feature", "ExistentialAny"]),
]
let harness: [SwiftSetting] = [
    .unsafeFlags(["-swift-version", "6", "-enable-upcoming-feature", "ExistentialAny", "-parse-as-library"]),
]
let fuzzerRuntime: [LinkerSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]

/// One harness: an executable whose LLVMFuzzerTestOneInput is in `Sources/<name>`.
func fuzzer(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + dependencies, swiftSettings: harness,
                      linkerSettings: fuzzerRuntime)
}

let rewrite: Target.Dependency = .product(name: "AlgateRewrite", package: "algate")
let replay: Target.Dependency = .product(name: "AlgateReplay", package: "algate")
let nio: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")

let package = Package(
    name: "algate-fuzz",
    dependencies: [
        .package(name: "algate", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: [rewrite, nio], swiftSettings: swift6),
        fuzzer("FuzzFTPEngine", [rewrite, nio]),
        fuzzer("FuzzSIPMessage", [rewrite, nio]),
        fuzzer("FuzzSIPGateway", [rewrite, nio]),
        fuzzer("FuzzSDP", [rewrite, nio]),
        fuzzer("FuzzSIPFramer", [rewrite, nio]),
        fuzzer("FuzzReplayPackets", [replay, rewrite]),
        fuzzer("FuzzGzip", [replay]),
        // Writes the seed corpora from Fixtures/ and ../shared/corpus; an ordinary executable.
        .executableTarget(name: "FuzzSeeds", dependencies: ["FuzzSupport", replay, rewrite, nio], swiftSettings: swift6),
    ]
)
