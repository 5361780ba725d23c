import Foundation
import Testing

/// `chorus campaign report` in a real browser: headless Chromium (Debian's `chromium`, installed by
/// scripts/install-deps.sh) renders the page to a PNG, and the PNG is decoded (Tests/Fixtures/png_stats.py, standard
/// library only) to check that the charts are drawn: the fill colours of the bars, the heatmap and the curves are
/// there, over many pixels, not a blank page. The pages come from the fixture plans via `--from-json`, so no cluster
/// is needed.
@Suite(.serialized) struct CampaignReportBrowserTests {
    static let browser: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
    static let fixtures = Binary.root + "/Tests/Fixtures"
    static let skipReason: Comment = "chromium is not installed (scripts/install-deps.sh installs it): the report is not rendered in a browser"

    struct Stats {
        var width = 0, height = 0, distinct = 0, nonBackground = 0, rowsDrawn = 0
        var counts: [String: Int] = [:]
    }

    /// Renders the fixture to HTML with the binary, then to a PNG with Chromium; the PNG's statistics for these colours.
    static func render(_ fixture: String, colours: [String], dir: String, width: Int = 1280, height: Int = 4000,
                       evaluation: String? = nil) throws -> (html: String, png: String, stats: Stats) {
        let html = dir + "/" + fixture.replacingOccurrences(of: ".json", with: ".html")
        let r = try chorus(["campaign", "report", "--from-json", fixtures + "/" + fixture, "--out", html, "--json"]
                           + (evaluation.map { ["--evaluation-json", fixtures + "/" + $0] } ?? []))
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.json
        #expect(out["path"] as? String == html)
        let size = (try? FileManager.default.attributesOfItem(atPath: html)[.size] as? Int) ?? -1
        #expect((out["bytes"] as? NSNumber)?.intValue == size && size > 10_000, "bytes \(out["bytes"] ?? "?"), file \(size)")

        let png = html.replacingOccurrences(of: ".html", with: ".png")
        // As root (CI) Chromium needs --no-sandbox; the profile goes to the test's directory.
        let shot = try run(browser!, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                                      "--user-data-dir=\(dir)/profile", "--screenshot=\(png)", "--window-size=\(width),\(height)",
                                      "file://" + html], timeout: 120)
        #expect(shot.status == 0 && FileManager.default.fileExists(atPath: png), "chromium: \(shot.status)\n\(shot.stderr)")
        let py = try run("/usr/bin/env", ["python3", fixtures + "/png_stats.py", png] + colours, timeout: 120)
        #expect(py.status == 0, "png_stats.py: \(py.stderr)")
        let o = (try? JSONSerialization.jsonObject(with: Data(py.stdout.utf8))) as? [String: Any] ?? [:]
        func i(_ k: String) -> Int { (o[k] as? NSNumber)?.intValue ?? 0 }
        let counts = (o["counts"] as? [String: Any] ?? [:]).mapValues { ($0 as? NSNumber)?.intValue ?? 0 }
        return (html, png, Stats(width: i("width"), height: i("height"), distinct: i("distinct"), nonBackground: i("non_background"),
                                 rowsDrawn: i("rows_drawn"), counts: counts))
    }

    static func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "chorus-report-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test(.enabled(if: browser != nil, skipReason)) func theSamplePlanRendersWithItsChartsDrawn() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Chosen and other segments' bars, the busiest heatmap cell, an empty cell, spend bars (free and at a
        // limit), and the "not available" box of the curves and the forecast.
        let colours = ["0f766e", "cbd5e1", "1d4ed8", "f1f5f9", "2563eb", "b45309", "f9fafb"]
        let (_, _, s) = try Self.render("campaign-plan.json", colours: colours, dir: dir)
        #expect(s.width == 1280 && s.height == 4000)
        #expect(s.distinct > 200, "\(s.distinct) colours: the page looks blank")
        #expect(s.rowsDrawn > 2000, "\(s.rowsDrawn) rows drawn of \(s.height)")
        // A bar is 18 px high and up to 520 px long (the two chosen: ~15,000 px), a heatmap cell 32 × 24 px, a spend bar
        // 22 px high; without the charts (svg.chart hidden) all of these but the "not available" boxes count 0.
        for (c, least) in [("0f766e", 10000), ("cbd5e1", 1000), ("1d4ed8", 300), ("f1f5f9", 100 * 700), ("2563eb", 3 * 5000),
                           ("b45309", 2000), ("f9fafb", 2 * 10000)] {
            #expect((s.counts[c] ?? 0) >= least, "#\(c): \(s.counts[c] ?? 0) pixels, expected at least \(least)")
        }
    }

    @Test(.enabled(if: browser != nil, skipReason)) func theCurvesVariantRendersItsCurvesAndForecast() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The curves' interval bands, the forecast's band, and the chosen spend's marker.
        let colours = ["ccfbf1", "bfdbfe", "dc2626", "1d4ed8"]
        let (html, _, s) = try Self.render("campaign-plan-curves.json", colours: colours, dir: dir, height: 6000)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.contains("class=\"chart curve\"") && !page.contains("not available"))
        #expect(s.distinct > 200)
        for (c, least) in [("ccfbf1", 5 * 2000), ("bfdbfe", 5000), ("dc2626", 5 * 100)] {
            #expect((s.counts[c] ?? 0) >= least, "#\(c): \(s.counts[c] ?? 0) pixels, expected at least \(least)")
        }
    }

    /// The sample-launch plan with its evaluation (campaign-eval.json): the results section's charts are drawn, the
    /// forest plot's intervals and the pacing charts' spend lines, and Chromium's DOM has them with their sizes.
    @Test(.enabled(if: browser != nil, skipReason)) func theResultsOfAnEvaluationAreDrawn() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // CampaignReportResults.swift's spentColour, verdictColour["none"] and the planned posts' marks.
        let spent = "0891b2", none = "64748b", marks = "f59e0b"
        let (html, _, s) = try Self.render("campaign-plan-fitted.json", colours: [spent, none, marks], dir: dir, height: 8000,
                                           evaluation: "campaign-eval.json")
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.contains("<section id=\"results\">") && !page.contains("not measured yet"))
        #expect(s.rowsDrawn > 4000, "\(s.rowsDrawn) rows drawn of \(s.height): the page ends before the results")
        // The spend lines of the five pacing charts (4 px wide, partly under the dashed plan), the "no detectable
        // effect" intervals of the forest plot (8 px high; the verdict cards' borders add ~1,200), the planned posts'
        // marks (18 of 4 × 7 px). Without the charts only the cards' borders are left.
        for (c, least) in [(spent, 1000), (none, 2500), (marks, 250)] {
            #expect((s.counts[c] ?? 0) >= least, "#\(c): \(s.counts[c] ?? 0) pixels, expected at least \(least)")
        }
        let dom = try run(Self.browser!, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                           "--user-data-dir=\(dir)/profile2", "--dump-dom", "file://" + html], timeout: 120)
        #expect(dom.status == 0, "\(dom.stderr)")
        let sizes = try NSRegularExpression(pattern: #"<svg class="chart (forest|pacing)" width="(\d+)" height="(\d+)""#)
        let found = sizes.matches(in: dom.stdout, range: NSRange(dom.stdout.startIndex..., in: dom.stdout))
        #expect(found.count == 1 + 5, "one forest plot and five pacing charts in the DOM, found \(found.count)")
        for m in found {
            let w = Int(dom.stdout[Range(m.range(at: 2), in: dom.stdout)!]) ?? 0, h = Int(dom.stdout[Range(m.range(at: 3), in: dom.stdout)!]) ?? 0
            #expect(w >= 300 && h >= 150, "a chart of \(w) × \(h)")
        }
    }

    /// Chromium's parser keeps every chart as an SVG element with its size (escaped data cannot break the markup):
    /// its DOM after loading the page, with `--dump-dom`.
    @Test(.enabled(if: browser != nil, skipReason)) func everyChartIsAnSVGElementOfChromiumsDOM() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let html = dir + "/r.html"
        let r = try chorus(["campaign", "report", "--from-json", Self.fixtures + "/campaign-plan-curves.json", "--out", html])
        #expect(r.status == 0 && r.stdout == html + "\n", "\(r.stdout)\(r.stderr)")
        let dom = try run(Self.browser!, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                           "--user-data-dir=\(dir)/profile", "--dump-dom", "file://" + html], timeout: 120)
        #expect(dom.status == 0, "\(dom.stderr)")
        // audience bars, heatmap, spend, five curves, forecast
        #expect(dom.stdout.components(separatedBy: "<svg class=\"chart").count - 1 == 9)
        let sizes = try NSRegularExpression(pattern: #"<svg class="chart [a-z]+" width="(\d+)" height="(\d+)""#)
        let found = sizes.matches(in: dom.stdout, range: NSRange(dom.stdout.startIndex..., in: dom.stdout))
        #expect(found.count == 9)
        for m in found {
            let w = Int(dom.stdout[Range(m.range(at: 1), in: dom.stdout)!]) ?? 0, h = Int(dom.stdout[Range(m.range(at: 2), in: dom.stdout)!]) ?? 0
            #expect(w >= 300 && h >= 100, "a chart of \(w) × \(h)")
        }
    }
}

