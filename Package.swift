// swift-tools-version:6.0
import PackageDescription

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
    ],
    targets: [
        // C libraries, each reached by exactly one Swift wrapper module.
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CRocksDB", path: "Sources/CRocksDB", pkgConfig: "rocksdb", providers: [.apt(["librocksdb-dev"])]),

        // Pure modules: no I/O, no C, no wire types.
        .target(name: "ChorusModel"),
        .target(name: "ChorusAnalytics", dependencies: ["ChorusModel"]),
        .target(name: "ChorusData", dependencies: ["ChorusModel"]),

        // Wire contract (generated protobuf code + conversions).
        .target(name: "ChorusWire", dependencies: [
            "ChorusModel", "ChorusAnalytics",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        // The only importers of the C libraries.
        .target(name: "ChorusTransport", dependencies: ["CZeroMQ"]),
        .target(name: "ChorusStorage", dependencies: ["CRocksDB"]),

        // Runtimes: coordinator, worker, client.
        .target(name: "ChorusRuntime", dependencies: [
            "ChorusModel", "ChorusAnalytics", "ChorusData", "ChorusWire", "ChorusTransport", "ChorusStorage",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "chorus", dependencies: [
            "ChorusRuntime", "ChorusData", "ChorusModel", "ChorusStorage",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "ChorusUnitTests", dependencies: [
            "ChorusModel", "ChorusAnalytics", "ChorusData", "ChorusWire", "ChorusStorage", "ChorusTransport",
        ]),
        .testTarget(name: "ChorusIntegrationTests", dependencies: [
            "ChorusModel", "ChorusAnalytics", "ChorusData", "ChorusWire", "ChorusTransport",
        ]),
    ],
    swiftLanguageModes: [.v6]
)
