import Foundation
import Testing

/// Campaign measurement on real processes (issue 16): the audience list with its arms, simulated outcomes with a
/// planted lift ingested (idempotently, with bad outcomes rejected and counted), looks during and after the
/// campaign, a verdict that finds the planted lift and none where there is none, a planted sample-ratio mismatch
/// flagged, and the measured lift calibrating the next plan's response curves.
@Suite(.serialized) struct CampaignMeasureTests {
    static let brief = """
    name: Measure test
    objective: conversions
    kpi: conversions
    budget: {total: 40000, currency: USD}
    window: {start: 2025-10-06, end: 2025-10-26}
    channels: [weibo, tiktok, instagram, x, wechat]
    target: {segments: [0, 1, 2]}
    content: {pool: recommend, per_segment: 2}
    constraints:
      posts_per_day: 3
    measurement: {holdout_share: 0.5, key: measure-test}
    """

    static let pipeline = """
    name: measure-inputs
    steps:
      - {name: features, kind: features, params: {as_of: 1759104000}}
      - {name: als, kind: als, after: [features], params: {mode: implicit, rank: 8, iterations: 4, seed: 7}}
      - {name: segments, kind: segments, after: [als], params: {seed: 7, k: 3}}
      - {name: propensity, kind: propensity, after: [segments]}
    """