/// `chorus campaign report ID` against a real cluster: it reads the stored plan with its history, writes the page,
/// and its report is in the plan's log; after an approval the next page says so and lists the first report.
@Suite(.serialized) struct CampaignReportClusterTests {
    @Test func theReportOfAStoredPlanFollowsItsApprovalAndIsLogged() throws {
        let cluster = try TestCluster(workers: 1, partitions: 4, replication: 1)
        defer { cluster.shutdown() }
        try cluster.ingestGenerated(users: 300, seed: 11)
        let c = ["--coordinator", cluster.address]
        let plan = try chorus(["campaign", "plan", "--brief", Binary.root + "/docs/examples/campaign-brief.yaml", "--by", "ana", "--json"] + c,
                              timeout: 300)
        try #require(plan.status == 0, "\(plan.stderr)\n\(cluster.logs())")
        let id = try #require(plan.json["campaign_id"] as? String)

        let first = cluster.dir + "/first.html"
        let r1 = try chorus(["campaign", "report", id, "--out", first, "--by", "carol"] + c)
        #expect(r1.status == 0 && r1.stdout == first + "\n", "\(r1.stdout)\(r1.stderr)")
        let page1 = try String(contentsOfFile: first, encoding: .utf8)
        #expect(page1.contains("NOT APPROVED") && page1.contains("v1 (this report)"))
        for section in ["audience", "content", "schedule", "budget", "measurement", "risks", "gaps", "evidence", "history"] {
            #expect(page1.contains("<section id=\"\(section)\">"), "no \(section)")
        }
        // Only the data was loaded (no job has run, so no ALS ranking): today that plan has no posts, and the page says
        // so instead of drawing an empty heatmap.
        let shown = try chorus(["campaign", "show", id, "--json"] + c).json
        let posts = (((shown["plan"] as? [String: Any])?["schedule"] as? [String: Any])?["posts"] as? [Any])?.count ?? -1
        #expect(posts >= 0)
        if posts == 0 {
            #expect(page1.contains("not available:</b> the schedule has no posts") && !page1.contains("<svg class=\"chart heatmap\""))
        } else {
            #expect(page1.contains("<svg class=\"chart heatmap\"") && page1.contains("\(posts) post(s), times in UTC"))
        }
        #expect(page1.contains("<svg class=\"chart spend\""))
        // The log has the report, with its size.
        let log = try chorus(["campaign", "log", id, "--json"] + c)
        let rows = (try? JSONSerialization.jsonObject(with: Data(log.stdout.utf8))) as? [[String: Any]] ?? []
        let bytes = (try FileManager.default.attributesOfItem(atPath: first)[.size] as? Int) ?? -1
        #expect(rows.contains { $0["action"] as? String == "report" && $0["who"] as? String == "carol"
            && ($0["detail"] as? String ?? "").contains("\(bytes) bytes") }, "\(rows)")

        #expect(try chorus(["campaign", "approve", id, "--by", "ben"] + c).status == 0)
        let second = cluster.dir + "/second.html"
        let r2 = try chorus(["campaign", "report", id, "--version", "1", "--out", second, "--json"] + c)
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(r2.json["path"] as? String == second)
        let page2 = try String(contentsOfFile: second, encoding: .utf8)
        #expect(page2.contains("APPROVED by ben") && !page2.contains("NOT APPROVED"))
        #expect(page2.contains("<td>carol</td><td>report</td>"), "the first report is in the second page's log")
        // An unknown plan or version: exit 66, and no file.
        let missing = cluster.dir + "/missing.html"
        #expect(try chorus(["campaign", "report", id, "--version", "9", "--out", missing] + c).status == 66)
        #expect(try chorus(["campaign", "report", "no-such-plan", "--out", missing] + c).status == 66)
        #expect(!FileManager.default.fileExists(atPath: missing))
    }
    /// After `campaign evaluate`, the report of the plan has the results of the latest look: here of simulated outcomes
    /// whose delivery lost half the holdout's assignments, so the sample-ratio check flags the segments.
    @Test func theReportShowsTheLatestEvaluation() throws {
        // The plan of CampaignPlanTests, after its input jobs (a plan needs chosen segments to have an audience).
        let dir = NSTemporaryDirectory() + "chorus-report-eval-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cluster = try CampaignPlanTests.prepared(workers: 1, dir: dir)
        defer { cluster.shutdown() }
        let c = ["--coordinator", cluster.address]
        try CampaignPlanTests.brief.write(toFile: dir + "/brief.yaml", atomically: true, encoding: .utf8)
        let plan = try chorus(["campaign", "plan", "--brief", dir + "/brief.yaml", "--by", "ana", "--json"] + c, timeout: 300)
        try #require(plan.status == 0, "\(plan.stderr)\n\(cluster.logs())")
        let id = try #require(plan.json["campaign_id"] as? String)
        #expect(try chorus(["campaign", "approve", id, "--by", "ben"] + c).status == 0)
        let before = cluster.dir + "/before.html"
        #expect(try chorus(["campaign", "report", id, "--out", before] + c).status == 0)
        #expect(try String(contentsOfFile: before, encoding: .utf8).contains("not measured yet"))

        let sim = try chorus(["campaign", "simulate", id, "--out", cluster.dir + "/sim", "--drop-holdout", "0.6", "--ingest"] + c,
                             timeout: 300)
        try #require(sim.status == 0, "\(sim.stdout)\(sim.stderr)\n\(cluster.logs())")
        let eval = try chorus(["campaign", "evaluate", id, "--json"] + c, timeout: 300)
        try #require(eval.status == 0, "\(eval.stdout)\(eval.stderr)\n\(cluster.logs())")
        let segments = eval.json["segments"] as? [[String: Any]] ?? []
        let mismatches = (eval.json["srm"] as? [[String: Any]] ?? []).filter { $0["mismatch"] as? Bool == true }.count

        let after = cluster.dir + "/after.html"
        let r = try chorus(["campaign", "report", id, "--out", after] + c)
        #expect(r.status == 0, "\(r.stderr)")
        let page = try String(contentsOfFile: after, encoding: .utf8)
        #expect(page.contains("<section id=\"results\">") && !page.contains("not measured yet"))
        #expect(page.contains("Look <b>1</b> of plan version 1"))
        #expect(page.components(separatedBy: "<div class=\"verdict ").count - 1 == segments.count)
        #expect(page.components(separatedBy: "<tr class=\"srm\">").count - 1 == mismatches)
        #expect(segments.count > 0 && mismatches > 0, "\(eval.json["srm"] ?? "no srm")")
        #expect(page.contains("results not valid") && page.contains("<div class=\"verdict invalid\">"))
        #expect(page.contains("<svg class=\"chart forest\"") && page.contains("<svg class=\"chart pacing\""))
        // The report is still logged.
        let log = try chorus(["campaign", "log", id, "--json"] + c)
        let rows = (try? JSONSerialization.jsonObject(with: Data(log.stdout.utf8))) as? [[String: Any]] ?? []
        #expect(rows.filter { $0["action"] as? String == "report" }.count == 2, "\(rows)")
    }
}
