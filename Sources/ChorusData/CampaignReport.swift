import ChorusModel
import Foundation

/// One self-contained HTML page for a campaign plan (`chorus campaign report`; docs/campaigns.md "The report").
///
/// Pure: the plan document (as the `campaign-plan` job stores it, parsed by JSONSerialization), the version's
/// metadata and the document's history in, a string out. No I/O, no clock, no randomness: the same input gives
/// the same bytes.
///
/// The page needs nothing but itself:
/// - inline CSS, and charts as inline SVG computed here (no script, no font, no image, no link: nothing is fetched,
///   so it opens offline and prints as it shows);
/// - every string from the data is HTML-escaped (`&`, `<`, `>`, `"`, `'`), in text and in attributes alike.
///
/// Sections, in order: header (name, id, version, approval state, objective, KPI, window, budget), audience
/// (table and a bar chart of the expected outcome per segment), content per segment (flagged items highlighted),
/// schedule (a weekday × hour heatmap of the planned posts, weekday and hour from `at` in UTC, and a calendar per
/// day), budget (split per channel against its min and max, the method and why, binding limits, unspent; response
/// curves with the chosen spend and the KPI forecast with its interval when the budget has them, otherwise a
/// "not available" box that says why), measurement (holdout per segment), results (the latest evaluation of the
/// campaign when one is given: CampaignReportResults.swift), risks, gaps, evidence, and the version and approval
/// history.
public enum CampaignReport {
    /// The version shown.
    public struct Meta: Sendable, Equatable {
        public var id: String
        public var title: String
        public var version: Int
        public var latestVersion: Int
        public var author: String
        public var action: String
        public var createdAt: String
        public var approvedBy: String
        public var approvedAt: String
        public var jobID: String
        /// When the page was made ("" leaves it out).
        public var generatedAt: String

        public init(id: String, title: String, version: Int, latestVersion: Int, author: String, action: String = "",
                    createdAt: String, approvedBy: String, approvedAt: String = "", jobID: String = "", generatedAt: String = "") {
            self.id = id; self.title = title; self.version = version; self.latestVersion = latestVersion
            self.author = author; self.action = action; self.createdAt = createdAt
            self.approvedBy = approvedBy; self.approvedAt = approvedAt; self.jobID = jobID; self.generatedAt = generatedAt
        }
    }

    /// One version of the document (oldest first in the history).
    public struct VersionRow: Sendable, Equatable {
        public var version: Int
        public var createdAt: String
        public var author: String
        public var action: String
        public var summary: String
        public var approvedBy: String
        public var approvedAt: String
        public var jobID: String

        public init(version: Int, createdAt: String, author: String, action: String, summary: String = "",
                    approvedBy: String = "", approvedAt: String = "", jobID: String = "") {
            self.version = version; self.createdAt = createdAt; self.author = author; self.action = action
            self.summary = summary; self.approvedBy = approvedBy; self.approvedAt = approvedAt; self.jobID = jobID
        }
    }

    /// One entry of the audit log: create, replan, approve, export, report, ...
    public struct AuditRow: Sendable, Equatable {
        public var at: String
        public var who: String
        public var action: String
        public var version: Int
        public var detail: String

        public init(at: String, who: String, action: String, version: Int, detail: String) {
            self.at = at; self.who = who; self.action = action; self.version = version; self.detail = detail
        }
    }

    /// The section ids, in page order (each is a `<section id=...>`).
    public static let sections = ["summary", "audience", "content", "schedule", "budget", "measurement", "results", "risks",
                                  "gaps", "evidence", "history"]

    /// The page. `evaluation` is the latest look of the `campaign-eval` job at the campaign (the body of the document
    /// `campaign-evaluations/<id>`, as `chorus campaign evaluate ID --show --json` prints it); without one the results
    /// section says that the campaign has not been measured yet.
    public static func html(plan: [String: Any], meta: Meta, versions: [VersionRow], audit: [AuditRow],
                            evaluation: [String: Any]? = nil) -> String {
        let brief = obj(plan["brief"])
        let name = str(brief["name"]).isEmpty ? meta.title : str(brief["name"])
        var h: [String] = []
        h.append("<!DOCTYPE html>")
        h.append("<html lang=\"en\"><head><meta charset=\"utf-8\">")
        h.append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        h.append("<title>\(esc(name)) — campaign \(esc(meta.id)) v\(meta.version)</title>")
        h.append("<style>\(css)</style></head><body>")
        h.append(header(plan, brief: brief, name: name, meta: meta))
        h.append("<nav>" + sections.map { "<a href=\"#\($0)\">\(sectionTitle[$0] ?? $0)</a>" }.joined(separator: " · ") + "</nav>")
        h.append(audienceSection(plan, brief: brief))
        h.append(contentSection(plan))
        h.append(scheduleSection(plan))
        h.append(budgetSection(plan, brief: brief))
        h.append(measurementSection(plan))
        h.append(resultsSection(plan, brief: brief, meta: meta, evaluation: evaluation))
        h.append(risksSection(plan))
        h.append(gapsSection(plan))
        h.append(evidenceSection(plan))
        h.append(historySection(meta: meta, versions: versions, audit: audit))
        h.append("<footer>Made by <code>chorus campaign report</code>"
                 + (meta.generatedAt.isEmpty ? "" : " at \(esc(meta.generatedAt))")
                 + " from version \(meta.version) of the plan document <code>\(esc(meta.id))</code>. One file: "
                 + "the charts are inline SVG, nothing is loaded from elsewhere.</footer>")
        h.append("</body></html>")
        return h.joined(separator: "\n") + "\n"
    }

    static let sectionTitle = ["summary": "Summary", "audience": "Audience", "content": "Content", "schedule": "Schedule",
                               "budget": "Budget", "measurement": "Measurement", "results": "Results", "risks": "Risks",
                               "gaps": "Not decided from data", "evidence": "Evidence", "history": "History"]

    // MARK: - sections

