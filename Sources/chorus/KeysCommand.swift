import ArgumentParser
import ChorusModel
import ChorusRuntime
import Foundation

// MARK: keys

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "CurveZMQ keys of the cluster's principals: make them, and reload the allow-list.",
        discussion: reflow("""
        Every process and user of a cluster has a key pair and a role: worker, admin, operator, analyst or
        ingest. The coordinator and the workers let in only the public keys of their allow-list (the NAME.key
        files of their keys directory) and check each request against the sender's role (docs/security.md).
        Files are CZMQ zcert certificates.
        """),
        subcommands: [Init.self, Generate.self, Reload.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a keys directory for a new cluster: coordinator and worker (role worker) and admin.",
            discussion: reflow("""
            Keys that exist already are kept, so running it again is harmless. Start the servers with
            --keys DIR (or CHORUS_KEYS=DIR) and run client commands with CHORUS_KEYS=DIR CHORUS_KEY_NAME=admin.
            For more principals, `chorus keys generate`. On several machines, give each worker its own key
            (--key-name) and copy only the public *.key files and your own NAME.key_secret.

            Example: chorus keys init --out /etc/chorus/keys
            """))

        @Option(help: ArgumentHelp("Directory to write the keys into (created if missing).", valueName: "DIR"))
        var out: String
        @Flag(help: "Print machine-readable JSON: {dir, created, kept}.") var json = false

        func run() async throws {
            try await guarded {
                let (created, kept) = try CurveKeys.initCluster(dir: out)
                if json {
                    printJSON(["dir": out, "created": created, "kept": kept])
                } else {
                    print("keys in \(out): " + (created.isEmpty ? "nothing new" : "made \(created.joined(separator: ", "))")
                          + (kept.isEmpty ? "" : "; kept \(kept.joined(separator: ", "))"))
                    print("servers:  --keys \(out)      clients:  export CHORUS_KEYS=\(out) CHORUS_KEY_NAME=admin")
                }
            }
        }
    }

    struct Reload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the coordinator and every live worker re-read their allow-list, without a restart (admin).",
            discussion: reflow("""
            New connections are checked against the new list; connections already let in are not disturbed. To
            rotate a key, add the new NAME.key beside the old one (a principal may have two keys), reload, move
            the client to the new key, then delete the old NAME.key and reload again. SIGHUP to one server does
            the same for that server only. Exit 69 when a worker could not reload (the others did).
            """))

        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await guarded {
                let client = try options.client()
                defer { client.close() }
                let message = try await client.reloadKeys()
                if options.json {
                    printJSON(["result": message])
                } else {
                    print(message.replacingOccurrences(of: "; ", with: "\n"))
                }
            }
        }
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new key pair: DIR/NAME.key (public, with name and role) and DIR/NAME.key_secret (mode 0600).",
            discussion: reflow("""
            Copy NAME.key into the allow-list directory of the coordinator and the workers; keep NAME.key_secret
            where only the principal can read it. Existing files are never overwritten (exit 3).

            Example: chorus keys generate --name ingest-1 --role ingest --out /etc/chorus/keys
            """))

        @Option(help: "The principal's name: letters, digits, '-', '_' and '.'.") var name: String
        @Option(help: ArgumentHelp("worker, admin, operator, analyst or ingest.", valueName: "ROLE")) var role: String
        @Option(help: ArgumentHelp("Directory to write the two files into (created if missing).", valueName: "DIR"))
        var out: String
        @Option(help: ArgumentHelp("""
            Name the files FILE.key and FILE.key_secret instead of NAME's: a second key of the same principal, for a             rotation (clients then pick it with --key-name FILE).
            """, valueName: "FILE"))
        var file: String?
        @Flag(help: "Print machine-readable JSON: {name, role, public_key, public_file, secret_file}.") var json = false

        func validate() throws {
            if CurveKeys.Role(rawValue: role) == nil {
                throw ValidationError("--role must be one of " + CurveKeys.Role.allCases.map(\.rawValue).joined(separator: ", "))
            }
        }

        func run() async throws {
            try await guarded {
                let pair = try CurveKeys.generate()
                let cert = CurveKeys.Certificate(name: name, role: CurveKeys.Role(rawValue: role)!, publicKey: pair.publicKey,
                                                 secretKey: pair.secretKey)
                let (pub, sec) = try CurveKeys.write(cert, to: out, file: file)
                if json {
                    printJSON(["name": name, "role": role, "public_key": pair.publicKey, "public_file": pub, "secret_file": sec])
                } else {
                    print("public key \(pair.publicKey) (\(role)) → \(pub)")
                    print("secret key → \(sec) (mode 0600: keep it where only \(name) can read it)")
                }
            }
        }
    }
}
