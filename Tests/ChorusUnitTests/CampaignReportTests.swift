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
}
