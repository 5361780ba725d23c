import Foundation
import Testing

/// Pseudonymous user ids on real processes: the ingest client replaces every user id by its keyed hash, so the
/// cluster never holds a raw id, and an analyst with the secret maps an id to the profile.
@Suite(.serialized) struct PrivacyTests {
    @Test func aPseudonymousClusterNeverHoldsARawUserId() throws {
        let dir = NSTemporaryDirectory() + "chorus-pseudo-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let secret = dir + "/cluster.secret", other = dir + "/other.secret"
        let made = try chorus(["privacy", "secret", "--out", secret, "--json"])
        #expect(made.status == 0, "\(made.stderr)")
        let fingerprint = made.json["fingerprint"] as? String ?? ""
        #expect(fingerprint.count == 16)
        let mode = (try FileManager.default.attributesOfItem(atPath: secret)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600)
        #expect(try chorus(["privacy", "secret", "--out", secret]).status == 3)  // never overwritten
        #expect(try chorus(["privacy", "secret", "--out", other]).status == 0)

        let cluster = try TestCluster(workers: 2, partitions: 8, extraArgs: ["--pseudonymous-ids", fingerprint])
        defer { cluster.shutdown() }
        let a = cluster.address
        let gen = cluster.dir + "/gen"
        #expect(try chorus(["generate", "--users", "30", "--seed", "5", "--out", gen]).status == 0)
        let files = ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl"].map { gen + "/" + $0 }

        // Without the secret, or with another one: refused before anything is sent.
        let bare = try chorus(["ingest", "--coordinator", a, "--json"] + files)
        #expect(bare.status == 64 && bare.stderr.contains("pseudonymous user ids"), "\(bare.stderr)")
        let wrong = try chorus(["ingest", "--coordinator", a, "--json", "--pseudonym-secret", other] + files)
        #expect(wrong.status == 64 && wrong.stderr.contains("fingerprint"), "\(wrong.stderr)")

        let ok = try chorus(["ingest", "--coordinator", a, "--json", "--pseudonym-secret", secret] + files)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try chorus(["job", "submit", "features", "--coordinator", a, "--wait", "--json"], timeout: 120).status == 0)

        // The raw id is unknown to the cluster; its pseudonym has the profile.
        #expect(try chorus(["profile", "get", "u0000001", "--coordinator", a]).status == 66)
        let p = try chorus(["privacy", "pseudonym", "u0000001", "--pseudonym-secret", secret]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(p.hasPrefix("p-") && p.count == 34, "\(p)")
        let profile = try chorus(["profile", "get", p, "--coordinator", a, "--json"])
        #expect(profile.status == 0, "\(profile.stderr)")
        #expect(!profile.stdout.contains("u0000001"))

        // The whole export holds pseudonyms only.
        let export = cluster.dir + "/profiles.jsonl"
        #expect(try chorus(["profile", "export", "--coordinator", a, "--out", export]).status == 0)
        let profiles = try exportedProfiles(export)
        #expect(profiles.count == 30 && profiles.keys.allSatisfy { $0.hasPrefix("p-") }, "\(profiles.keys.sorted().prefix(3))")
        let text = try String(contentsOfFile: export, encoding: .utf8)
        #expect(!text.contains("\"u00000"), "a raw user id in the export")

        // A re-ingest with the secret counts nothing twice.
        let again = try chorus(["ingest", "--coordinator", a, "--json", "--pseudonym-secret", secret] + files)
        #expect(again.status == 0 && again.json["stored"] as? Int == 0, "\(again.stdout)")
    }
}