    static func csvRows(_ path: String) throws -> [[String]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    @Test func aCampaignIsMeasuredFlaggedWhenItsArmsAreOffAndItsLiftCalibratesTheNextPlan() throws {
        let cluster = try TestCluster(workers: 3, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address, dir = cluster.dir
        let gen = dir + "/gen"
        let g = try chorus(["generate", "--users", "1500", "--seed", "5", "--segments", "3", "--spend-history", "--out", gen, "--json"])
        #expect(g.status == 0, "\(g.stderr)")
        let files = ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl", "spend.jsonl"].map { gen + "/" + $0 }
        let ing = try chorus(["ingest", "--coordinator", a, "--json"] + files, timeout: 300)
        #expect(ing.status == 0, "\(ing.stderr)")
        try Self.pipeline.write(toFile: dir + "/inputs.yaml", atomically: true, encoding: .utf8)
        let p = try chorus(["pipeline", "run", dir + "/inputs.yaml", "--wait", "--json", "--coordinator", a], timeout: 600)
        #expect(p.status == 0, "\(p.stderr)\n\(p.stdout.suffix(2000))")
        try Self.brief.write(toFile: dir + "/brief.yaml", atomically: true, encoding: .utf8)
        let made = try chorus(["campaign", "plan", "--brief", dir + "/brief.yaml", "--by", "ana", "--json", "--coordinator", a], timeout: 180)
        #expect(made.status == 0, "\(made.stderr)")
        let plan = try #require(try chorus(["campaign", "show", "measure-test", "--json", "--coordinator", a]).json["plan"] as? [String: Any])
        let design = (plan["measurement"] as? [String: Any])?["segments"] as? [[String: Any]] ?? []
        try #require(design.count >= 2, "the test needs two chosen segments: \(plan["audience"] ?? "")")

        // 1. The audience: every designed user once, with the plan's arms.
        let audience = dir + "/audience.csv"
        let au = try chorus(["campaign", "audience", "measure-test", "--out", audience, "--json", "--coordinator", a], timeout: 120)
        #expect(au.status == 0, "\(au.stderr)")
        let rows = try Self.csvRows(audience)
        #expect(Set(rows.map { $0[0] }).count == rows.count)
        for s in design {
            let g = String((s["segment"] as? NSNumber)?.intValue ?? -9)
            let mine = rows.filter { $0[1] == g }
            #expect(mine.count == (s["users"] as? NSNumber)?.intValue, "segment \(g)")
            #expect(mine.filter { $0[3] == "holdout" }.count == (s["holdout_users"] as? NSNumber)?.intValue, "segment \(g)")
        }

        // 2. Simulated outcomes: a planted +400% in the first segment, none in the others.
        let first = (design[0]["segment"] as? NSNumber)?.intValue ?? 0
        let others = design.dropFirst().map { (($0["segment"] as? NSNumber)?.intValue ?? 0) }
        let sim = dir + "/sim"
        let simulated = try chorus(["campaign", "simulate", "measure-test", "--out", sim, "--lift", "0", "--lift-for", "\(first):*=4",
                                    "--ingest", "--json", "--coordinator", a], timeout: 180)
        #expect(simulated.status == 0, "\(simulated.stderr)")
        #expect((simulated.json["ingested"] as? [String: Any])?["rejected"] as? Int == 0, "\(simulated.stdout)")
        // Ingesting them again stores nothing.
        let again = try chorus(["ingest", "--json", "--coordinator", a, sim + "/interactions-campaign.jsonl", sim + "/outcomes.jsonl",
                                sim + "/spend-campaign.jsonl"], timeout: 120)
        #expect(again.status == 0 && again.json["stored"] as? Int == 0 && again.json["rejected"] as? Int == 0, "\(again.stdout)")

        // 3. Bad outcomes: each rejected with its line and reason, counted; the good line is a duplicate.
        let good = try String(contentsOfFile: sim + "/outcomes.jsonl", encoding: .utf8).split(separator: "\n").first.map(String.init) ?? ""
        let bad = dir + "/outcomes-bad.jsonl"
        try ([good,
              #"{"campaign":"nope","version":1,"arm":"treatment","user_id":"u1","event":"click","channel":"x","ts":1759795060}"#,
              #"{"campaign":"measure-test","version":7,"arm":"treatment","user_id":"u1","event":"click","channel":"x","ts":1759795060}"#,
              #"{"campaign":"measure-test","version":1,"arm":"control","user_id":"u1","event":"click","channel":"x","ts":1759795060}"#,
              #"{"campaign":"measure-test","version":1,"arm":"holdout","segment":99,"user_id":"u1","event":"assigned","ts":1759795060}"#,
              #"{"campaign":"measure-test","version":1,"arm":"treatment","user_id":"u1","event":"click","channel":"myspace","ts":1759795060}"#,
              #"{"campaign":"measure-test","version":1,"arm":"treatment","user_id":"u1","event":"purchase","ts":1759795060}"#,
             ].joined(separator: "\n") + "\n").write(toFile: bad, atomically: true, encoding: .utf8)
        let rejects = dir + "/rejects.jsonl"
        let b = try chorus(["ingest", "--json", "--max-rejects", "100%", "--rejects", rejects, "--coordinator", a, bad])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.json["read"] as? Int == 7 && b.json["rejected"] as? Int == 6 && b.json["duplicates"] as? Int == 1, "\(b.stdout)")
        let reasons = try String(contentsOfFile: rejects, encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["line"] != nil }.map { "\($0["line"] ?? 0): \($0["reason"] ?? "")" }
        for expected in ["2: unknown campaign 'nope'", "3: campaign 'measure-test' has no plan version 7", "4: unknown arm 'control'",
                         "5: campaign 'measure-test' v1 has no segment 99", "6: campaign 'measure-test' v1 does not run on channel 'myspace'",
                         "7: unknown event 'purchase'"] {
            #expect(reasons.contains { $0.hasPrefix(expected) }, "\(expected) in \(reasons)")
        }

        // 4. A look during the campaign: running, the always-valid intervals.
        let mid = try chorus(["campaign", "evaluate", "measure-test", "--as-of", "2025-10-16T00:00:00Z", "--json", "--coordinator", a], timeout: 180)
        #expect(mid.status == 0, "\(mid.stderr)")
        #expect((mid.json["window"] as? [String: Any])?["finished"] as? Bool == false)
        #expect(mid.json["look"] as? Int == 1)
        for s in mid.json["segments"] as? [[String: Any]] ?? [] {
            let v = s["verdict"] as? String ?? ""
            #expect(v == "win" || v == "loss" || v == "no detectable effect yet", "\(s)")
        }

        // 5. After the end: the verdicts, the estimate against the truth, the SRM check, pacing.
        let end = try chorus(["campaign", "evaluate", "measure-test", "--as-of", "2025-12-05T00:00:00Z", "--json", "--coordinator", a], timeout: 180)
        #expect(end.status == 0, "\(end.stderr)")
        let e = end.json
        #expect(e["look"] as? Int == 2 && (e["window"] as? [String: Any])?["finished"] as? Bool == true)
        #expect((e["totals"] as? [String: Any])?["users"] as? Int == rows.count)
        #expect((e["totals"] as? [String: Any])?["arm_mismatch"] as? Int == 0)
        #expect((e["srm"] as? [[String: Any]] ?? []).allSatisfy { $0["mismatch"] as? Bool == false }, "\(e["srm"] ?? "")")
        let segments = e["segments"] as? [[String: Any]] ?? []
        func verdict(_ g: Int) -> String { segments.first { ($0["segment"] as? NSNumber)?.intValue == g }?["verdict"] as? String ?? "?" }
        #expect(verdict(first) == "win", "\(segments)")
        for g in others { #expect(verdict(g) == "no detectable effect", "\(segments)") }
        // The planted cell's estimate is within three standard errors of the expected difference in the truth file.
        let truth = try Self.csvRows(sim + "/truth/campaign_outcomes.csv").filter { $0[2] == String(first) }
        let users = truth.reduce(0.0) { $0 + Double($1[5])! + Double($1[6])! }
        let expected = truth.reduce(0.0) { $0 + Double($1[9])! * (Double($1[5])! + Double($1[6])!) } / users
        let lift = try #require((e["lifts"] as? [[String: Any]] ?? []).first {
            ($0["segment"] as? NSNumber)?.intValue == first && $0["primary"] as? Bool == true })
        let est = (lift["absolute"] as? NSNumber)?.doubleValue ?? -1
        let se = ((lift["welch"] as? [String: Any])?["standard_error"] as? NSNumber)?.doubleValue ?? 0
        #expect(abs(est - expected) < 3 * se, "estimate \(est) ± \(se), expected \(expected)")
        #expect((e["pacing"] as? [[String: Any]] ?? []).contains { ($0["status"] as? String) == "on plan" })
        let shown = try chorus(["campaign", "evaluate", "measure-test", "--show", "--look", "1", "--json", "--coordinator", a])
        #expect(shown.status == 0 && shown.json["look"] as? Int == 1)
        let text = try chorus(["campaign", "evaluate", "measure-test", "--show", "--coordinator", a])
        #expect(text.stdout.contains("segment \(first): win") && text.stdout.contains("pacing"), "\(text.stdout)")

        // 6. The loop: a replan calibrates its curves with the measured experiment, and says so.
        let re = try chorus(["campaign", "replan", "measure-test", "--by", "ana", "--json", "--coordinator", a], timeout: 180)
        #expect(re.status == 0, "\(re.stderr)")
        let replanned = try #require(try chorus(["campaign", "show", "measure-test", "--json", "--coordinator", a]).json["plan"] as? [String: Any])
        let used = (replanned["budget"] as? [String: Any])?["experiments_used"] as? [String] ?? []
        #expect(used.contains { $0.hasPrefix("measure-test v1 look 2") }, "\(replanned["budget"] ?? "")")
        #expect(((replanned["evidence"] as? [String: Any])?["experiments"] as? String ?? "").contains("measure-test v1 look 2"))

        // 7. A planted sample-ratio mismatch (half the holdout's assignments lost) on another plan of the same brief.
        let other = try chorus(["campaign", "plan", "--brief", dir + "/brief.yaml", "--id", "srm-test", "--by", "ana", "--json", "--coordinator", a], timeout: 180)
        #expect(other.status == 0, "\(other.stderr)")
        let srmSim = try chorus(["campaign", "simulate", "srm-test", "--out", dir + "/srm", "--drop-holdout", "0.5", "--ingest", "--json",
                                 "--coordinator", a], timeout: 180)
        #expect(srmSim.status == 0, "\(srmSim.stderr)")
        let srm = try chorus(["campaign", "evaluate", "srm-test", "--as-of", "2025-12-05T00:00:00Z", "--json", "--coordinator", a], timeout: 180)
        #expect(srm.status == 0, "\(srm.stderr)")
        #expect((srm.json["srm"] as? [[String: Any]] ?? []).allSatisfy { $0["mismatch"] as? Bool == true }, "\(srm.json["srm"] ?? "")")
        #expect((srm.json["segments"] as? [[String: Any]] ?? []).allSatisfy {
            ($0["verdict"] as? String) == "invalid (sample ratio mismatch)" && $0["valid"] as? Bool == false })
        #expect((srm.json["calibration"] as? [[String: Any]] ?? []).allSatisfy { $0["valid"] as? Bool == false })
        #expect(cluster.coordinator.isRunning && cluster.workers.allSatisfy(\.isRunning))
    }
}
