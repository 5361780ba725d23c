// swift-tools-version:6.0
import Foundation
import PackageDescription

// The ALS kernels (ChorusAnalytics) are compiled for AVX2 + FMA when the building machine has both: 2.4–3.6× the
// baseline x86-64 code, and faster than OpenBLAS at ranks 16–64 (docs/benchmarks.md, `chorus bench-als-kernels`).
// Like -march=native, the result then needs such a CPU; set CHORUS_PORTABLE=1 to build for any x86-64.
// CHORUS_FMA tells the kernels they may use fused multiply-adds (without FMA hardware they would be library calls).
let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
let vectorFlags: [SwiftSetting] =
    ProcessInfo.processInfo.environment["CHORUS_PORTABLE"] == nil && cpuInfo.contains(" avx2") && cpuInfo.contains(" fma")
    ? [.unsafeFlags(["-target-cpu", "haswell"]), .define("CHORUS_FMA")] : []

let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chorus", targets: ["chorus"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // Metrics: swift-metrics' API, exposed in Prometheus' text format by swift-prometheus (small: it adds
        // swift-atomics and nothing else). Served by ChorusTransport's HTTPServer, not an HTTP framework.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries, each reached by exactly one Swift wrapper module.
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CRocksDB", path: "Sources/CRocksDB", pkgConfig: "rocksdb", providers: [.apt(["librocksdb-dev"])]),
        // What the C API lacks (reading an SST file outside a database, for partition moves), in a few lines of C++.
        .target(name: "CRocksDBSst", linkerSettings: [.linkedLibrary("rocksdb")]),

        // Pure modules: no I/O, no C, no wire types.
        .target(name: "ChorusModel"),
        // Optimised in debug builds too: the SIMD kernels are 50–100× slower unoptimised, which the tests feel.
        .target(name: "ChorusAnalytics", dependencies: ["ChorusModel"],
                swiftSettings: vectorFlags + [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "ChorusData", dependencies: ["ChorusModel"]),

        // Wire contract (generated protobuf code + conversions).
        .target(name: "ChorusWire", dependencies: [
            "ChorusModel", "ChorusAnalytics",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        // The only importers of the C libraries.
        .target(name: "ChorusTransport", dependencies: ["CZeroMQ"]),
        .target(name: "ChorusStorage", dependencies: ["CRocksDB", "CRocksDBSst"]),

        // Runtimes: coordinator, worker, client.
        .target(name: "ChorusRuntime", dependencies: [
            "ChorusModel", "ChorusAnalytics", "ChorusData", "ChorusWire", "ChorusTransport", "ChorusStorage",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // Job kinds, each in a folder of its own, on the job SDK (ChorusRuntime/JobSDK); `StandardJobs.registry`
        // lists them. Their messages: proto/chorus/v1/jobs/<kind>.proto, generated into ChorusJobs/Generated.
        .target(name: "ChorusJobs", dependencies: [
            "ChorusModel", "ChorusAnalytics", "ChorusData", "ChorusWire", "ChorusStorage", "ChorusRuntime",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .executableTarget(name: "chorus", dependencies: [
            "ChorusRuntime", "ChorusJobs", "ChorusData", "ChorusModel", "ChorusStorage", "ChorusTransport", "ChorusWire",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], plugins: ["BuildInfo"]),
        // Writes the git commit into the `chorus` binary before each build (`chorus version`).
        .plugin(name: "BuildInfo", capability: .buildTool()),

        .testTarget(name: "ChorusUnitTests", dependencies: [
            "ChorusModel", "ChorusAnalytics", "ChorusData", "ChorusWire", "ChorusStorage", "ChorusTransport",
            "ChorusRuntime", "ChorusJobs",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ChorusIntegrationTests", dependencies: [
            "ChorusModel", "ChorusAnalytics", "ChorusData", "ChorusWire", "ChorusTransport",
        ]),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)
