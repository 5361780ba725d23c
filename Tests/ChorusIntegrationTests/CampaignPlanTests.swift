import ChorusAnalytics
import Foundation
import Testing

/// Campaign plans on real processes (issue 15): a plan from a brief after the audience jobs, the same plan with 1 and
/// 3 workers, approval and immutability, the audit log, exports, bad briefs, and a plan made without the other
/// jobs' outputs that says what it could not decide.
@Suite(.serialized) struct CampaignPlanTests {
    static let brief = """
    name: Spring test
    objective: conversions
    kpi: conversions
    budget: {total: 30000, currency: EUR}
    window: {start: 2026-03-02, end: 2026-03-22}
    channels: [weibo, tiktok, instagram, x, wechat]
    content: {pool: recommend, per_segment: 3}
    constraints:
      spend:
        tiktok: {min: 4000, max: 9000}
        x: {max: 2000}
      posts_per_day: 3
      posts_per_channel_per_day: 1
      min_spacing_hours: 3
      frequency_cap: {impressions: 2, days: 7}
      watch: [brand:nova]
    measurement: {target_lift: 0.5, key: spring-test}
    """

    static let pipeline = """
    name: campaign-inputs
    steps:
      - {name: features, kind: features, params: {as_of: 1759104000}}
      - {name: als, kind: als, after: [features], params: {mode: implicit, rank: 8, iterations: 4, seed: 7}}
      - {name: segments, kind: segments, after: [als], params: {seed: 7, k: 4}}
      - {name: propensity, kind: propensity, after: [segments]}
      - {name: best-times, kind: best-times, after: [segments]}
      - {name: content-insights, kind: content-insights, after: [segments], params: {bootstrap: 10, per_segment: false, per_channel: false}}
    """

    /// A cluster with the sample ingested and the plan's input jobs run.
    static func prepared(workers: Int, dir: String) throws -> TestCluster {
        let cluster = try TestCluster(workers: workers, partitions: 8, replication: 1)
        _ = try cluster.ingestGenerated(users: 600, seed: 5, segments: 4)
        let file = dir + "/inputs-\(workers).yaml"
        try pipeline.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try chorus(["pipeline", "run", file, "--wait", "--json", "--coordinator", cluster.address], timeout: 600)
        #expect(r.status == 0, "\(r.stderr)\n\(r.stdout.suffix(2000))")
        return cluster
    }

    static func show(_ a: String, _ id: String, version: Int = 0) throws -> [String: Any] {
        let r = try chorus(["campaign", "show", id, "--json", "--coordinator", a] + (version > 0 ? ["--version", String(version)] : []))
        #expect(r.status == 0, "\(r.stderr)")
        return r.json
    }