    static func header(_ plan: [String: Any], brief: [String: Any], name: String, meta: Meta) -> String {
        let approved = !meta.approvedBy.isEmpty
        let badge = approved
            ? "<span class=\"badge ok\">APPROVED by \(esc(meta.approvedBy))\(meta.approvedAt.isEmpty ? "" : " at \(esc(meta.approvedAt))")</span>"
            : "<span class=\"badge no\">NOT APPROVED</span>"
        let currency = str(brief["currency"])
        var rows: [(String, String)] = [
            ("Campaign", "<code>\(esc(meta.id))</code>"),
            ("Version", "\(meta.version) of \(meta.latestVersion)" + (meta.version < meta.latestVersion ? " <span class=\"warn\">(a newer version exists)</span>" : "")),
            ("Written", "by \(esc(meta.author))" + (meta.action.isEmpty ? "" : " (\(esc(meta.action)))") + " at \(esc(meta.createdAt))"
                + (meta.jobID.isEmpty ? "" : ", job <code>\(esc(meta.jobID))</code>")),
            ("Objective", esc(str(brief["objective"]))),
            ("KPI", esc(str(brief["kpi"]))),
            ("Window", "\(esc(str(brief["start"]))) … \(esc(str(brief["end"]))) (UTC)"),
            ("Budget", "\(esc(currency)) \(money(dbl(brief["budget"])))"),
            ("Channels", esc(strings(brief["channels"]).joined(separator: ", "))),
        ]
        let gaps = strings(plan["gaps"]).count, risks = arr(plan["risks"]).count
        rows.append(("Open points", "\(gaps) not decided from data, \(risks) risk(s)"))
        return """
        <header id="summary"><h1>\(esc(name)) \(badge)</h1>
        <table class="kv">\(rows.map { "<tr><th>\($0.0)</th><td>\($0.1)</td></tr>" }.joined())</table></header>
        """
    }

    static func audienceSection(_ plan: [String: Any], brief: [String: Any]) -> String {
        let a = obj(plan["audience"])
        let segs = arr(a["segments"])
        let kpi = str(brief["kpi"]).isEmpty ? "outcome" : str(brief["kpi"])
        var s = open("audience")
        s += "<p class=\"why\">\(esc(str(a["rule"])))</p>"
        s += "<p>\(int(a["users_seen"])) users seen; segments under \(int(a["min_segment_users"])) users are not chosen.</p>"
        if segs.isEmpty {
            s += unavailable("no segments in the plan")
        } else {
            s += "<table><tr><th>Chosen</th><th>Segment</th><th>Name</th><th class=\"n\">Users</th><th class=\"n\">Expected \(esc(kpi))</th>"
                + "<th class=\"n\">Per user</th><th>Reason</th></tr>"
            for g in segs {
                let chosen = bool(g["chosen"])
                s += "<tr class=\"\(chosen ? "chosen" : "")\"><td class=\"c\">\(chosen ? "✓" : "·")</td><td>\(int(g["segment"]))</td>"
                    + "<td>\(esc(str(g["name"])))</td><td class=\"n\">\(int(g["users"]))</td><td class=\"n\">\(fmt(dbl(g["expected_outcome"]), 2))</td>"
                    + "<td class=\"n\">\(sig(dbl(g["per_user"])))</td><td>\(esc(str(g["reason"])))</td></tr>"
            }
            s += "</table>"
            s += "<h3>Expected \(esc(kpi)) per segment</h3>"
            s += barChart(segs.map { (label: "\(int($0["segment"])) · \(str($0["name"]))", value: dbl($0["expected_outcome"]), on: bool($0["chosen"])) },
                          format: { fmt($0, 2) }, title: "expected \(kpi) per segment; chosen segments in colour")
        }
        return s + "</section>"
    }

    /// "5 · weibo · fashion · 20–23h UTC": a segment's id with its name from the audience, escaped.
    static func segmentLabel(_ plan: [String: Any], _ id: Int) -> String {
        let name = arr(obj(plan["audience"])["segments"]).first { int($0["segment"]) == id }.map { str($0["name"]) } ?? ""
        return name.isEmpty ? "\(id)" : "\(id) · \(esc(name))"
    }

    static func contentSection(_ plan: [String: Any]) -> String {
        let content = arr(plan["content"])
        var s = open("content")
        s += "<p>Per chosen segment, the items it is sent, per channel, best first. Flagged items are highlighted.</p>"
        if content.isEmpty { s += unavailable("no content was picked (no segment chosen, or no content in the brief's pool)") }
        for c in content {
            let items = arr(c["items"])
            let flagged = items.filter { !strings($0["flags"]).isEmpty }.count
            s += "<h3>Segment \(segmentLabel(plan, int(c["segment"]))): \(items.count) item(s)" + (flagged > 0 ? ", <span class=\"warn\">\(flagged) flagged</span>" : "") + "</h3>"
            s += "<table><tr><th>Content</th><th>Channel</th><th class=\"n\">Score</th><th class=\"n\">ALS</th><th>Reason</th><th>Flags</th></tr>"
            for it in items {
                let flags = strings(it["flags"])
                s += "<tr class=\"\(flags.isEmpty ? "" : "flagged")\"><td><code>\(esc(str(it["content_id"])))</code></td><td>\(esc(str(it["channel"])))</td>"
                    + "<td class=\"n\">\(sig(dbl(it["score"])))</td><td class=\"n\">\(it["als_score"].map { _ in sig(dbl(it["als_score"])) } ?? "–")</td>"
                    + "<td>\(esc(str(it["reason"])))</td><td>\(flags.isEmpty ? "" : "⚠ " + esc(flags.joined(separator: "; ")))</td></tr>"
            }
            s += "</table>"
        }
        return s + "</section>"
    }

    static let weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

    /// Weekday (0 = Monday) and hour (0–23) of a unix time in UTC.
    public static func weekdayHour(_ at: Int64) -> (weekday: Int, hour: Int) {
        let day = at >= 0 ? at / 86400 : (at - 86399) / 86400
        let secs = at - day * 86400
        // 1970-01-01 was a Thursday (3 with Monday = 0).
        let wd = Int(((day + 3) % 7 + 7) % 7)
        return (wd, Int(secs / 3600))
    }

