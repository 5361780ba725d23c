import Foundation
import Testing

/// The `content-insights` job on real processes: the planted content effects of `chorus generate --content-effects`
/// (truth/content_effects.csv) recovered with the right sign and inside their intervals, 1 and 3 workers giving
/// the same result, and `chorus insights content` (table, JSON, --channel, the error before any job).
@Suite(.serialized) struct ContentInsightsTests {
    static let users = 12_000, seed = 5

    /// One generated data set for the suite.
    static let generated: String = {
        let dir = NSTemporaryDirectory() + "chorus-ci-" + UUID().uuidString
        let g = try? chorus(["generate", "--users", String(users), "--seed", String(seed), "--content-effects",
                             "--out", dir], timeout: 300)
        precondition(g?.status == 0, "generate failed: \(g?.stderr ?? "")")
        return dir
    }()

    struct Run {
        var summary: [String: Any]
        var all: [String: Any]
        var table: String
        var channel: [String: Any]
        var before: (status: Int32, stderr: String)
    }

    func run(workers: Int) throws -> Run {
        let cluster = try TestCluster(workers: workers, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address
        let before = try chorus(["insights", "content", "--coordinator", a])
        let files = ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl"].map { Self.generated + "/" + $0 }
        let ing = try chorus(["ingest", "--coordinator", a, "--json"] + files, timeout: 300)
        #expect(ing.status == 0, "\(ing.stderr)")
        let job = try chorus(["job", "submit", "content-insights", "--wait", "--json", "--coordinator", a], timeout: 300)
        #expect(job.status == 0, "\(job.stderr)\n\(cluster.logs())")
        #expect(job.json["state"] as? String == "succeeded", "\(job.stdout)")
        let all = try chorus(["insights", "content", "--json", "--all", "--coordinator", a])
        #expect(all.status == 0, "\(all.stderr)")
        let table = try chorus(["insights", "content", "--n", "3", "--coordinator", a])
        #expect(table.status == 0, "\(table.stderr)")
        let channel = try chorus(["insights", "content", "--channel", "tiktok", "--json", "--coordinator", a])
        #expect(channel.status == 0, "\(channel.stderr)")
        return Run(summary: job.json["summary"] as? [String: Any] ?? [:], all: all.json, table: table.stdout,
                   channel: channel.json, before: (before.status, before.stderr))
    }

    @Test func plantedContentEffectsAreRecoveredAndOneAndThreeWorkersAgree() throws {
        let one = try run(workers: 1)
        let three = try run(workers: 3)

        // Before any job: a clear error that says what to run.
        #expect(one.before.status != 0)
        #expect(one.before.stderr.contains("chorus job submit content-insights"), "\(one.before.stderr)")

        // Each planted effect (log rate ratios, the scale of the fit): right sign, inside its 95% interval.
        let effects = one.all["effects"] as? [[String: Any]] ?? []
        let truth = try String(contentsOfFile: Self.generated + "/truth/content_effects.csv", encoding: .utf8)
        var checked = 0
        for line in truth.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",").map(String.init)
            let (group, level, reference, planted) = (f[0], f[1], f[2], Double(f[3]) ?? .nan)
            let e = try #require(effects.first { $0["group"] as? String == group && $0["level"] as? String == level },
                                 "no effect for \(group) \(level)")
            if reference != "none" { #expect(e["reference"] as? String == reference, "\(e)") }
            let est = (e["log_effect"] as? NSNumber)?.doubleValue ?? .nan
            let lo = (e["low"] as? NSNumber)?.doubleValue ?? .nan, hi = (e["high"] as? NSNumber)?.doubleValue ?? .nan
            #expect(est.sign == planted.sign && abs(est) > 0.05, "\(group) \(level): planted \(planted), fitted \(est)")
            #expect(lo <= planted && planted <= hi, "\(group) \(level): planted \(planted) outside [\(lo), \(hi)] (\(est))")
            checked += 1
        }
        #expect(checked == 5)
        // The drivers in words, strongest first: video is the largest planted positive, text the largest negative.
        let drivers = one.all["drivers"] as? [String: Any] ?? [:]
        let pos = (drivers["positive"] as? [[String: Any]] ?? []).compactMap { $0["words"] as? String }
        let neg = (drivers["negative"] as? [[String: Any]] ?? []).compactMap { $0["words"] as? String }
        #expect(pos.contains { $0.hasPrefix("video posts: +") && $0.hasSuffix("vs image") }, "\(pos)")
        #expect(neg.contains { $0.hasPrefix("text posts: −") }, "\(neg)")
        #expect(one.table.contains("raise it:") && one.table.contains("video posts: +"), "\(one.table)")
        #expect(((one.all["lambda_grid"] as? [Any]) ?? []).count == 9)
        #expect(one.channel["scope"] as? String == "channel/tiktok")
        #expect((one.summary["scopes"] as? [String] ?? []).contains("channel/weibo"))

        // 1 and 3 workers: the same rows in post order and the same resamples, so the same result, bit for bit.
        func comparable(_ d: [String: Any]) -> NSDictionary {
            NSDictionary(dictionary: (JobKindsTests.untimed(d) as? [String: Any] ?? [:]).filter { $0.key != "job_id" })
        }
        #expect(comparable(one.all).isEqual(to: comparable(three.all) as! [AnyHashable: Any]))
        #expect(comparable(one.summary).isEqual(to: comparable(three.summary) as! [AnyHashable: Any]))
        #expect(comparable(one.channel).isEqual(to: comparable(three.channel) as! [AnyHashable: Any]))
    }

    @Test func badParametersAreRefusedAtSubmit() throws {
        let cluster = try TestCluster(workers: 1, partitions: 4, replication: 1)
        defer { cluster.shutdown() }
        let r = try chorus(["job", "submit", "content-insights", "--param", "bootstrap=-1", "--coordinator", cluster.address])
        #expect(r.status == 64, "\(r.stderr)")
        let s = try chorus(["insights", "content", "--channel", "x", "--segment", "1", "--coordinator", cluster.address])
        #expect(s.status == 64, "\(s.stderr)")
    }
}
