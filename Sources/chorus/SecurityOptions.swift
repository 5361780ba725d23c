import ArgumentParser
import ChorusModel
import ChorusRuntime
import Foundation

/// The transport security flags every command that talks to a cluster takes (docs/security.md).
struct SecurityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("""
        Keys directory: this process's NAME.key_secret, the coordinator's coordinator.key, and the allow-list (*.key). \
        Unset: $CHORUS_KEYS, else the config file's keys. Create one with `chorus keys init`.
        """, valueName: "DIR"))
    var keys: String?

    @Option(name: .customLong("key-name"), help: ArgumentHelp("""
        Which NAME.key_secret of the keys directory is this process's key. Unset: servers use `coordinator` or \
        `worker`; clients $CHORUS_KEY_NAME, else the only secret key in the directory.
        """, valueName: "NAME"))
    var keyName: String?

    @Flag(help: "Plaintext and unauthenticated: anyone who can reach a port is trusted. For a laptop only; logged as a warning.")
    var insecure = false

    /// The keys directory in effect: flag, then environment, then config file.
    var keysDir: String? {
        keys ?? ProcessInfo.processInfo.environment["CHORUS_KEYS"].flatMap { $0.isEmpty ? nil : $0 } ?? ChorusConfig.loaded.keys
    }

    /// This process's security. `server` is the default key name of a server (`coordinator`, `worker`); nil for a
    /// client, which also reads CHORUS_KEY_NAME.
    func resolve(server defaultName: String?) throws -> NodeSecurity {
        if insecure {
            if keys != nil || keyName != nil {
                throw ChorusError(.usage, "--insecure and --keys/--key-name disagree: give one of them")
            }
            FileHandle.standardError.write(Data("""
                warning: --insecure: plaintext, unauthenticated transport; anyone who can reach \
                \(defaultName == nil ? "the cluster" : "this process's port") can read and change all data\n
                """.utf8))
            return .insecure
        }
        guard let dir = keysDir else {
            throw ChorusError(.usage, "no keys: the cluster's transport is CurveZMQ and needs a keys directory",
                              hint: "pass --keys DIR or set CHORUS_KEYS (create one with `chorus keys init --out DIR`), "
                                + "or --insecure for a plaintext cluster on a laptop")
        }
        let name = keyName ?? (defaultName == nil
            ? ProcessInfo.processInfo.environment["CHORUS_KEY_NAME"].flatMap { $0.isEmpty ? nil : $0 } : defaultName)
        return try NodeSecurity.load(keysDir: dir, name: name)
    }
}