    @Test func aPlanIsMadeExplainedApprovedAndExportedAndIsTheSameWithOneAndThreeWorkers() throws {
        let dir = NSTemporaryDirectory() + "chorus-campaign-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let briefFile = dir + "/brief.yaml"
        try Self.brief.write(toFile: briefFile, atomically: true, encoding: .utf8)

        var plans: [[String: Any]] = []
        for workers in [3, 1] {
            let cluster = try Self.prepared(workers: workers, dir: dir)
            defer { cluster.shutdown() }
            let a = cluster.address
            let made = try chorus(["campaign", "plan", "--brief", briefFile, "--by", "ana", "--json", "--coordinator", a], timeout: 120)
            #expect(made.status == 0, "\(made.stderr)")
            #expect(made.json["campaign_id"] as? String == "spring-test" && made.json["version"] as? Int == 1, "\(made.stdout)")
            let shown = try Self.show(a, "spring-test")
            let plan = try #require(shown["plan"] as? [String: Any])
            plans.append(plan)
            guard workers == 3 else { continue }

            // Audience: chosen segments, each with its reason; every segment is accounted for.
            let segs = (plan["audience"] as? [String: Any])?["segments"] as? [[String: Any]] ?? []
            #expect(segs.count >= 4)
            #expect(segs.contains { $0["chosen"] as? Bool == true })
            #expect(segs.allSatisfy { !($0["reason"] as? String ?? "").isEmpty })
            // Content for every chosen segment, with reasons from ALS and the drivers.
            let content = plan["content"] as? [[String: Any]] ?? []
            #expect(content.count == segs.filter { $0["chosen"] as? Bool == true }.count)
            let items = content.flatMap { $0["items"] as? [[String: Any]] ?? [] }
            #expect(!items.isEmpty && items.contains { ($0["reason"] as? String ?? "").contains("ALS score") })
            // The calendar keeps the brief's rules.
            let posts = (plan["schedule"] as? [String: Any])?["posts"] as? [[String: Any]] ?? []
            #expect(!posts.isEmpty)
            for (_, day) in Dictionary(grouping: posts, by: { $0["date"] as? String ?? "" }) {
                #expect(day.count <= 3)
                #expect(Set(day.map { $0["channel"] as? String ?? "" }).count == day.count)  // 1 per channel and day
            }
            for (_, ps) in Dictionary(grouping: posts, by: { ($0["segment"] as? Int) ?? -9 }) {
                let days = ps.map { Int((($0["at"] as? NSNumber)?.int64Value ?? 0) / 86_400) }
                for w in ((days.min() ?? 0) - 6)...(days.max() ?? 0) { #expect(days.filter { $0 >= w && $0 < w + 7 }.count <= 2) }
            }
            #expect(posts.allSatisfy { ($0["date"] as? String ?? "") >= "2026-03-02" && ($0["date"] as? String ?? "") <= "2026-03-22" })
            // Budget within the limits, adding up; no spend history was ingested, and the plan says so.
            let budget = plan["budget"] as? [String: Any] ?? [:]
            let spend = Dictionary(uniqueKeysWithValues: (budget["channels"] as? [[String: Any]] ?? []).map {
                ($0["channel"] as? String ?? "", ($0["spend"] as? NSNumber)?.doubleValue ?? -1) })
            #expect(abs(spend.values.reduce(0, +) + ((budget["unspent"] as? NSNumber)?.doubleValue ?? 0) - 30000) < 0.1)
            #expect(spend["tiktok"]! >= 4000 && spend["tiktok"]! <= 9000 && spend["x"]! <= 2000)
            let gaps = plan["gaps"] as? [String] ?? []
            #expect(gaps.contains { $0.contains("spend history") }, "\(gaps)")
            // Measurement: the realized arms add up and follow the keyed hash.
            let m = (plan["measurement"] as? [String: Any])?["segments"] as? [[String: Any]] ?? []
            #expect(!m.isEmpty)
            for s in m {
                let users = s["users"] as? Int ?? 0, held = s["holdout_users"] as? Int ?? -1, treated = s["treated_users"] as? Int ?? -1
                #expect(held + treated == users && held > 0)
                let share = (s["holdout_share"] as? NSNumber)?.doubleValue ?? 0
                #expect(abs(Double(held) / Double(max(1, users)) - share) < 0.15, "\(s)")
            }
            // Evidence names the jobs.
            let ev = plan["evidence"] as? [String: Any] ?? [:]
            for k in ["segments", "als", "best_times", "content_insights", "propensity"] { #expect((ev[k] as? String ?? "").hasPrefix("job-"), "\(k): \(ev)") }

            // A second plan under the same id is refused; --replace writes version 2.
            let again = try chorus(["campaign", "plan", "--brief", briefFile, "--coordinator", a], timeout: 120)
            #expect(again.status == 3 && again.stderr.contains("--replace"), "\(again.stderr)")
            // Approval: the latest version, once; the version is then immutable, and a new version needs its own.
            let ok = try chorus(["campaign", "approve", "spring-test", "--by", "ben", "--coordinator", a])
            #expect(ok.status == 0 && ok.stdout.contains("approved spring-test version 1"), "\(ok.stderr)")
            let twice = try chorus(["campaign", "approve", "spring-test", "--by", "ben", "--coordinator", a])
            #expect(twice.status == 3 && twice.stderr.contains("already approved"), "\(twice.stderr)")
            let v2 = try chorus(["campaign", "plan", "--brief", briefFile, "--replace", "--by", "ana", "--json", "--coordinator", a], timeout: 120)
            #expect(v2.status == 0 && v2.json["version"] as? Int == 2, "\(v2.stderr)")
            let old = try Self.show(a, "spring-test", version: 1)
            #expect(old["approved_by"] as? String == "ben")
            #expect(NSDictionary(dictionary: old["plan"] as? [String: Any] ?? [:]).isEqual(to: plan))
            let latest = try Self.show(a, "spring-test")
            #expect(latest["version"] as? Int == 2 && (latest["approved_by"] as? String ?? "x").isEmpty)
            let stale = try chorus(["campaign", "approve", "spring-test", "--by", "ben", "--version", "1", "--coordinator", a])
            #expect(stale.status == 3 && stale.stderr.contains("not the latest"), "\(stale.stderr)")
            // The same data and brief: the same decisions (the evidence differs only by job ids).
            let diff = try chorus(["campaign", "diff", "spring-test", "1", "2", "--json", "--coordinator", a])
            #expect(diff.status == 0, "\(diff.stderr)")
            #expect(((try? JSONSerialization.jsonObject(with: Data(diff.stdout.utf8))) as? [Any])?.isEmpty == true, "\(diff.stdout)")
            // Exports: csv and ics with one row / event per post, each recorded in the log.
            let csv = try chorus(["campaign", "export", "spring-test", "--format", "csv", "--by", "cy", "--coordinator", a])
            #expect(csv.status == 0)
            #expect(csv.stdout.split(separator: "\n").count == posts.count + 1, "\(csv.stdout.prefix(300))")
            let ics = try chorus(["campaign", "export", "spring-test", "--format", "ics", "--out", dir + "/p.ics", "--version", "1", "--coordinator", a])
            #expect(ics.status == 0, "\(ics.stderr)")
            let cal = try String(contentsOfFile: dir + "/p.ics", encoding: .utf8)
            #expect(cal.components(separatedBy: "BEGIN:VEVENT").count - 1 == posts.count && cal.hasPrefix("BEGIN:VCALENDAR"))
            let log = try chorus(["campaign", "log", "spring-test", "--json", "--coordinator", a])
            let entries = (try? JSONSerialization.jsonObject(with: Data(log.stdout.utf8))) as? [[String: Any]] ?? []
            #expect(entries.map { "\($0["action"] ?? "")/\($0["who"] ?? "")/v\($0["version"] ?? "")" }
                    == ["create/ana/v1", "approve/ben/v1", "replan/ana/v2", "export/cy/v2", "export/\(ProcessInfo.processInfo.environment["USER"] ?? "cli")/v1"],
                    "\(log.stdout)")
            let list = try chorus(["campaign", "list", "--coordinator", a])
            #expect(list.stdout.contains("spring-test") && list.stdout.contains("v2") && list.stdout.contains("v1"), "\(list.stdout)")

            // Edits and replans: a fixed budget and a locked schedule survive a replan; a dropped segment stays out.
            let edit = try chorus(["campaign", "edit", "spring-test", "--set", "budget.tiktok=6000", "--lock", "schedule",
                                   "--by", "dee", "--json", "--coordinator", a])
            #expect(edit.status == 0 && edit.json["version"] as? Int == 3, "\(edit.stderr)")
            #expect((edit.json["changes"] as? [String] ?? []).contains { $0.hasPrefix("budget: tiktok") }, "\(edit.stdout)")
            let v3 = try #require(try Self.show(a, "spring-test", version: 3)["plan"] as? [String: Any])
            let posts3 = (v3["schedule"] as? [String: Any])?["posts"] as? [[String: Any]] ?? []
            let replanned = try chorus(["campaign", "replan", "spring-test", "--by", "dee", "--json", "--coordinator", a], timeout: 120)
            #expect(replanned.status == 0 && replanned.json["version"] as? Int == 4, "\(replanned.stderr)")
            let v4 = try #require(try Self.show(a, "spring-test", version: 4)["plan"] as? [String: Any])
            let posts4 = (v4["schedule"] as? [String: Any])?["posts"] as? [[String: Any]] ?? []
            #expect(!posts3.isEmpty && NSArray(array: posts4).isEqual(to: posts3))
            #expect(v4["locks"] as? [String] == ["schedule"])
            let tiktok = ((v4["budget"] as? [String: Any])?["channels"] as? [[String: Any]] ?? []).first { $0["channel"] as? String == "tiktok" }
            #expect(abs(((tiktok?["spend"] as? NSNumber)?.doubleValue ?? 0) - 6000) < 0.01, "\(tiktok ?? [:])")
            #expect((v4["gaps"] as? [String] ?? []).contains { $0.contains("budget.tiktok is fixed at 6000") })
            #expect(v4["changes"] is [String])
            let chosenNow = segs.filter { $0["chosen"] as? Bool == true }.compactMap { $0["segment"] as? Int }
            if chosenNow.count > 1, let g = chosenNow.last {
                #expect(try chorus(["campaign", "edit", "spring-test", "--drop", "segment:\(g)", "--unlock", "schedule", "--by", "dee",
                                    "--coordinator", a]).status == 0)
                #expect(try chorus(["campaign", "replan", "spring-test", "--by", "dee", "--coordinator", a], timeout: 120).status == 0)
                let v6 = try #require(try Self.show(a, "spring-test", version: 6)["plan"] as? [String: Any])
                let s6 = (v6["audience"] as? [String: Any])?["segments"] as? [[String: Any]] ?? []
                let dropped = s6.first { $0["segment"] as? Int == g }
                #expect(dropped?["chosen"] as? Bool == false && (dropped?["reason"] as? String ?? "").contains("dropped"), "\(dropped ?? [:])")
                #expect(!((v6["schedule"] as? [String: Any])?["posts"] as? [[String: Any]] ?? []).contains { $0["segment"] as? Int == g })
            }
            // Edits that do not apply are refused and write nothing.
            for bad in [["--set", "budget.nope=5"], ["--set", "budget.tiktok=99999"], ["--drop", "segment:999"], ["--set", "budget.x=oops"]] {
                let r = try chorus(["campaign", "edit", "spring-test", "--coordinator", a] + bad)
                #expect(r.status == 65, "\(bad): \(r.status) \(r.stderr)")
            }
            let after = try chorus(["campaign", "log", "spring-test", "--json", "--coordinator", a])
            let actions = ((try? JSONSerialization.jsonObject(with: Data(after.stdout.utf8))) as? [[String: Any]] ?? []).map { "\($0["action"] ?? "")" }
            #expect(actions.filter { $0 == "edit" }.count == (chosenNow.count > 1 ? 2 : 1) && actions.filter { $0 == "replan" }.count >= 2, "\(actions)")
        }
        // 1 and 3 workers: the same plan, apart from the job ids of its evidence.
        #expect(plans.count == 2)
        if plans.count == 2 {
            for section in ["audience", "content", "schedule", "budget", "measurement", "risks", "gaps", "brief"] {
                #expect(NSDictionary(dictionary: ["s": plans[0][section] ?? NSNull()]).isEqual(to: ["s": plans[1][section] ?? NSNull()]),
                        "section \(section) differs between 3 and 1 workers")
            }
        }
    }

    @Test func badBriefsAreRefusedAndMissingOutputsAreSaidNotInvented() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 1, extraArgs: ["--block-self-approval"])
        defer { cluster.shutdown() }
        let a = cluster.address
        let bad = cluster.dir + "/bad.yaml"
        try """
        name: Bad
        objective: reach
        budget: {total: -5, currency: usd}
        window: {start: 2026-02-30, end: 2026-01-01}
        channels: [x, x]
        """.write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try chorus(["campaign", "plan", "--brief", bad, "--coordinator", a])
        #expect(refused.status == 65, "\(refused.stderr)")
        for field in ["objective", "budget.total", "budget.currency", "window.start", "channels[1]"] {
            #expect(refused.stderr.contains(field), "\(field) not named: \(refused.stderr)")
        }
        #expect(try chorus(["campaign", "list", "--coordinator", a]).stdout.contains("no campaign plans yet"))

        // Only users, content and interactions: no job has run. The plan is still made, and says what it lacks.
        _ = try cluster.ingestGenerated(users: 400, seed: 3)
        let briefFile = cluster.dir + "/brief.yaml"
        try Self.brief.write(toFile: briefFile, atomically: true, encoding: .utf8)
        let made = try chorus(["campaign", "plan", "--brief", briefFile, "--id", "bare", "--json", "--coordinator", a], timeout: 120)
        #expect(made.status == 0, "\(made.stderr)")
        let plan = try #require(try Self.show(a, "bare")["plan"] as? [String: Any])
        let gaps = (plan["gaps"] as? [String] ?? []).joined(separator: "\n")
        for missing in ["segments", "ALS", "best-times", "content-insights", "spend history", "propensity"] {
            #expect(gaps.contains(missing), "\(missing) not said: \(gaps)")
        }
        #expect((plan["budget"] as? [String: Any])?["method"] as? String == "even split")
        let segs = (plan["audience"] as? [String: Any])?["segments"] as? [[String: Any]] ?? []
        #expect(segs.count == 1 && segs[0]["name"] as? String == "all eligible users", "\(segs)")
        let text = try chorus(["campaign", "show", "bare", "--coordinator", a])
        #expect(text.status == 0 && text.stdout.contains("NOT DECIDED FROM DATA") && text.stdout.contains("SCHEDULE"), "\(text.stdout)")
        #expect(try chorus(["campaign", "show", "nope", "--coordinator", a]).status == 66)

        // Sentiment and the complaint themes of the watched brand: a replan names them as risks.
        #expect(try chorus(["model", "import", Binary.root + "/models/sentiment-default.chsm", "--coordinator", a]).status == 0)
        let sentiment = try chorus(["sentiment", "run", "--keywords", "nova", "--coordinator", a], timeout: 300)
        #expect(sentiment.status == 0, "\(sentiment.stderr)")
        let themes = try chorus(["sentiment", "themes", "brand:nova", "--coordinator", a], timeout: 120)
        #expect(themes.status == 0, "\(themes.stderr)")
        #expect(try chorus(["campaign", "replan", "bare", "--by", "ana", "--coordinator", a], timeout: 120).status == 0)
        // This coordinator blocks self-approval: ana wrote the latest version, so ben approves it.
        let own = try chorus(["campaign", "approve", "bare", "--by", "ana", "--coordinator", a])
        #expect(own.status == 64 && own.stderr.contains("self-approval is blocked"), "\(own.stderr)")
        #expect(try chorus(["campaign", "approve", "bare", "--by", "ben", "--coordinator", a]).status == 0)
        let replanned = try #require(try Self.show(a, "bare")["plan"] as? [String: Any])
        let risks = replanned["risks"] as? [[String: Any]] ?? []
        #expect(risks.contains { $0["key"] as? String == "brand:nova" && $0["kind"] as? String == "complaint_themes" }, "\(risks)")
        #expect(((replanned["evidence"] as? [String: Any])?["themes"] as? String ?? "").hasPrefix("job-"))
    }

    /// The holdout's power formula against statsmodels' NormalIndPower on the same inputs.
    @Test func powerMatchesStatsmodels() throws {
        guard let py = PeersVenv.install("statsmodels") else {
            print("skipped: statsmodels could not be installed (offline?)")
            return
        }
        let cases: [(d: Double, n: Double, alpha: Double, ratio: Double)] = [
            (0.2, 392.443, 0.05, 1), (0.05, 5000, 0.05, 0.25), (0.1, 800, 0.01, 1.0 / 9), (0.3, 50, 0.1, 2), (0.02, 100_000, 0.05, 0.05),
        ]
        let script = """
        import sys
        from statsmodels.stats.power import NormalIndPower
        p = NormalIndPower()
        for line in sys.stdin:
            d, n, a, r = map(float, line.split())
            print(p.power(effect_size=d, nobs1=n, alpha=a, ratio=r), p.solve_power(effect_size=None, nobs1=n, alpha=a, power=0.8, ratio=r), p.solve_power(effect_size=d, nobs1=None, alpha=a, power=0.8, ratio=r))
        """
        let dir = NSTemporaryDirectory() + "chorus-power-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try script.write(toFile: dir + "/p.py", atomically: true, encoding: .utf8)
        try cases.map { "\($0.d) \($0.n) \($0.alpha) \($0.ratio)" }.joined(separator: "\n").write(toFile: dir + "/in.txt", atomically: true, encoding: .utf8)
        let r = try run("/bin/bash", ["-c", "'\(py)' '\(dir)/p.py' < '\(dir)/in.txt'"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = r.stdout.split(separator: "\n").map { $0.split(separator: " ").compactMap { Double($0) } }
        #expect(rows.count == cases.count)
        for (c, row) in zip(cases, rows) where row.count == 3 {
            let power = Experiment.power(effectSize: c.d, nobs1: c.n, alpha: c.alpha, ratio: c.ratio)
            let mde = Experiment.detectableEffect(nobs1: c.n, alpha: c.alpha, power: 0.8, ratio: c.ratio)
            let n = Experiment.requiredNobs1(effectSize: c.d, alpha: c.alpha, power: 0.8, ratio: c.ratio)
            #expect(abs(power - row[0]) < 1e-9, "power \(c): \(power) vs \(row[0])")
            // statsmodels solves with brentq at its default tolerance (about 1e-6 here); ours is bisected to 1e-13.
            #expect(abs(mde - row[1]) < 1e-5 * max(1, row[1]), "effect \(c): \(mde) vs \(row[1])")
            #expect(abs(n - row[2]) < 1e-4 * row[2], "nobs1 \(c): \(n) vs \(row[2])")
        }
    }
}
