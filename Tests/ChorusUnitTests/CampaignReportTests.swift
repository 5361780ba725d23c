@testable import ChorusData
import Foundation
import Testing

/// The HTML report of a plan (ChorusData/CampaignReport.swift) on real plan documents as `chorus campaign show --json`
/// printed them (Tests/Fixtures/campaign-plan.json: an even split without spend history; campaign-plan-fitted.json:
/// response curves fitted by the job, with its log) and on a variant with made-up curves, an extrapolated channel, a
/// second version and a flagged item (campaign-plan-curves.json, made by make-curves-variant.py).
@Suite struct CampaignReportTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func meta(_ o: [String: Any]) -> CampaignReport.Meta {
        CampaignReport.Meta(id: o["campaign_id"] as? String ?? "", title: "Winter launch", version: (o["version"] as? NSNumber)?.intValue ?? 0,
                            latestVersion: (o["latest_version"] as? NSNumber)?.intValue ?? 0, author: o["author"] as? String ?? "",
                            createdAt: o["created_at"] as? String ?? "", approvedBy: o["approved_by"] as? String ?? "")
    }

    static func render(_ o: [String: Any], versions: [CampaignReport.VersionRow] = [], audit: [CampaignReport.AuditRow] = []) throws -> String {
        CampaignReport.html(plan: try #require(o["plan"] as? [String: Any]), meta: meta(o), versions: versions, audit: audit)
    }

    /// The text of the element with this id up to the next `</section>` or `</header>`.
    static func section(_ html: String, _ id: String) -> String {
        guard let start = html.range(of: "id=\"\(id)\"") else { return "" }
        let end = html.range(of: "</section>", range: start.upperBound..<html.endIndex)
            ?? html.range(of: "</header>", range: start.upperBound..<html.endIndex)
        return String(html[start.lowerBound..<(end?.upperBound ?? html.endIndex)])
    }

    static func count(_ needle: String, in s: String) -> Int { s.components(separatedBy: needle).count - 1 }

    @Test func theSamplePlanHasEverySectionAndSaysWhatIsMissing() throws {
        let o = try Self.load("campaign-plan.json")
        let html = try Self.render(o)
        for id in CampaignReport.sections { #expect(html.contains("id=\"\(id)\""), "no section \(id)") }
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.hasSuffix("</html>\n"))
        // Not approved: the badge, in the header.
        #expect(Self.section(html, "summary").contains("NOT APPROVED"))
        #expect(Self.section(html, "summary").contains("USD 50,000"))
        // Audience: 7 rows, 2 chosen, and one bar per segment in its chart (chosen ones in colour).
        let audience = Self.section(html, "audience")
        #expect(Self.count("<tr class=\"chosen\">", in: audience) == 2)
        #expect(Self.count("fill=\"\(CampaignReport.accent)\"", in: audience) == 2)
        #expect(Self.count("fill=\"\(CampaignReport.muted)\"", in: audience) == 5)
        #expect(audience.contains("weibo · fashion · 20–23h UTC"))
        // Content: both chosen segments with their 25 items each.
        let content = Self.section(html, "content")
        #expect(content.contains("Segment 5 · weibo · fashion · 20–23h UTC: 25 item(s)"))
        #expect(content.contains("Segment 1 · tiktok · gaming · 0–3h UTC: 25 item(s)"))
        #expect(Self.count("<code>c0", in: content) == 50)
        // The heatmap: 168 cells, whose counts add up to the 18 posts.
        let schedule = Self.section(html, "schedule")
        #expect(Self.count("post(s)</title></rect>", in: schedule) == 168)
        let counts = try NSRegularExpression(pattern: #"UTC: (\d+) post\(s\)</title>"#)
        let sum = counts.matches(in: schedule, range: NSRange(schedule.startIndex..., in: schedule))
            .map { Int(schedule[Range($0.range(at: 1), in: schedule)!])! }.reduce(0, +)
        #expect(sum == 18)
        #expect(schedule.contains("Mon 2026-01-05"))
        // Budget: the even split, wechat at its max, and "not available" boxes that say why (no curves, no forecast).
        let budget = Self.section(html, "budget")
        #expect(budget.contains("even split"))
        #expect(budget.contains("<tr class=\"binding\"><td>wechat</td>"))
        #expect(Self.count("class=\"unavailable\"><b>not available:</b> no spend history is stored", in: budget) == 2)
        #expect(!budget.contains("class=\"chart curve\"") && !budget.contains("class=\"chart forecast\""))
        #expect(!budget.contains("Marginal return") && !budget.contains("class=\"alert\""))
        // Measurement: both segments flagged (neither detects a 10% lift), with their arms.
        let measurement = Self.section(html, "measurement")
        #expect(Self.count("<tr class=\"flagged\">", in: measurement) == 2)
        #expect(measurement.contains("158 / 154 of 312"))
        #expect(Self.section(html, "risks").contains("brand:nova") && Self.section(html, "risks").contains("电池"))
        #expect(Self.section(html, "gaps").contains("no spend history"))
        #expect(Self.section(html, "evidence").contains("job-000007"))
        // History without the log: the one version, and a note.
        let history = Self.section(html, "history")
        #expect(history.contains("v1 (this report)") && history.contains("The log was not available"))
    }

    @Test func theCurvesVariantDrawsCurvesTheForecastAndTheHistory() throws {
        let o = try Self.load("campaign-plan-curves.json")
        let versions = (o["versions"] as? [[String: Any]] ?? []).map {
            CampaignReport.VersionRow(version: ($0["version"] as? NSNumber)?.intValue ?? 0, createdAt: $0["created_at"] as? String ?? "",
                                      author: $0["author"] as? String ?? "", action: $0["action"] as? String ?? "",
                                      summary: $0["summary"] as? String ?? "", approvedBy: $0["approved_by"] as? String ?? "")
        }
        let audit = (o["audit"] as? [[String: Any]] ?? []).map {
            CampaignReport.AuditRow(at: $0["at"] as? String ?? "", who: $0["who"] as? String ?? "", action: $0["action"] as? String ?? "",
                                    version: ($0["version"] as? NSNumber)?.intValue ?? 0, detail: $0["detail"] as? String ?? "")
        }
        #expect(versions.count == 2 && audit.count == 4)
        let html = try Self.render(o, versions: versions, audit: audit)
        for id in CampaignReport.sections { #expect(html.contains("id=\"\(id)\""), "no section \(id)") }
        #expect(Self.section(html, "summary").contains("APPROVED by ben") && !html.contains("NOT APPROVED"))
        let budget = Self.section(html, "budget")
        #expect(!budget.contains("not available"))
        // One chart per channel: its line, its band, the chosen spend (a red line and a dot) and the history's max.
        #expect(Self.count("class=\"chart curve\"", in: budget) == 5)
        #expect(Self.count("<polygon", in: budget) == 6)  // five bands and the forecast's
        #expect(Self.count("<circle cx=", in: budget) == 5 + 3)  // chosen spends and the three weeks
        #expect(budget.contains("chosen USD 14,250"))
        #expect(Self.count("stroke-dasharray", in: budget) == 5)
        #expect(budget.contains("Expected conversions in the window: <b>170.9</b> (80% interval 163.6 … 178.2)"))
        #expect(Self.count("class=\"chart forecast\"", in: budget) == 1)
        #expect(budget.contains(">2026-01-05</text>") && budget.contains(">week starting</text>"))
        // The fitted split's columns, and wechat, whose chosen spend is past its history, flagged three times: the
        // warning, its row, its curve.
        #expect(budget.contains("<th class=\"n\">Marginal return</th>") && budget.contains("fit R² 0.91 on 104 weeks"))
        #expect(budget.contains("<p class=\"alert\">⚠ the plan spends more per week than the history ever did on wechat"))
        #expect(budget.contains("<tr class=\"flagged\"><td>wechat</td>") && budget.contains("largest spend per week was 2,133.33"))
        #expect(budget.contains("wechat: expected conversions ⚠ extrapolated") && !budget.contains("tiktok: expected conversions ⚠"))
        // The chosen spend sits on the curve: the dot of tiktok's chart is at its interpolated value.
        let points = try #require(((o["plan"] as? [String: Any])?["budget"] as? [String: Any])?["curves"] as? [[String: Any]])
        let tiktok = try #require(points.first { $0["channel"] as? String == "tiktok" })
        let pts = (tiktok["points"] as? [[String: Any]] ?? []).map { (($0["spend"] as! NSNumber).doubleValue, ($0["kpi"] as! NSNumber).doubleValue) }
        let y = try #require(CampaignReport.interpolate(pts, at: 14250))
        #expect(y > pts.first!.1 && y < pts.last!.1)
        // The flagged item is highlighted.
        let content = Self.section(html, "content")
        #expect(Self.count("<tr class=\"flagged\">", in: content) == 1 && content.contains("⚠ topic=fashion has a negative alert"))
        #expect(content.contains("1 flagged"))
        // History: both versions, v2 current and approved, and the log with the approval marked.
        let history = Self.section(html, "history")
        #expect(history.contains("v2 (this report)") && history.contains("<td>by ben</td>"))
        #expect(Self.count("<tr class=\"approved\">", in: history) == 1)
        #expect(history.contains("ics, 18 posts to launch.ics"))
    }

    @Test func everyDataStringIsEscapedAndNothingIsFetched() throws {
        var o = try Self.load("campaign-plan-curves.json")
        var plan = try #require(o["plan"] as? [String: Any])
        var audience = try #require(plan["audience"] as? [String: Any])
        var segs = try #require(audience["segments"] as? [[String: Any]])
        segs[0]["name"] = "<script>alert('x')</script> & \"friends\""
        audience["segments"] = segs
        plan["audience"] = audience
        var budget = try #require(plan["budget"] as? [String: Any])
        var curves = try #require(budget["curves"] as? [[String: Any]])
        curves[0]["channel"] = "<img src=x onerror=alert(1)>"
        budget["curves"] = curves
        plan["budget"] = budget
        plan["gaps"] = ["</section><script>bad()</script>"]
        o["plan"] = plan
        let meta = CampaignReport.Meta(id: "x\"><script>", title: "t", version: 1, latestVersion: 1, author: "<b>eve</b>",
                                       createdAt: "now", approvedBy: "")
        let html = CampaignReport.html(plan: plan, meta: meta, versions: [],
                                       audit: [.init(at: "a", who: "<i>w</i>", action: "x", version: 1, detail: "<script>")])
        #expect(!html.contains("<script"), "a <script> got through")
        #expect(!html.contains("<img") && !html.contains("<b>eve") && !html.contains("<i>w"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;friends&quot;"))
        #expect(html.contains("&lt;img src=x onerror=alert(1)&gt;"))
        // Ten sections, still: the gap's "</section>" is text.
        #expect(Self.count("</section>", in: html) == CampaignReport.sections.count - 1)
        // Self-contained, for both fixtures: no URL, no external source, no stylesheet link, no script at all.
        for page in [html, try Self.render(try Self.load("campaign-plan.json"))] {
            for bad in ["http://", "https://", "//:", "<link", "<script", "<iframe", "<object", "<embed", "@import", "url("] {
                #expect(!page.contains(bad), "the page contains \(bad)")
            }
            // No element with a source. Escaped text such as "&lt;img src=" is not an element, and quoted attribute
            // values are inert: the page's only '"' are attribute delimiters (in text it is &quot;), so drop them first.
            let tags = page.replacingOccurrences(of: #""[^"]*""#, with: "\"\"", options: .regularExpression)
            let source = try NSRegularExpression(pattern: #"<[^>]*\s(src|srcset|xlink:href|data|on[a-z]+)\s*="#)
            #expect(source.firstMatch(in: tags, range: NSRange(tags.startIndex..., in: tags)) == nil, "an element with a source or a handler")
            #expect(page.components(separatedBy: "href=\"").dropFirst().allSatisfy { $0.hasPrefix("#") }, "a link out of the page")
            #expect(Self.count("<svg", in: page) == Self.count("</svg>", in: page))
        }
    }

    /// A plan whose budget the job fitted (campaign-plan-fitted.json: `chorus local`'s sample-launch, approved, with its log).
    @Test func aFittedPlanShowsItsCurvesForecastAndLog() throws {
        let o = try Self.load("campaign-plan-fitted.json")
        let audit = (o["audit"] as? [[String: Any]] ?? []).map {
            CampaignReport.AuditRow(at: $0["at"] as? String ?? "", who: $0["who"] as? String ?? "", action: $0["action"] as? String ?? "",
                                    version: ($0["version"] as? NSNumber)?.intValue ?? 0, detail: $0["detail"] as? String ?? "")
        }
        let html = try Self.render(o, audit: audit)
        for id in CampaignReport.sections { #expect(html.contains("id=\"\(id)\""), "no section \(id)") }
        #expect(Self.section(html, "summary").contains("APPROVED by ben"))
        let budget = Self.section(html, "budget")
        let plan = try #require(o["plan"] as? [String: Any])
        let b = try #require(plan["budget"] as? [String: Any])
        let curves = try #require(b["curves"] as? [[String: Any]])
        #expect(!budget.contains("not available") && Self.count("class=\"chart curve\"", in: budget) == curves.count)
        // Each chosen spend is labelled with the job's expected KPI for its channel.
        for c in try #require(b["channels"] as? [[String: Any]]) {
            let name = try #require(c["channel"] as? String), kpi = try #require((c["expected_kpi"] as? NSNumber)?.doubleValue)
            #expect(budget.contains(" → \(String(format: "%.1f", kpi))</text>"), "\(name): \(kpi)")
        }
        let e = try #require(b["expected_kpi"] as? [String: Any])
        #expect(budget.contains("<b>\(String(format: "%.1f", (e["value"] as! NSNumber).doubleValue))</b> (80% interval"))
        let weeks = try #require(b["kpi_by_week"] as? [[String: Any]])
        #expect(Self.count("<circle cx=", in: budget) == curves.count + weeks.count)
        #expect(Self.count("<tr class=\"approved\">", in: Self.section(html, "history")) == 1)
    }

    @Test func theForecastTakesWeekStartToo() throws {
        var o = try Self.load("campaign-plan-curves.json")
        var plan = try #require(o["plan"] as? [String: Any])
        var budget = try #require(plan["budget"] as? [String: Any])
        budget["kpi_by_week"] = (budget["kpi_by_week"] as? [[String: Any]] ?? []).map { w in
            var w = w
            w["week_start"] = w.removeValue(forKey: "period_start")
            return w
        }
        budget["expected_kpi"] = ["value": 12.5]
        plan["budget"] = budget
        o["plan"] = plan
        let forecast = Self.section(try Self.render(o), "budget")
        #expect(forecast.contains(">2026-01-19</text>") && forecast.contains("<b>12.5</b> (no interval)"))
    }

    @Test func weekdayAndHourAreTakenInUTC() {
        // 2026-01-05 08:00 UTC was a Monday; 1970-01-01 00:00 a Thursday; 1969-12-31 23:00 a Wednesday.
        #expect(CampaignReport.weekdayHour(1_767_600_000) == (0, 8))
        #expect(CampaignReport.weekdayHour(0) == (3, 0))
        #expect(CampaignReport.weekdayHour(-3600) == (2, 23))
        #expect(CampaignReport.weekdayHour(1_767_600_000 + 6 * 86400 + 15 * 3600) == (6, 23))
        #expect(CampaignReport.isoDay(1_767_600_000) == "2026-01-05")
        #expect(CampaignReport.isoDay(-1) == "1969-12-31")
        #expect(CampaignReport.money(50000) == "50,000" && CampaignReport.money(9250.5) == "9,250.50" && CampaignReport.money(12) == "12")
    }
    // MARK: - results (the latest evaluation: Tests/Fixtures/campaign-eval.json, the campaign-eval job's look at the
    // simulated sample-launch campaign of campaign-plan-fitted.json)

    static func renderResults(_ evaluation: [String: Any]?, plan name: String = "campaign-plan-fitted.json") throws -> String {
        let o = try load(name)
        return CampaignReport.html(plan: try #require(o["plan"] as? [String: Any]), meta: meta(o), versions: [], audit: [],
                                   evaluation: evaluation)
    }

    /// The evaluation with `change` applied to its JSON object.
    static func evaluation(_ change: (inout [String: Any]) -> Void = { _ in }) throws -> [String: Any] {
        var e = try load("campaign-eval.json")
        change(&e)
        return e
    }

    /// Sets `key` of the `i`th object of the array at `array`.
    static func set(_ e: inout [String: Any], _ array: String, _ i: Int, _ key: String, _ value: Any) {
        var a = e[array] as? [[String: Any]] ?? []
        a[i][key] = value
        e[array] = a
    }

    static func noBadNumbers(_ html: String) {
        let bad = try! NSRegularExpression(pattern: #"\b(nan|NaN|inf|-inf|Infinity)\b"#)
        let m = bad.firstMatch(in: html, range: NSRange(html.startIndex..., in: html))
        #expect(m == nil, "the page has \(m.map { String(html[Range($0.range, in: html)!]) } ?? "")")
    }

    @Test func theEvaluationFillsTheResults() throws {
        let html = try Self.renderResults(try Self.evaluation())
        #expect(CampaignReport.sections.firstIndex(of: "results") == CampaignReport.sections.firstIndex(of: "measurement")! + 1)
        for id in CampaignReport.sections { #expect(html.contains("id=\"\(id)\""), "no section \(id)") }
        let r = Self.section(html, "results")
        // The header: look, data through, finished, users per arm, the correction.
        #expect(r.contains("FINISHED") && r.contains("Look <b>1</b> of plan version 1, data through <b>2025-12-01T00:00:00Z</b>"))
        #expect(r.contains("finished, 21 day(s) 2025-10-06 … 2025-10-26"))
        #expect(r.contains("<b>344</b> treated, <b>312</b> in the holdout"))
        #expect(r.contains("correction <b>holm</b> over 44 test(s), α 0.05"))
        // The sample-ratio check: both segments pass.
        #expect(Self.count("<td>ok</td>", in: r) == 2 && !r.contains("results not valid") && !r.contains("class=\"alert bad\""))
        #expect(r.contains("<td class=\"n\">48.4%</td>") && r.contains("161 / 151"))
        // A verdict per segment with its why.
        #expect(Self.count("<div class=\"verdict none\">", in: r) == 2)
        #expect(r.contains("<div class=\"word\">no detectable effect</div>"))
        #expect(r.contains("holm-adjusted p = 1 over 44 tests"))
        // The forest plot: per segment its whole row and its channels' (segment 5 has 4 channels, segment 1 has 5), each
        // with its interval and its always-valid interval; x's +100 pp is past the axis: cut, without a dot.
        #expect(Self.count("class=\"chart forest\"", in: r) == 1)
        #expect(Self.count("<title>interval ", in: r) == 11 && Self.count("<title>always-valid interval ", in: r) == 11)
        #expect(Self.count("· all channels</text>", in: r) == 2)
        #expect(Self.count("<circle cx=", in: Self.between(r, "class=\"chart forest\"", "</svg>")) == 10)
        #expect(r.contains(">▸</text>") && r.contains("+100.00 [+100.00, +100.00] pp · win"))
        #expect(r.contains("+4.86 [+0.34, +9.38] pp · no detectable effect"))
        #expect(r.contains("stroke-dasharray=\"5 3\""))  // the zero line
        // Pacing: a chart per channel, and the table.
        #expect(Self.count("class=\"chart pacing\"", in: r) == 5)
        #expect(r.contains("<td>tiktok</td><td class=\"n\">44,267.58</td><td class=\"n\">44,267.58</td><td class=\"n\">44,379.78</td><td class=\"n\">100.3%</td><td>on plan</td><td class=\"n\">9 (9)</td>"))
        #expect(Self.count("planned post(s)</title></rect>", in: r) == 18)
        // Efficiency: incremental conversions with the interval and what each cost; "–" where there is none.
        #expect(r.contains("<td class=\"n\">4.7 [-1.9, 11.2]</td><td class=\"n\">1,328.76</td>"))
        #expect(r.contains("<td>instagram</td><td class=\"n\">16 / 6</td>") && r.contains("<td class=\"n\">–</td>"))
        #expect(r.contains("The evaluation found no problem"))
        Self.noBadNumbers(html)
        #expect(Self.count("<svg", in: html) == Self.count("</svg>", in: html))
    }

    /// The text from the first `from` to the next `to`.
    static func between(_ s: String, _ from: String, _ to: String) -> String {
        guard let a = s.range(of: from), let b = s.range(of: to, range: a.upperBound..<s.endIndex) else { return "" }
        return String(s[a.lowerBound..<b.upperBound])
    }

    @Test func withoutAnEvaluationTheResultsSayHowToMeasure() throws {
        for html in [try Self.renderResults(nil), try Self.render(try Self.load("campaign-plan.json"))] {
            let r = Self.section(html, "results")
            #expect(r.contains("<h2>Results</h2>") && r.contains("not measured yet"))
            #expect(r.contains("<code>chorus campaign evaluate ") && !r.contains("<svg") && !r.contains("not available"))
        }
        #expect(Self.section(try Self.renderResults(nil), "results").contains("chorus campaign evaluate sample-launch"))
    }

    @Test func aSampleRatioMismatchMarksTheSegmentInvalid() throws {
        // Segment 5's arms off the design: the job's SRM row, its verdict and its lifts as it writes them then.
        let e = try Self.evaluation { e in
            Self.set(&e, "srm", 0, "mismatch", true)
            Self.set(&e, "srm", 0, "p_value", 0.00002)
            Self.set(&e, "segments", 0, "verdict", "invalid (sample ratio mismatch)")
            Self.set(&e, "segments", 0, "valid", false)
            Self.set(&e, "segments", 0, "why", "the arms' sizes do not match the design (SRM p < 0.001): the results are not presented as valid")
            e["lifts"] = (e["lifts"] as? [[String: Any]] ?? []).map { l in
                var l = l
                if (l["segment"] as? NSNumber)?.intValue == 5 { l["valid"] = false; l["verdict"] = "invalid (sample ratio mismatch)" }
                return l
            }
        }
        let r = Self.section(try Self.renderResults(e), "results")
        #expect(Self.count("<tr class=\"srm\">", in: r) == 1 && Self.count("<td>ok</td>", in: r) == 1)
        #expect(r.contains("<span class=\"bad\">⚠ mismatch: results not valid</span>"))
        #expect(r.contains("<p class=\"alert bad\">⚠ Sample ratio mismatch in segment(s) 5:"))
        #expect(Self.count("<div class=\"verdict invalid\">", in: r) == 1 && Self.count("<div class=\"verdict none\">", in: r) == 1)
        #expect(r.contains("<div class=\"word\">invalid (sample ratio mismatch)</div>"))
        // Segment 5's five rows in the plot in the invalid colour.
        let forest = Self.between(r, "class=\"chart forest\"", "</svg>")
        #expect(Self.count("fill=\"\(CampaignReport.verdictColour["invalid"]!)\"><title>interval", in: forest) == 5)
    }

    @Test func winLossAndARunningLook() throws {
        let e = try Self.evaluation { e in
            Self.set(&e, "segments", 0, "verdict", "win")
            Self.set(&e, "segments", 1, "verdict", "loss")
            e["window"] = ["start": "2025-10-06", "end": "2025-10-26", "days": 21, "elapsed_days": 9, "finished": false]
            Self.set(&e, "pacing", 1, "status", "under")
            Self.set(&e, "pacing", 1, "pace", 0.62)
            e["problems"] = ["12 outcome records after the window"]
        }
        let r = Self.section(try Self.renderResults(e), "results")
        #expect(r.contains("RUNNING") && r.contains("running, day 9 of 21 (2025-10-06 … 2025-10-26)") && !r.contains("FINISHED"))
        #expect(r.contains("<div class=\"verdict win\">") && r.contains("<div class=\"verdict loss\">"))
        #expect(r.contains("<tr class=\"flagged\"><td>tiktok</td>") && r.contains("<td class=\"n\">62.0%</td><td>under</td>"))
        #expect(r.contains("<li class=\"warn\">⚠ 12 outcome records after the window</li>"))
    }

    /// Missing keys and JSON nulls everywhere: the page still renders, with "–" and no NaN.
    @Test func missingAndNullFiguresShowAsDashes() throws {
        let e = try Self.evaluation { e in
            e["window"] = nil; e["totals"] = nil; e["srm"] = nil; e["alpha"] = NSNull(); e["tests"] = nil
            e["lifts"] = (e["lifts"] as? [[String: Any]] ?? []).map { l in
                var l = l
                for k in ["absolute", "absolute_low", "absolute_high", "relative", "p_value"] { l[k] = NSNull() }
                l["sequential"] = nil
                return l
            }
            e["pacing"] = (e["pacing"] as? [[String: Any]] ?? []).map { p in
                var p = p
                for k in ["pace", "planned_to_date", "spend"] { p[k] = NSNull() }
                p["by_day"] = (p["by_day"] as? [[String: Any]] ?? []).map { d in var d = d; d["spend"] = NSNull(); return d }
                return p
            }
            e["channels"] = (e["channels"] as? [[String: Any]] ?? []).map { c in
                var c = c
                c["incremental_conversions"] = ["value": NSNull(), "low": NSNull(), "high": NSNull()]
                c["treatment"] = ["users": 3, "ctr": NSNull(), "cpa": NSNull(), "roas": NSNull(), "roi": NSNull()]
                return c
            }
        }
        let html = try Self.renderResults(e)
        let r = Self.section(html, "results")
        #expect(r.contains("The evaluation has no sample ratio check") && Self.count("class=\"chart pacing\"", in: r) == 5)
        #expect(r.contains("<td class=\"n\">–</td><td>on plan</td>"))
        #expect(r.contains("– · no detectable effect"))
        Self.noBadNumbers(html)
        // An empty evaluation renders too.
        let empty = Self.section(try Self.renderResults([:]), "results")
        #expect(empty.contains("not available") && empty.contains("The evaluation has no segment"))
        Self.noBadNumbers(empty)
    }

    @Test func theEvaluationsStringsAreEscaped() throws {
        let e = try Self.evaluation { e in
            Self.set(&e, "pacing", 0, "channel", "<script>p()</script>")
            Self.set(&e, "channels", 0, "channel", "<img src=x onerror=alert(1)>")
            Self.set(&e, "segments", 0, "why", "a \"quoted\" & <b>bold</b> why")
            Self.set(&e, "lifts", 4, "channel", "<svg onload=x>")
            e["problems"] = ["</section><script>bad()</script>"]
            e["correction"] = "holm'><i>"
        }
        let html = try Self.renderResults(e)
        #expect(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>bold") && !html.contains("<svg onload")
            && !html.contains("<i>"))
        #expect(html.contains("a &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt; why"))
        #expect(html.contains("&lt;script&gt;p()&lt;/script&gt;") && html.contains("&lt;img src=x onerror=alert(1)&gt;"))
        #expect(Self.count("</section>", in: html) == CampaignReport.sections.count - 1)
        for bad in ["http://", "https://", "<link", "url("] { #expect(!html.contains(bad), "the page contains \(bad)") }
    }
}
