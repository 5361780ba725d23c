import ArgumentParser
import ChorusStorage
import ChorusTransport
import ChorusWire
import Foundation

/// What this binary is: its version, the git commit it was built from (BuildInfo, generated before each build by
/// Plugins/BuildInfo), the wire protocol version, and the libzmq and RocksDB libraries it runs on.
enum VersionInfo {
    /// Raised with each release.
    static let version = "0.34.0"

    static var commit: String { BuildInfo.gitCommit + (BuildInfo.gitDirty ? " (with uncommitted changes)" : "") }

    static var fields: [(String, String)] {
        [("version", version), ("commit", commit), ("protocol", String(Wire.protocolVersion)),
         ("libzmq", zmqLibraryVersion()), ("rocksdb", RocksDBLibrary.version)]
    }

    /// `chorus --version` and `chorus version`.
    static var text: String { fields.map { "\($0.0) \($0.1)" }.joined(separator: "\n") }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the version, the git commit, and the libzmq and RocksDB versions (also: chorus --version).")

    @Flag(help: "Print machine-readable JSON: version, commit, commit_dirty, protocol, libzmq, rocksdb.")
    var json = false

    func run() throws {
        if json {
            printJSON(["version": VersionInfo.version, "commit": BuildInfo.gitCommit, "commit_dirty": BuildInfo.gitDirty,
                       "protocol": Int(Wire.protocolVersion), "libzmq": zmqLibraryVersion(),
                       "rocksdb": RocksDBLibrary.version] as [String: Any])
        } else {
            print(VersionInfo.text)
        }
    }
}
