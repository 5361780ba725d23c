import ArgumentParser
import ChorusModel
import ChorusRuntime
import Foundation

// MARK: keys

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "CurveZMQ keys of the cluster's principals (the transport does not use them yet: issue 17).",
        discussion: reflow("""
        Every process and user of a secured cluster has a key pair and a role: worker, admin, operator, analyst or
        ingest. The coordinator and the workers will let in only the public keys of their allow-list (a directory
        of NAME.key files) and check each request against the sender's role. Files are CZMQ zcert certificates.
        """),
        subcommands: [Generate.self])

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
                let (pub, sec) = try CurveKeys.write(cert, to: out)
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