    static func scheduleSection(_ plan: [String: Any]) -> String {
        let sched = obj(plan["schedule"])
        let posts = arr(sched["posts"])
        var s = open("schedule")
        let rules = obj(sched["rules"])
        var ruleText: [String] = []
        if rules["posts_per_day"] != nil { ruleText.append("at most \(int(rules["posts_per_day"])) posts a day") }
        if rules["posts_per_channel_per_day"] != nil { ruleText.append("\(int(rules["posts_per_channel_per_day"])) per channel a day") }
        if rules["min_spacing_hours"] != nil { ruleText.append("\(int(rules["min_spacing_hours"])) h apart") }
        let cap = obj(rules["frequency_cap"])
        if !cap.isEmpty { ruleText.append("\(int(cap["impressions"])) impressions per user in \(int(cap["days"])) days") }
        s += "<p>\(posts.count) post(s), times in UTC" + (ruleText.isEmpty ? "" : "; rules: " + esc(ruleText.joined(separator: ", "))) + ".</p>"
        let skipped = obj(sched["skipped"])
        if !skipped.isEmpty {
            s += "<p class=\"why\">Slots skipped by the rules: " + skipped.keys.sorted().map { "\(esc($0)) \(int(skipped[$0]))" }.joined(separator: ", ") + "</p>"
        }
        if posts.isEmpty { return s + unavailable("the schedule has no posts") + "</section>" }
        var grid = Array(repeating: Array(repeating: 0, count: 24), count: 7)
        for p in posts {
            let (wd, hr) = weekdayHour(int64(p["at"]))
            grid[wd][hr] += 1
        }
        s += "<h3>Posts per weekday and hour (UTC)</h3>" + heatmap(grid)
        // The calendar: one line per day.
        var days: [(String, [[String: Any]])] = []
        for p in posts.sorted(by: { int64($0["at"]) < int64($1["at"]) }) {
            let d = str(p["date"]).isEmpty ? isoDay(int64(p["at"])) : str(p["date"])
            if days.last?.0 == d { days[days.count - 1].1.append(p) } else { days.append((d, [p])) }
        }
        s += "<h3>Calendar</h3><table class=\"cal\"><tr><th>Day</th><th>Posts</th></tr>"
        for (d, ps) in days {
            let wd = weekdays[weekdayHour(int64(ps[0]["at"])).weekday]
            s += "<tr><td>\(wd) \(esc(d))</td><td>" + ps.map { p in
                let hr = weekdayHour(int64(p["at"])).hour
                return "<span class=\"post\">\(String(format: "%02d:00", hr)) \(esc(str(p["channel"]))) · seg \(int(p["segment"])) · <code>\(esc(str(p["content_id"])))</code></span>"
            }.joined(separator: " ") + "</td></tr>"
        }
        s += "</table>"
        let streams = arr(sched["streams"])
        if !streams.isEmpty {
            s += "<details><summary>Where the times come from (\(streams.count) stream(s))</summary><ul>"
            for st in streams {
                s += "<li>segment \(int(st["segment"])) on \(esc(str(st["channel"]))), \(int(st["items"])) item(s): \(esc(str(st["source"])))</li>"
            }
            s += "</ul></details>"
        }
        return s + "</section>"
    }

    static func budgetSection(_ plan: [String: Any], brief: [String: Any]) -> String {
        let b = obj(plan["budget"])
        let cur = str(b["currency"]).isEmpty ? str(brief["currency"]) : str(b["currency"])
        let kpi = !str(b["kpi"]).isEmpty ? str(b["kpi"]) : !str(brief["kpi"]).isEmpty ? str(brief["kpi"]) : "KPI"
        let period = str(b["period"]).isEmpty ? "week" : str(b["period"])
        let channels = arr(b["channels"])
        var s = open("budget")
        s += "<p><b>\(esc(str(b["method"])))</b>, \(esc(cur)) \(money(dbl(b["total"]))) in total"
            + (b["periods"] == nil ? "" : " over \(int(b["periods"])) \(esc(period))(s)") + ": \(esc(str(b["why"])))</p>"
        if !str(b["extrapolation_warning"]).isEmpty {
            s += "<p class=\"alert\">⚠ \(esc(str(b["extrapolation_warning"])))</p>"
        }
        if channels.isEmpty {
            s += unavailable("no channel in the budget")
        } else {
            // The columns of a fitted split only when some channel has them (an even split has none).
            let modelled = channels.contains { $0["expected_kpi"] != nil || $0["marginal_return"] != nil || $0["fit"] != nil || $0["not_modelled"] != nil }
            s += "<table><tr><th>Channel</th><th class=\"n\">Spend</th><th class=\"n\">Share</th><th class=\"n\">Min</th><th class=\"n\">Max</th><th>At its limit</th>"
                + (modelled ? "<th class=\"n\">Expected \(esc(kpi))</th><th class=\"n\">Marginal return</th><th>Curve</th>" : "") + "</tr>"
            let total = max(dbl(b["total"]), channels.reduce(0) { $0 + dbl($1["spend"]) })
            for c in channels {
                let binding = strings(c["binding"])
                let extrapolated = bool(c["extrapolated"])
                s += "<tr class=\"\(extrapolated ? "flagged" : binding.isEmpty ? "" : "binding")\"><td>\(esc(str(c["channel"])))</td><td class=\"n\">\(money(dbl(c["spend"])))</td>"
                    + "<td class=\"n\">\(total > 0 ? fmt(100 * dbl(c["spend"]) / total, 1) + "%" : "–")</td>"
                    + "<td class=\"n\">\(c["min"] == nil ? "–" : money(dbl(c["min"])))</td><td class=\"n\">\(c["max"] == nil ? "–" : money(dbl(c["max"])))</td>"
                    + "<td>\(binding.isEmpty ? "" : esc(binding.joined(separator: ", ")))</td>"
                if modelled {
                    var notes: [String] = []
                    if extrapolated {
                        let h = opt(c["history_max_per_\(period)"])
                        notes.append("⚠ extrapolated" + (h.map { ": the history's largest spend per \(esc(period)) was \(money($0))" } ?? ""))
                    }
                    if !str(c["not_modelled"]).isEmpty { notes.append("not modelled: " + esc(str(c["not_modelled"]))) }
                    let fit = obj(c["fit"])
                    if !fit.isEmpty { notes.append("fit R² \(fmt(dbl(fit["r2"]), 2)) on \(int(fit["periods"])) \(esc(period))s") }
                    s += "<td class=\"n\">\(opt(c["expected_kpi"]).map { fmt($0, 1) } ?? "–")</td>"
                        + "<td class=\"n\">\(opt(c["marginal_return"]).map(sig) ?? "–")</td><td>\(notes.joined(separator: "; "))</td>"
                }
                s += "</tr>"
            }
            s += "</table>"
            let unspent = dbl(b["unspent"])
            s += "<p>Unspent: \(esc(cur)) \(money(unspent))" + (str(b["unspent_why"]).isEmpty ? "" : " — \(esc(str(b["unspent_why"])))") + "</p>"
            s += "<h3>Split per channel</h3>" + spendChart(channels, currency: cur)
        }
        // Response curves and the KPI forecast, when the method has them.
        let reason = unavailableReason(plan, budget: b)
        let extrapolated = Set(channels.filter { bool($0["extrapolated"]) }.map { str($0["channel"]) })
        let expected = Dictionary(channels.compactMap { c in opt(c["expected_kpi"]).map { (str(c["channel"]), $0) } }, uniquingKeysWith: { a, _ in a })
        let curves = arr(b["curves"]).filter { arr($0["points"]).count >= 2 }
        s += "<h3>Response curves</h3>"
        if curves.isEmpty {
            s += unavailable(reason)
        } else {
            s += "<p>Expected \(esc(kpi)) in the window per channel against its spend there; the red line is the chosen spend, the dashed "
                + "one the history's largest spend at that rate (beyond it the curve is an extrapolation); the band is the interval.</p>"
            s += "<div class=\"curves\">" + curves.map {
                curveChart($0, kpi: kpi, currency: cur, extrapolated: extrapolated.contains(str($0["channel"])),
                           expectedAtChosen: expected[str($0["channel"])])
            }.joined() + "</div>"
        }
        s += "<h3>Forecast of the \(esc(kpi))</h3>"
        let e = obj(b["expected_kpi"])
        let weeks = arr(b["kpi_by_week"])
        if e.isEmpty && weeks.isEmpty {
            s += unavailable(reason)
        } else {
            if !e.isEmpty {
                let level = dbl(e["level"])
                let interval = opt(e["low"]) != nil && opt(e["high"]) != nil
                    ? " (\(level > 0 ? fmt(level * (level <= 1 ? 100 : 1), 0) + "% " : "")interval \(fmt(dbl(e["low"]), 1)) … \(fmt(dbl(e["high"]), 1)))"
                    : " (no interval)"
                s += "<p class=\"big\">Expected \(esc(kpi)) in the window: <b>\(fmt(dbl(e["value"]), 1))</b>\(interval)</p>"
            }
            if weeks.count >= 1 { s += forecastChart(weeks, kpi: kpi, period: period) }
        }
        return s + "</section>"
    }

