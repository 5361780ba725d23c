import Foundation
import Testing

/// Job parameters are checked when the job is submitted, against a live coordinator (issue 11, items 9, 11, 12).
@Suite(.serialized) struct JobSubmitValidationTests {
    @Test func badParametersFailAtSubmitAndExplicitALSNeedsRatings() throws {
        let cluster = try TestCluster(workers: 1, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address
        func submit(_ args: [String]) throws -> Result {
            try chorus(["job", "submit", "--coordinator", a] + args)
        }
        for (args, needle) in [
            (["features", "--param", "nosuchparam=1"], "unknown parameter 'nosuchparam'"),
            (["features", "--param", "as_of=notanumber"], "as_of"),
            (["sentiment", "--param", "sensitivity=abc"], "sensitivity"),
            (["sentiment", "--param", "min_count=-3"], "min_count"),
            (["als", "--param", "rank=16"], "mode is required"),
            (["themes", "--param", "key=nokey"], "KIND:NAME"),
        ] {
            let r = try submit(args)
            #expect(r.status == 64, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(needle), "\(args): \(r.stderr)")
        }
        // Nothing was created by the refused submissions.
        let list = try chorus(["job", "list", "--coordinator", a, "--json"])
        #expect((list.json["jobs"] as? [Any])?.isEmpty ?? true, "\(list.stdout)")

        // The shipped model file carries the version it had where it was trained; stored here it is version 1,
        // and its notes say why the numbers differ.
        let shown = try chorus(["model", "show", "sentiment-default", "--coordinator", a, "--json"])
        #expect(shown.status == 0 && shown.stdout.contains("was version 2 where it was exported"), "\(shown.stdout)")
        // A missing model is "not found" at submit, not a failed job later.
        let noModel = try chorus(["sentiment", "run", "--model", "nosuch", "--coordinator", a])
        #expect(noModel.status == 66 && noModel.stderr.contains("no model 'nosuch'"), "\(noModel.stderr)")
        let noKey = try chorus(["sentiment", "themes", "nokey", "--coordinator", a])
        #expect(noKey.status == 64 && noKey.stderr.contains("KIND:NAME"), "\(noKey.stderr)")

        // Explicit ALS on engagement data without ratings fails with what to do, instead of fitting money as stars.
        let gen = cluster.dir + "/gen"
        #expect(try chorus(["generate", "--users", "200", "--seed", "3", "--out", gen]).status == 0)
        let ing = try chorus(["ingest", "--coordinator", a, "--rejects", cluster.dir + "/rej.jsonl"]
                             + ["users.jsonl", "content.jsonl", "interactions.jsonl"].map { gen + "/" + $0 })
        #expect(ing.status == 0, "\(ing.stderr)")
        let explicit = try submit(["als", "--param", "mode=explicit", "--param", "rank=4", "--param", "iterations=2",
                                   "--wait", "--json"])
        #expect(explicit.status == 1, "\(explicit.stderr)")
        #expect((explicit.json["error"] as? String ?? explicit.stderr).contains("use mode=implicit"),
                "\(explicit.stdout) \(explicit.stderr)")
    }
}
