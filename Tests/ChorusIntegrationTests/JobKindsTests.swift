import Foundation
import Testing

/// The job kinds as users see them: `chorus job kinds`, the example kind `top-hashtags` checked against an
/// independent count of the generated files, and the same results from 1 and 3 workers for the kinds on the SDK.
@Suite(.serialized) struct JobKindsTests {
    @Test func jobKindsListsEveryKindAndOneKindsParametersFromItsDeclarations() throws {
        let all = try chorus(["job", "kinds"])
        #expect(all.status == 0, "\(all.stderr)")
        for k in ["features", "top-hashtags", "als", "sentiment", "themes", "sentiment-train"] {
            #expect(all.stdout.contains(k), "\(k) missing from:\n\(all.stdout)")
        }
        let one = try chorus(["job", "kinds", "top-hashtags"])
        #expect(one.status == 0)
        #expect(one.stdout.contains("n=10") && one.stdout.contains("hashtags kept per channel"), "\(one.stdout)")
        let json = try chorus(["job", "kinds", "--json"]).json
        let kinds = json["kinds"] as? [[String: Any]] ?? []
        #expect(kinds.contains { $0["kind"] as? String == "top-hashtags" && !(($0["parameters"] as? [Any]) ?? []).isEmpty })
        let bad = try chorus(["job", "kinds", "top-hashtag"])
        #expect(bad.status == 64 && bad.stderr.contains("unknown job kind"), "\(bad.stderr)")
        #expect(try chorus(["job", "submit", "--help"]).stdout.contains("top-hashtags parameters"))
    }

    /// Top hashtags per channel counted here from the generated JSONL files.
    static func oracle(_ dir: String, n: Int) throws -> [String: [[String: String]]] {
        var tags: [String: [String]] = [:]
        for line in try String(contentsOfFile: dir + "/content.jsonl", encoding: .utf8).split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            tags[o["content_id"] as? String ?? ""] = o["hashtags"] as? [String] ?? []
        }
        var counts: [String: [String: Int]] = [:]
        for line in try String(contentsOfFile: dir + "/interactions.jsonl", encoding: .utf8).split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            for t in tags[o["content_id"] as? String ?? ""] ?? [] {
                counts[o["channel"] as? String ?? "", default: [:]][t, default: 0] += 1
            }
        }
        return counts.mapValues { byTag in
            byTag.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(n)
                .map { ["hashtag": $0.key, "interactions": String($0.value)] }
        }
    }

    func run(workers: Int) throws -> (topHashtags: [String: Any], features: [String: Any],
                                      oracle: [String: [[String: String]]]) {
        let cluster = try TestCluster(workers: workers, partitions: 16, replication: 1)
        defer { cluster.shutdown() }
        let g = try cluster.ingestGenerated(users: 300, seed: 12)
        let t = try chorus(["job", "submit", "top-hashtags", "--param", "n=4", "--wait", "--json",
                            "--coordinator", cluster.address], timeout: 120)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.json["tasks_done"] as? Int == 16, "\(t.stdout)")
        let f = try chorus(["job", "submit", "features", "--as-of", "1759104000", "--wait", "--json",
                            "--coordinator", cluster.address], timeout: 120)
        #expect(f.status == 0, "\(f.stderr)")
        let bad = try chorus(["job", "submit", "top-hashtags", "--param", "n=0", "--coordinator", cluster.address])
        #expect(bad.status == 64 && bad.stderr.contains("n=0"), "\(bad.stderr)")
        return (t.json["summary"] as? [String: Any] ?? [:], f.json["summary"] as? [String: Any] ?? [:],
                try Self.oracle(g.dir, n: 4))
    }

    @Test func topHashtagsMatchesAnIndependentCountAndOneAndThreeWorkersAgree() throws {
        let one = try run(workers: 1)
        let three = try run(workers: 3)
        let got = one.topHashtags["top_hashtags_by_channel"] as? [String: [[String: String]]] ?? [:]
        let want = one.oracle
        #expect(!want.isEmpty)
        #expect(got == want, "got \(got)\nwant \(want)")
        #expect(NSDictionary(dictionary: one.topHashtags).isEqual(to: three.topHashtags))
        #expect(NSDictionary(dictionary: one.features).isEqual(to: three.features), "\(one.features)\n\(three.features)")
    }
}

extension JobKindsTests {
    /// A summary without its timings (they differ between any two runs).
    static func untimed(_ v: Any) -> Any {
        if let d = v as? [String: Any] {
            return d.filter { !$0.key.contains("seconds") && $0.key != "workers" }.mapValues(untimed)
        }
        if let a = v as? [Any] { return a.map(untimed) }
        return v
    }

    func sentimentRun(workers: Int) throws -> (sentiment: NSDictionary, themes: NSDictionary, profile: NSDictionary) {
        let cluster = try TestCluster(workers: workers, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        try cluster.ingestGenerated(users: 300, seed: 11)
        let a = cluster.address
        let s = try chorus(["job", "submit", "sentiment", "--param", "keywords=nova", "--wait", "--json", "--coordinator", a],
                           timeout: 300)
        #expect(s.status == 0, "\(s.stderr)")
        let t = try chorus(["job", "submit", "themes", "--param", "key=brand:nova", "--param", "k=3", "--wait", "--json",
                            "--coordinator", a], timeout: 300)
        #expect(t.status == 0, "\(t.stderr)")
        let p = try chorus(["profile", "get", "u0000007", "--json", "--coordinator", a]).json
        return (NSDictionary(dictionary: Self.untimed(s.json["summary"] ?? [:]) as? [String: Any] ?? [:]),
                NSDictionary(dictionary: Self.untimed(t.json["summary"] ?? [:]) as? [String: Any] ?? [:]),
                NSDictionary(dictionary: (p["sentiment"] as? [String: Any]) ?? [:]))
    }

    @Test func sentimentAndThemesGiveTheSameResultsOnOneAndThreeWorkers() throws {
        let one = try sentimentRun(workers: 1)
        let three = try sentimentRun(workers: 3)
        #expect(one.sentiment.count > 0 && one.themes.count > 0 && one.profile.count > 0, "\(one)")
        #expect(one.sentiment.isEqual(to: three.sentiment as! [AnyHashable: Any]), "\(one.sentiment)\n\(three.sentiment)")
        #expect(one.themes.isEqual(to: three.themes as! [AnyHashable: Any]), "\(one.themes)\n\(three.themes)")
        #expect(one.profile.isEqual(to: three.profile as! [AnyHashable: Any]), "\(one.profile)\n\(three.profile)")
    }
}