    /// Why curves and a forecast are missing: the budget's own reason, then the gaps that speak of spend.
    static func unavailableReason(_ plan: [String: Any], budget b: [String: Any]) -> String {
        var parts: [String] = []
        if !str(b["why"]).isEmpty { parts.append(str(b["why"])) }
        for g in strings(plan["gaps"]) where g.contains("spend") || g.contains("curve") || g.contains("forecast") {
            if !parts.contains(g) { parts.append(g) }
        }
        return parts.isEmpty ? "the budget carries no response curves or forecast" : parts.joined(separator: "; ")
    }

    static func measurementSection(_ plan: [String: Any]) -> String {
        let m = obj(plan["measurement"])
        let segs = arr(m["segments"])
        var s = open("measurement")
        s += "<p>\(esc(str(m["assignment"]))). Power: \(esc(str(m["power_formula"]))).</p>"
        if segs.isEmpty { return s + unavailable("no chosen segment, so no holdout") + "</section>" }
        s += "<table><tr><th>Segment</th><th>Metric</th><th class=\"n\">Holdout share</th><th class=\"n\">Arms (holdout / treated)</th>"
            + "<th class=\"n\">Base rate</th><th class=\"n\">MDE (abs / rel)</th><th class=\"n\">Power, α</th><th class=\"n\">Days</th><th>Flags</th></tr>"
        for g in segs {
            let reaches = bool(g["reaches_target"])
            let rel = g["mde_relative"] is NSNull || g["mde_relative"] == nil ? "none" : "+" + fmt(100 * dbl(g["mde_relative"]), 1) + "%"
            let abs = g["mde_absolute"] is NSNull || g["mde_absolute"] == nil ? "–" : sig(dbl(g["mde_absolute"]))
            s += "<tr class=\"\(reaches ? "" : "flagged")\"><td>\(segmentLabel(plan, int(g["segment"])))</td><td>\(esc(str(g["metric"])))</td>"
                + "<td class=\"n\">\(fmt(100 * dbl(g["holdout_share"]), 1))%</td>"
                + "<td class=\"n\">\(int(g["holdout_users"])) / \(int(g["treated_users"])) of \(int(g["users"]))</td>"
                + "<td class=\"n\">\(sig(dbl(g["base_rate"])))</td><td class=\"n\">\(abs) / \(rel)</td>"
                + "<td class=\"n\">\(sig(dbl(g["power"]))), \(sig(dbl(g["alpha"])))</td><td class=\"n\">\(int(g["duration_days"]))</td>"
                + "<td>\(reaches ? "" : "⚠ cannot detect a \(fmt(100 * dbl(g["target_lift"]), 0))% lift; ")\(esc(str(g["why"])))</td></tr>"
        }
        return s + "</table></section>"
    }

    static func risksSection(_ plan: [String: Any]) -> String {
        let risks = arr(plan["risks"])
        var s = open("risks")
        if risks.isEmpty { return s + "<p>No active alert on the watched keys or on the chosen content.</p></section>" }
        s += "<table><tr><th>Key</th><th>Alert</th><th>At</th><th>Watched</th><th>Why</th></tr>"
        for r in risks {
            s += "<tr class=\"flagged\"><td><code>\(esc(str(r["key"])))</code></td><td>\(esc(str(r["kind"])))</td><td>\(esc(str(r["at"])))</td>"
                + "<td>\(bool(r["watched"]) ? "yes" : "no")</td><td>\(esc(text(r["why"])))</td></tr>"
        }
        return s + "</table></section>"
    }

    static func gapsSection(_ plan: [String: Any]) -> String {
        let gaps = strings(plan["gaps"])
        var s = open("gaps")
        if gaps.isEmpty { return s + "<p>Every part of the plan was decided from data.</p></section>" }
        s += "<p>What the plan could not decide from the stored data, and what it did instead:</p><ul>"
        s += gaps.map { "<li>\(esc($0))</li>" }.joined()
        return s + "</ul></section>"
    }

    static func evidenceSection(_ plan: [String: Any]) -> String {
        let ev = obj(plan["evidence"])
        var s = open("evidence")
        if ev.isEmpty { return s + "<p>No job output was used.</p></section>" }
        s += "<p>The job outputs the plan was computed from (<code>chorus job status ID</code>):</p><table><tr><th>Input</th><th>Job</th></tr>"
        for k in ev.keys.sorted() { s += "<tr><td>\(esc(k))</td><td><code>\(esc(text(ev[k])))</code></td></tr>" }
        return s + "</table></section>"
    }

