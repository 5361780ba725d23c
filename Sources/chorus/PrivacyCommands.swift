import ArgumentParser
import ChorusModel
import ChorusRuntime
import Foundation

struct Privacy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pseudonymous user ids: make the cluster's secret, and map ids to their pseudonyms.",
        discussion: reflow("""
        A cluster created with `chorus coordinator --pseudonymous-ids FINGERPRINT` stores every user id as
        `p-` and 32 hex digits: an HMAC-SHA-256 of the id under a secret that only the ingest clients and the
        analysts who map ids hold. Without the secret, nobody can tell which user a pseudonym stands for, nor
        enumerate common ids. Pseudonymized data is still personal data (docs/security.md).
        """),
        subcommands: [Secret.self, Pseudonym.self])

    struct Secret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new pseudonym secret (32 random bytes, mode 0600) and print its fingerprint.",
            discussion: reflow("""
            Create the cluster with `chorus coordinator --pseudonymous-ids FINGERPRINT`, then ingest with
            --pseudonym-secret FILE (or CHORUS_PSEUDONYM_SECRET). Keep the file safe: without it, ids cannot be
            mapped to their pseudonyms and new data cannot be ingested. An existing file is never overwritten.

            Example: chorus privacy secret --out /etc/chorus/pseudonym.secret
            """))
        @Option(help: ArgumentHelp("The file to write.", valueName: "FILE")) var out: String
        @Flag(help: "Print machine-readable JSON: {file, fingerprint}.") var json = false

        func run() async throws {
            try await guarded {
                let p = try PseudonymSecret.create(out)
                if json {
                    printJSON(["file": out, "fingerprint": p.fingerprint])
                } else {
                    print("pseudonym secret → \(out) (mode 0600)")
                    print("fingerprint \(p.fingerprint): chorus coordinator … --pseudonymous-ids \(p.fingerprint)")
                }
            }
        }
    }

    struct Pseudonym: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the pseudonym of each user id: the id the cluster stores (for `chorus profile get`).",
            discussion: reflow("""
            Example: chorus profile get "$(chorus privacy pseudonym u0000042 --pseudonym-secret s.secret)"
            """))
        @Argument(help: "User ids.") var ids: [String]
        @Option(help: ArgumentHelp("The cluster's pseudonym secret. Unset: $CHORUS_PSEUDONYM_SECRET.", valueName: "FILE"))
        var pseudonymSecret: String?
        @Flag(help: "Print machine-readable JSON: {\"pseudonyms\": {id: pseudonym}}.") var json = false

        func run() async throws {
            try await guarded {
                guard let path = pseudonymSecret ?? ProcessInfo.processInfo.environment["CHORUS_PSEUDONYM_SECRET"]
                        .flatMap({ $0.isEmpty ? nil : $0 }) else {
                    throw ChorusError(.usage, "no pseudonym secret", hint: "pass --pseudonym-secret FILE or set CHORUS_PSEUDONYM_SECRET")
                }
                let p = try PseudonymSecret.load(path)
                let trimmed = ids.map { $0.trimmingCharacters(in: .whitespaces) }
                if json {
                    printJSON(["pseudonyms": Dictionary(trimmed.map { ($0, p.pseudonym($0)) }, uniquingKeysWith: { a, _ in a })])
                } else if trimmed.count == 1 {
                    print(p.pseudonym(trimmed[0]))
                } else {
                    for id in trimmed { print("\(id)\t\(p.pseudonym(id))") }
                }
            }
        }
    }
}