    static func historySection(meta: Meta, versions: [VersionRow], audit: [AuditRow]) -> String {
        var s = open("history")
        let rows = versions.isEmpty
            ? [VersionRow(version: meta.version, createdAt: meta.createdAt, author: meta.author, action: meta.action,
                          approvedBy: meta.approvedBy, approvedAt: meta.approvedAt, jobID: meta.jobID)]
            : versions
        s += "<h3>Versions</h3><table><tr><th>Version</th><th>Written</th><th>By</th><th>Action</th><th>Summary</th><th>Approved</th><th>Job</th></tr>"
        for v in rows {
            s += "<tr class=\"\(v.version == meta.version ? "current" : "")\"><td>v\(v.version)\(v.version == meta.version ? " (this report)" : "")</td>"
                + "<td>\(esc(v.createdAt))</td><td>\(esc(v.author))</td><td>\(esc(v.action))</td><td>\(esc(v.summary))</td>"
                + "<td>\(v.approvedBy.isEmpty ? "<span class=\"warn\">no</span>" : "by \(esc(v.approvedBy))" + (v.approvedAt.isEmpty ? "" : " at \(esc(v.approvedAt))"))</td>"
                + "<td>\(v.jobID.isEmpty ? "" : "<code>\(esc(v.jobID))</code>")</td></tr>"
        }
        s += "</table><h3>Log</h3>"
        if audit.isEmpty {
            s += "<p>The log was not available to this report.</p>"
        } else {
            s += "<table><tr><th>At</th><th>Who</th><th>Action</th><th>Version</th><th>Detail</th></tr>"
            for a in audit {
                s += "<tr class=\"\(a.action == "approve" ? "approved" : "")\"><td>\(esc(a.at))</td><td>\(esc(a.who))</td><td>\(esc(a.action))</td>"
                    + "<td>v\(a.version)</td><td>\(esc(a.detail))</td></tr>"
            }
            s += "</table>"
        }
        return s + "</section>"
    }

    // MARK: - charts (inline SVG)

    static let accent = "#0f766e", muted = "#cbd5e1", ink = "#1f2937", faint = "#6b7280"
    /// The heatmap's colour for the busiest cell; lighter cells mix it with white.
    static let heat = (r: 29.0, g: 78.0, b: 216.0)

    /// Horizontal bars, one per row, scaled to the largest value.
    static func barChart(_ rows: [(label: String, value: Double, on: Bool)], format: (Double) -> String, title: String) -> String {
        let labelW = 300.0, barW = 520.0, rowH = 24.0, width = labelW + barW + 90
        let height = rowH * Double(rows.count) + 10
        let top = max(rows.map(\.value).max() ?? 0, 1e-12)
        var s = svgOpen(width, height, title: title, cls: "bars")
        for (i, r) in rows.enumerated() {
            let y = 5 + Double(i) * rowH
            let w = max(0, r.value.isFinite ? r.value / top * barW : 0)
            s += "<text x=\"\(n(labelW - 8))\" y=\"\(n(y + 16))\" text-anchor=\"end\">\(esc(clip(r.label, 42)))</text>"
            s += "<rect x=\"\(n(labelW))\" y=\"\(n(y + 3))\" width=\"\(n(w))\" height=\"\(n(rowH - 6))\" fill=\"\(r.on ? accent : muted)\"/>"
            s += "<text x=\"\(n(labelW + w + 6))\" y=\"\(n(y + 16))\">\(esc(format(r.value)))</text>"
        }
        return s + "</svg>"
    }

    /// 7 weekdays × 24 hours; the count in each cell, darker for more.
    static func heatmap(_ grid: [[Int]]) -> String {
        let cell = 34.0, cellH = 26.0, left = 44.0, topPad = 22.0
        let width = left + 24 * cell + 10, height = topPad + 7 * cellH + 8
        let most = max(grid.flatMap { $0 }.max() ?? 0, 1)
        var s = svgOpen(width, height, title: "planned posts per weekday and hour, UTC", cls: "heatmap")
        for hr in 0..<24 {
            s += "<text x=\"\(n(left + Double(hr) * cell + cell / 2))\" y=\"15\" text-anchor=\"middle\" class=\"small\">\(hr)</text>"
        }
        for wd in 0..<7 {
            let y = topPad + Double(wd) * cellH
            s += "<text x=\"\(n(left - 6))\" y=\"\(n(y + cellH / 2 + 4))\" text-anchor=\"end\">\(weekdays[wd])</text>"
            for hr in 0..<24 {
                let c = grid[wd][hr]
                let x = left + Double(hr) * cell
                let fill: String
                if c == 0 { fill = "#f1f5f9" } else {
                    let t = 0.25 + 0.75 * Double(c) / Double(most)
                    fill = rgb(255 + (heat.r - 255) * t, 255 + (heat.g - 255) * t, 255 + (heat.b - 255) * t)
                }
                s += "<rect x=\"\(n(x + 1))\" y=\"\(n(y + 1))\" width=\"\(n(cell - 2))\" height=\"\(n(cellH - 2))\" fill=\"\(fill)\">"
                    + "<title>\(weekdays[wd]) \(hr):00 UTC: \(c) post(s)</title></rect>"
                if c > 0 {
                    let dark = Double(c) / Double(most) > 0.4
                    s += "<text x=\"\(n(x + cell / 2))\" y=\"\(n(y + cellH / 2 + 4))\" text-anchor=\"middle\" fill=\"\(dark ? "#ffffff" : ink)\">\(c)</text>"
                }
            }
        }
        return s + "</svg>"
    }

    /// The spend per channel, with the brief's min (orange) and max (red) as markers.
    static func spendChart(_ channels: [[String: Any]], currency: String) -> String {
        let labelW = 120.0, barW = 640.0, rowH = 30.0, width = labelW + barW + 120
        let height = rowH * Double(channels.count) + 30
        let top = max(channels.map { max(dbl($0["spend"]), dbl($0["max"]), dbl($0["min"])) }.max() ?? 0, 1e-9)
        var s = svgOpen(width, height, title: "spend per channel with its min and max", cls: "spend")
        for (i, c) in channels.enumerated() {
            let y = 4 + Double(i) * rowH
            let w = dbl(c["spend"]) / top * barW
            let binding = !strings(c["binding"]).isEmpty
            s += "<text x=\"\(n(labelW - 8))\" y=\"\(n(y + 19))\" text-anchor=\"end\">\(esc(clip(str(c["channel"]), 18)))</text>"
            s += "<rect x=\"\(n(labelW))\" y=\"\(n(y + 4))\" width=\"\(n(w))\" height=\"\(n(rowH - 8))\" fill=\"\(binding ? "#b45309" : "#2563eb")\"/>"
            // The amount after the bar, or after a limit marker just past it.
            let marks = ["min", "max"].compactMap { opt(c[$0]) }.map { labelW + $0 / top * barW }.filter { $0 >= labelW + w - 2 && $0 < labelW + w + 12 }
            let tx = max(labelW + w, marks.max() ?? 0) + 6
            s += "<text x=\"\(n(tx))\" y=\"\(n(y + 19))\">\(esc(currency)) \(money(dbl(c["spend"])))</text>"
            for (key, colour) in [("min", "#111827"), ("max", "#dc2626")] where c[key] != nil && !(c[key] is NSNull) {
                let x = labelW + dbl(c[key]) / top * barW
                s += "<line x1=\"\(n(x))\" x2=\"\(n(x))\" y1=\"\(n(y))\" y2=\"\(n(y + rowH))\" stroke=\"\(colour)\" stroke-width=\"3\">"
                    + "<title>\(key) \(money(dbl(c[key])))</title></line>"
            }
        }
        let ly = Double(channels.count) * rowH + 20
        s += "<rect x=\"\(n(labelW))\" y=\"\(n(ly - 9))\" width=\"10\" height=\"10\" fill=\"#2563eb\"/><text x=\"\(n(labelW + 14))\" y=\"\(n(ly))\" class=\"small\">spend</text>"
        s += "<rect x=\"\(n(labelW + 70))\" y=\"\(n(ly - 9))\" width=\"10\" height=\"10\" fill=\"#b45309\"/><text x=\"\(n(labelW + 84))\" y=\"\(n(ly))\" class=\"small\">at a limit</text>"
        s += "<line x1=\"\(n(labelW + 160))\" x2=\"\(n(labelW + 160))\" y1=\"\(n(ly - 10))\" y2=\"\(n(ly + 2))\" stroke=\"#111827\" stroke-width=\"3\"/><text x=\"\(n(labelW + 166))\" y=\"\(n(ly))\" class=\"small\">min</text>"
        s += "<line x1=\"\(n(labelW + 206))\" x2=\"\(n(labelW + 206))\" y1=\"\(n(ly - 10))\" y2=\"\(n(ly + 2))\" stroke=\"#dc2626\" stroke-width=\"3\"/><text x=\"\(n(labelW + 212))\" y=\"\(n(ly))\" class=\"small\">max</text>"
        return s + "</svg>"
    }

    /// A plot area with axes: maps data to pixels.
    struct Frame {
        var x0: Double, x1: Double, y0: Double, y1: Double
        var left = 56.0, right = 12.0, top = 24.0, bottom = 34.0, width = 400.0, height = 220.0
        func px(_ x: Double) -> Double { left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (height - top - bottom) }
        func axes(xLabel: String, yLabel: String, xFormat: (Double) -> String, xTicks: Bool = true) -> String {
            var s = "<line x1=\"\(n(left))\" x2=\"\(n(width - right))\" y1=\"\(n(height - bottom))\" y2=\"\(n(height - bottom))\" stroke=\"\(faint)\"/>"
            s += "<line x1=\"\(n(left))\" x2=\"\(n(left))\" y1=\"\(n(top))\" y2=\"\(n(height - bottom))\" stroke=\"\(faint)\"/>"
            for fy in ticks(y0, y1) {
                s += "<line x1=\"\(n(left))\" x2=\"\(n(width - right))\" y1=\"\(n(py(fy)))\" y2=\"\(n(py(fy)))\" stroke=\"#e5e7eb\"/>"
                s += "<text x=\"\(n(left - 4))\" y=\"\(n(py(fy) + 4))\" text-anchor=\"end\" class=\"small\">\(esc(short(fy)))</text>"
            }
            for fx in xTicks ? ticks(x0, x1) : [] {
                s += "<text x=\"\(n(px(fx)))\" y=\"\(n(height - bottom + 14))\" text-anchor=\"middle\" class=\"small\">\(esc(xFormat(fx)))</text>"
            }
            s += "<text x=\"\(n((left + width - right) / 2))\" y=\"\(n(height - 4))\" text-anchor=\"middle\" class=\"small\">\(esc(xLabel))</text>"
            s += "<text x=\"\(n(left))\" y=\"14\" class=\"small\">\(esc(yLabel))</text>"
            return s
        }
    }

    /// A round step for about four intervals over the range (1, 2 or 5 times a power of ten).
    static func niceStep(_ range: Double) -> Double {
        guard range.isFinite, range > 0 else { return 1 }
        let raw = range / 4, e = pow(10, (log10(raw)).rounded(.down)), f = raw / e
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * e
    }
    /// The range widened to whole steps.
    static func nice(_ lo: Double, _ hi: Double) -> (Double, Double) {
        let step = niceStep(hi - lo)
        return ((lo / step).rounded(.down) * step, (hi / step).rounded(.up) * step)
    }
    /// The round values from lo to hi (at most 12).
    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let step = niceStep(hi - lo)
        var out: [Double] = [], v = (lo / step).rounded(.up) * step
        while v <= hi + step * 1e-9, out.count < 12 { out.append(abs(v) < step * 1e-9 ? 0 : v); v += step }
        return out
    }

    static func curveChart(_ c: [String: Any], kpi: String, currency: String, extrapolated: Bool = false,
                           expectedAtChosen: Double? = nil) -> String {
        let pts = arr(c["points"]).map { (x: dbl($0["spend"]), y: dbl($0["kpi"]), lo: opt($0["low"]), hi: opt($0["high"])) }
            .filter { $0.x.isFinite && $0.y.isFinite }.sorted { $0.x < $1.x }
        let chosen = opt(c["chosen_spend"]), histMax = opt(c["history_max"])
        let xs = pts.map(\.x) + [chosen, histMax].compactMap { $0 }
        let ys = pts.flatMap { [$0.y, $0.lo ?? $0.y, $0.hi ?? $0.y] }
        // Spend from 0 to the last point (round ticks inside it); the KPI axis up to a round value.
        let (y0, y1) = nice(min(0, ys.min() ?? 0), max(ys.max() ?? 1, 1e-9))
        var f = Frame(x0: min(0, xs.min() ?? 0), x1: max(xs.max() ?? 1, 1e-9), y0: y0, y1: y1)
        f.width = 366; f.height = 230; f.left = 48
        let channel = str(c["channel"])
        var s = svgOpen(f.width, f.height, title: "response curve of \(channel)", cls: "curve")
        s += f.axes(xLabel: "spend in the window (\(currency))", yLabel: "\(channel): expected \(kpi)" + (extrapolated ? " ⚠ extrapolated" : ""),
                    xFormat: short)
        let band = pts.filter { $0.lo != nil && $0.hi != nil }
        if band.count >= 2 {
            let upper = band.map { "\(n(f.px($0.x))),\(n(f.py($0.hi!)))" }
            let lower = band.reversed().map { "\(n(f.px($0.x))),\(n(f.py($0.lo!)))" }
            s += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"#ccfbf1\"/>"
        }
        s += "<polyline points=\"\(pts.map { "\(n(f.px($0.x))),\(n(f.py($0.y)))" }.joined(separator: " "))\" fill=\"none\" stroke=\"\(accent)\" stroke-width=\"2.5\"/>"
        if let h = histMax {
            s += "<line x1=\"\(n(f.px(h)))\" x2=\"\(n(f.px(h)))\" y1=\"\(n(f.top))\" y2=\"\(n(f.height - f.bottom))\" stroke=\"\(faint)\" stroke-dasharray=\"4 3\">"
                + "<title>largest spend in the history: \(money(h))</title></line>"
        }
        if let x = chosen {
            // The job's own figure for the chosen spend when it gives one, else read off the curve.
            let y = expectedAtChosen ?? interpolate(pts.map { ($0.x, $0.y) }, at: x)
            s += "<line x1=\"\(n(f.px(x)))\" x2=\"\(n(f.px(x)))\" y1=\"\(n(f.top))\" y2=\"\(n(f.height - f.bottom))\" stroke=\"#dc2626\" stroke-width=\"2\"/>"
            if let y { s += "<circle cx=\"\(n(f.px(x)))\" cy=\"\(n(f.py(y)))\" r=\"5\" fill=\"#dc2626\"/>" }
            let anchor = f.px(x) > f.width * 0.7 ? "end" : "start"
            s += "<text x=\"\(n(f.px(x) + (anchor == "end" ? -5 : 5)))\" y=\"\(n(f.top + 12))\" text-anchor=\"\(anchor)\" class=\"small\" fill=\"#dc2626\">"
                + "chosen \(esc(currency)) \(money(x))\(y.map { " → " + fmt($0, 1) } ?? "")</text>"
        }
        return s + "</svg>"
    }

    static func forecastChart(_ weeks: [[String: Any]], kpi: String, period: String) -> String {
        let rows = weeks.map { w in
            (label: str(w["period_start"] ?? w["week_start"]), y: dbl(w["expected"]), lo: opt(w["low"]), hi: opt(w["high"]))
        }
        let ys = rows.flatMap { [$0.y, $0.lo ?? $0.y, $0.hi ?? $0.y] }.filter(\.isFinite)
        let (y0, y1) = nice(min(0, ys.min() ?? 0), max(ys.max() ?? 1, 1e-9))
        // Half a week of room on each side, so that the first and last labels fit.
        var f = Frame(x0: -0.5, x1: Double(max(rows.count - 1, 1)) + 0.5, y0: y0, y1: y1)
        f.width = 860; f.height = 260; f.bottom = 40
        var s = svgOpen(f.width, f.height, title: "forecast of the \(kpi) per \(period) with its interval", cls: "forecast")
        s += f.axes(xLabel: "\(period) starting", yLabel: "expected \(kpi) per \(period)", xFormat: { _ in "" }, xTicks: false)
        for (i, r) in rows.enumerated() where rows.count <= 16 || i % max(1, rows.count / 8) == 0 {
            s += "<text x=\"\(n(f.px(Double(i))))\" y=\"\(n(f.height - f.bottom + 14))\" text-anchor=\"middle\" class=\"small\">\(esc(r.label))</text>"
        }
        let band = rows.enumerated().filter { $0.element.lo != nil && $0.element.hi != nil }
        if band.count >= 2 {
            let upper = band.map { "\(n(f.px(Double($0.offset)))),\(n(f.py($0.element.hi!)))" }
            let lower = band.reversed().map { "\(n(f.px(Double($0.offset)))),\(n(f.py($0.element.lo!)))" }
            s += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"#bfdbfe\"/>"
        }
        s += "<polyline points=\"\(rows.enumerated().map { "\(n(f.px(Double($0.offset)))),\(n(f.py($0.element.y)))" }.joined(separator: " "))\" fill=\"none\" stroke=\"#1d4ed8\" stroke-width=\"2.5\"/>"
        for (i, r) in rows.enumerated() {
            s += "<circle cx=\"\(n(f.px(Double(i))))\" cy=\"\(n(f.py(r.y)))\" r=\"3.5\" fill=\"#1d4ed8\"><title>\(esc(r.label)): \(fmt(r.y, 1))"
                + (r.lo != nil && r.hi != nil ? " (\(fmt(r.lo!, 1)) … \(fmt(r.hi!, 1)))" : "") + "</title></circle>"
        }
        return s + "</svg>"
    }

    static func interpolate(_ pts: [(Double, Double)], at x: Double) -> Double? {
        guard let first = pts.first, let last = pts.last else { return nil }
        if x <= first.0 { return first.1 }
        if x >= last.0 { return last.1 }
        for (a, b) in zip(pts, pts.dropFirst()) where x >= a.0 && x <= b.0 {
            return b.0 > a.0 ? a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0) : a.1
        }
        return nil
    }

    static func svgOpen(_ w: Double, _ h: Double, title: String, cls: String) -> String {
        "<svg class=\"chart \(cls)\" width=\"\(n(w))\" height=\"\(n(h))\" viewBox=\"0 0 \(n(w)) \(n(h))\" role=\"img\" aria-label=\"\(esc(title))\"><title>\(esc(title))</title>"
    }

    static func open(_ id: String) -> String { "<section id=\"\(id)\"><h2>\(sectionTitle[id] ?? id)</h2>" }

    static func unavailable(_ reason: String) -> String {
        "<div class=\"unavailable\"><b>not available:</b> \(esc(reason))</div>"
    }

    static let css = """
    body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;color:#1f2937;margin:0 auto;max-width:1180px;padding:18px 28px;background:#fff}
    h1{font-size:26px;margin:4px 0 10px}h2{font-size:20px;border-bottom:2px solid #134e4a;padding-bottom:3px;margin:26px 0 8px}h3{font-size:15px;margin:16px 0 6px}
    nav{margin:8px 0;font-size:13px}nav a{color:#134e4a;text-decoration:none}
    table{border-collapse:collapse;margin:6px 0;font-size:13px}th,td{border-bottom:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top}
    th{background:#f8fafc;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td.c{text-align:center;color:#134e4a;font-weight:700}
    table.kv th{width:110px;background:none}tr.chosen td{background:#f0fdfa}tr.flagged td{background:#fef3c7}tr.binding td{background:#ffedd5}
    tr.current td{background:#eff6ff}tr.approved td{background:#dcfce7}
    .badge{display:inline-block;font-size:13px;font-weight:700;padding:3px 10px;border-radius:4px;vertical-align:middle;margin-left:8px}
    .badge.no{background:#dc2626;color:#fff}.badge.ok{background:#16a34a;color:#fff}.warn{color:#b45309;font-weight:600}
    .why{color:#4b5563}.big{font-size:16px}code{font-size:12px;background:#f3f4f6;padding:0 3px;border-radius:3px}
    .alert{background:#fef3c7;border-left:4px solid #d97706;padding:6px 10px}
    .unavailable{border:2px dashed #9ca3af;background:#f9fafb;color:#374151;padding:12px 14px;margin:6px 0;max-width:860px}
    svg.chart{display:block;margin:6px 0;font-size:12px;fill:#1f2937}svg .small{font-size:10px;fill:#4b5563}
    .curves{display:flex;flex-wrap:wrap;gap:8px}.post{display:inline-block;margin:1px 8px 1px 0;white-space:nowrap}
    footer{margin-top:30px;color:#6b7280;font-size:12px;border-top:1px solid #e5e7eb;padding-top:8px}
    .badge.run{background:#2563eb;color:#fff}.badge.done{background:#334155;color:#fff}
    .alert.bad{background:#fee2e2;border-left-color:#dc2626;color:#991b1b;font-weight:600}tr.srm td{background:#fee2e2}.bad{color:#dc2626;font-weight:700}
    .verdicts{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0}.verdict{border-left:6px solid #64748b;background:#f8fafc;padding:8px 12px;width:520px}
    .verdict .word{font-size:18px;font-weight:700;text-transform:uppercase}.verdict.win{border-color:#15803d}.verdict.win .word{color:#15803d}
    .verdict.loss{border-color:#dc2626}.verdict.loss .word{color:#dc2626}.verdict.invalid{border-color:#7c3aed;background:#f5f3ff}
    .verdict.invalid .word{color:#7c3aed}.verdict.none .word{color:#475569}
    @media print{nav{display:none}section{break-inside:avoid-page}}
    """

    // MARK: - values and formatting

    /// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
    public static func esc(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static func obj(_ v: Any?) -> [String: Any] { v as? [String: Any] ?? [:] }
    static func arr(_ v: Any?) -> [[String: Any]] { v as? [[String: Any]] ?? [] }
    static func strings(_ v: Any?) -> [String] { (v as? [Any] ?? []).map(text) }
    static func str(_ v: Any?) -> String { v.map(text) ?? "" }
    static func dbl(_ v: Any?) -> Double { (v as? NSNumber)?.doubleValue ?? (v as? String).flatMap(Double.init) ?? 0 }
    static func opt(_ v: Any?) -> Double? {
        guard let v, !(v is NSNull) else { return nil }
        let d = dbl(v)
        return d.isFinite ? d : nil
    }
    static func int(_ v: Any?) -> Int { let d = dbl(v); return d.isFinite && abs(d) < 1e15 ? Int(d.rounded()) : 0 }
    static func int64(_ v: Any?) -> Int64 { let d = dbl(v); return d.isFinite && abs(d) < 1e15 ? Int64(d) : 0 }
    static func bool(_ v: Any?) -> Bool { (v as? Bool) ?? false }

    /// Any JSON value as text: strings as they are, arrays joined, objects as key=value.
    static func text(_ v: Any) -> String {
        switch v {
        case let s as String: return s
        case is NSNull: return ""
        case let n as NSNumber: return n.stringValue
        case let a as [Any]: return a.map(text).joined(separator: ", ")
        case let o as [String: Any]: return o.keys.sorted().map { "\($0)=\(text(o[$0]!))" }.joined(separator: ", ")
        default: return "\(v)"
        }
    }

    /// Pixel coordinates: one decimal, no trailing ".0".
    static func n(_ x: Double) -> String {
        guard x.isFinite else { return "0" }
        let r = (x * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
    }
    static func fmt(_ x: Double, _ digits: Int) -> String { x.isFinite ? String(format: "%.\(digits)f", x) : "–" }
    static func sig(_ x: Double) -> String { x.isFinite ? String(format: "%.4g", x) : "–" }
    /// 50000 → "50,000"; cents only when there are any.
    static func money(_ x: Double) -> String {
        guard x.isFinite else { return "–" }
        let cents = (abs(x) * 100).rounded()
        let whole = Int64(cents / 100), frac = Int64(cents) % 100
        var digits = String(whole), grouped = ""
        while digits.count > 3 { grouped = "," + digits.suffix(3) + grouped; digits.removeLast(3) }
        return (x < 0 ? "-" : "") + digits + grouped + (frac == 0 ? "" : String(format: ".%02d", frac))
    }
    /// Axis ticks: 1.2k, 35k, 1.5M.
    static func short(_ x: Double) -> String {
        let a = abs(x)
        if a >= 1e6 { return trim(x / 1e6) + "M" }
        if a >= 1e3 { return trim(x / 1e3) + "k" }
        return a >= 10 || a == 0 ? String(format: "%.0f", x) : String(format: "%.2g", x)
    }
    static func trim(_ x: Double) -> String { abs(x) >= 10 ? String(format: "%.0f", x) : String(format: "%.1f", x).replacingOccurrences(of: ".0", with: "") }
    static func clip(_ s: String, _ n: Int) -> String { s.count <= n ? s : String(s.prefix(n - 1)) + "…" }
    static func rgb(_ r: Double, _ g: Double, _ b: Double) -> String {
        func c(_ v: Double) -> Int { Int(min(255, max(0, v.rounded()))) }
        return String(format: "#%02x%02x%02x", c(r), c(g), c(b))
    }
    static func isoDay(_ at: Int64) -> String {
        CivilDate.iso(days: Int(at >= 0 ? at / 86400 : (at - 86399) / 86400))
    }
}
