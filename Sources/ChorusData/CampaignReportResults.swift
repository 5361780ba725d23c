import Foundation

/// The results section of the campaign report: the latest evaluation of the campaign (the `campaign-eval` job's look,
/// stored as a version of `campaign-evaluations/<id>`), read as JSON. Every key may be missing and every number null:
/// a missing figure is shown as "–", never as NaN.
///
/// In order: a header line (look, data through, running or finished, users per arm, the correction), the sample-ratio
/// check per segment, a verdict per segment with its why, a forest plot of the primary metric's lift per segment and
/// per segment × channel, pacing against the plan (cumulative planned and actual spend per channel, and a table), the
/// channels' efficiency, and the problems the job found.
extension CampaignReport {
    /// Verdict colours: the bar (and the card) and its light version (the always-valid interval).
    static let verdictColour = ["win": "#15803d", "loss": "#dc2626", "none": "#64748b", "invalid": "#7c3aed"]
    static let verdictLight = ["win": "#86efac", "loss": "#fca5a5", "none": "#cbd5e1", "invalid": "#c4b5fd"]
    /// Pacing chart: the plan (dashed) and the spend.
    static let plannedColour = "#1f2937", spentColour = "#0891b2"

    /// win, loss, invalid or none (no detectable effect, yet or at all, or not measured).
    static func verdictKind(_ verdict: String, valid: Bool) -> String {
        if !valid || verdict.hasPrefix("invalid") { return "invalid" }
        if verdict == "win" { return "win" }
        if verdict == "loss" { return "loss" }
        return "none"
    }

    static func resultsSection(_ plan: [String: Any], brief: [String: Any], meta: Meta, evaluation: [String: Any]?) -> String {
        var s = open("results")
        guard let e = evaluation else {
            return s + "<div class=\"unavailable\"><b>not measured yet:</b> no evaluation of this campaign is stored. "
                + "<code>chorus campaign evaluate \(esc(meta.id))</code> measures it (treatment against holdout per segment and "
                + "channel, pacing against the plan), and the next report shows the results here.</div></section>"
        }
        let currency = str(brief["currency"])
        let segments = arr(e["segments"])
        s += resultsHeader(e, meta: meta, segments: segments)
        s += srmTable(plan, e)
        s += verdictCards(plan, e, segments: segments)
        s += "<h3>Lift per segment and channel</h3>" + forestPlot(plan, e, segments: segments)
        s += "<h3>Pacing against the plan</h3>" + pacing(e, currency: currency)
        s += "<h3>Channels</h3>" + efficiencyTable(e, currency: currency)
        let problems = strings(e["problems"])
        s += "<h3>Problems</h3>"
        s += problems.isEmpty ? "<p>The evaluation found no problem in the data.</p>"
            : "<ul>" + problems.map { "<li class=\"warn\">⚠ \(esc($0))</li>" }.joined() + "</ul>"
        return s + "</section>"
    }

    static func resultsHeader(_ e: [String: Any], meta: Meta, segments: [[String: Any]]) -> String {
        let w = obj(e["window"])
        let finished = bool(w["finished"])
        let badge = finished ? "<span class=\"badge done\">FINISHED</span>" : "<span class=\"badge run\">RUNNING</span>"
        let totals = obj(e["totals"])
        func armUsers(_ arm: String) -> Int {
            totals[arm] != nil ? int(totals[arm]) : segments.reduce(0) { $0 + int(obj(obj($1["arms"])[arm])["users"]) }
        }
        let planVersion = int(e["plan_version"])
        var s = "<p class=\"big\">\(badge) Look <b>\(int(e["look"]))</b>"
            + (planVersion > 0 ? " of plan version \(planVersion)" : "")
            + (planVersion > 0 && planVersion != meta.version ? " <span class=\"warn\">(this page shows version \(meta.version))</span>" : "")
            + ", data through <b>\(esc(str(e["data_end"])))</b>: "
        let window = "\(esc(str(w["start"]))) … \(esc(str(w["end"])))"
        s += finished ? "finished, \(int(w["days"])) day(s) \(window)" : "running, day \(int(w["elapsed_days"])) of \(int(w["days"])) (\(window))"
        s += ". Users: <b>\(armUsers("treatment"))</b> treated, <b>\(armUsers("holdout"))</b> in the holdout.</p>"
        let alpha = opt(e["alpha"])
        var facts: [String] = []
        if !str(e["primary_metric"]).isEmpty {
            facts.append("Primary metric <b>\(esc(str(e["primary_metric"])))</b>" + (str(e["kpi"]).isEmpty ? "" : " (KPI \(esc(str(e["kpi"]))))"))
        }
        if !str(e["correction"]).isEmpty {
            facts.append("correction <b>\(esc(str(e["correction"])))</b> over \(int(e["tests"])) test(s)"
                         + (e["decision_tests"] != nil ? " (\(int(e["decision_tests"])) deciding)" : "")
                         + (alpha.map { ", α \(sig($0))" } ?? ""))
        }
        let seq = obj(e["sequential"])
        if !str(seq["method"]).isEmpty { facts.append("always-valid intervals: \(esc(str(seq["method"])))") }
        if !str(e["evaluated_at"]).isEmpty {
            facts.append("evaluated at \(esc(str(e["evaluated_at"])))" + (str(e["job_id"]).isEmpty ? "" : " by job <code>\(esc(str(e["job_id"])))</code>"))
        }
        if !facts.isEmpty { s += "<p class=\"why\">\(facts.joined(separator: "; ")).</p>" }
        return s
    }

    static func srmTable(_ plan: [String: Any], _ e: [String: Any]) -> String {
        let srm = arr(e["srm"])
        var s = "<h3>Sample ratio check</h3>"
        if srm.isEmpty { return s + "<p>The evaluation has no sample ratio check.</p>" }
        let bad = srm.filter { bool($0["mismatch"]) }
        if !bad.isEmpty {
            s += "<p class=\"alert bad\">⚠ Sample ratio mismatch in segment(s) " + bad.map { "\(int($0["segment"]))" }.joined(separator: ", ")
                + ": the arms' sizes do not match the design, so their results are not valid.</p>"
        }
        s += "<table><tr><th>Segment</th><th class=\"n\">Holdout share (design)</th><th class=\"n\">Observed</th>"
            + "<th class=\"n\">Treated / holdout</th><th class=\"n\">χ²</th><th class=\"n\">p</th><th>Check</th></tr>"
        for r in srm {
            let mismatch = bool(r["mismatch"])
            s += "<tr class=\"\(mismatch ? "srm" : "")\"><td>\(segmentLabel(plan, int(r["segment"])))</td>"
                + "<td class=\"n\">\(pct(r["expected_holdout_share"]))</td><td class=\"n\">\(pct(r["observed_holdout_share"]))</td>"
                + "<td class=\"n\">\(int(r["treatment"])) / \(int(r["holdout"]))</td><td class=\"n\">\(num(r["chi_square"]))</td>"
                + "<td class=\"n\">\(num(r["p_value"]))</td>"
                + "<td>\(mismatch ? "<span class=\"bad\">⚠ mismatch: results not valid</span>" : "ok")</td></tr>"
        }
        return s + "</table>"
    }

    static func verdictCards(_ plan: [String: Any], _ e: [String: Any], segments: [[String: Any]]) -> String {
        var s = "<h3>Verdict per segment</h3>"
        if segments.isEmpty { return s + "<p>The evaluation has no segment.</p>" }
        let metric = str(e["primary_metric"])
        s += "<div class=\"verdicts\">"
        for g in segments {
            let verdict = str(g["verdict"])
            let valid = g["valid"] == nil || bool(g["valid"])
            let kind = verdictKind(verdict, valid: valid)
            let arms = obj(g["arms"])
            let t = obj(arms["treatment"]), h = obj(arms["holdout"])
            var line = "\(int(t["users"])) treated, \(int(h["users"])) in the holdout"
            if !metric.isEmpty, t[metric] != nil || h[metric] != nil {
                line += "; \(esc(metric)) \(metricValue(metric, t[metric])) treated against \(metricValue(metric, h[metric])) held out"
            }
            s += "<div class=\"verdict \(kind)\"><div>Segment \(segmentLabel(plan, int(g["segment"])))</div>"
                + "<div class=\"word\">\(esc(verdict.isEmpty ? "not measured" : verdict))</div>"
                + "<div class=\"why\">\(esc(str(g["why"])))</div><div class=\"why\">\(line)</div></div>"
        }
        return s + "</div>"
    }

    /// A rate as a percentage, anything else with 4 significant digits.
    static func metricValue(_ metric: String, _ v: Any?) -> String {
        guard let x = opt(v) else { return "–" }
        return isRate(metric) ? fmt(100 * x, 2) + "%" : sig(x)
    }
    static func isRate(_ metric: String) -> Bool { metric.hasSuffix("_rate") || metric.hasPrefix("retention") }

    struct LiftRow {
        var label: String
        var whole: Bool
        var point: Double?
        var low: Double?
        var high: Double?
        var seqLow: Double?
        var seqHigh: Double?
        var kind: String
        var verdict: String
    }

    /// One row per segment (the primary metric over the whole segment), then one per channel of it; the absolute
    /// difference treatment − holdout with its interval (thick), the always-valid interval (thin, light) and a zero line.
    static func forestPlot(_ plan: [String: Any], _ e: [String: Any], segments: [[String: Any]]) -> String {
        let lifts = arr(e["lifts"])
        let metric = !str(e["primary_metric"]).isEmpty ? str(e["primary_metric"])
            : lifts.first { bool($0["primary"]) }.map { str($0["metric"]) } ?? ""
        let mine = lifts.filter { str($0["metric"]) == metric }
        var order = segments.map { int($0["segment"]) }
        for l in mine where !order.contains(int(l["segment"])) { order.append(int(l["segment"])) }
        var rows: [LiftRow] = []
        func row(_ l: [String: Any], label: String, whole: Bool) -> LiftRow {
            let seq = obj(l["sequential"])
            let verdict = str(l["verdict"])
            return LiftRow(label: label, whole: whole, point: opt(l["absolute"]), low: opt(l["absolute_low"]), high: opt(l["absolute_high"]),
                           seqLow: opt(seq["low"]), seqHigh: opt(seq["high"]),
                           kind: verdictKind(verdict, valid: l["valid"] == nil || bool(l["valid"])), verdict: verdict)
        }
        for seg in order {
            if let w = mine.first(where: { int($0["segment"]) == seg && str($0["channel"]).isEmpty }) {
                rows.append(row(w, label: "segment \(seg) · all channels", whole: true))
            }
            for l in mine where int(l["segment"]) == seg && !str(l["channel"]).isEmpty {
                rows.append(row(l, label: str(l["channel"]), whole: false))
            }
        }
        if rows.isEmpty { return unavailable("the evaluation has no lift of \(metric.isEmpty ? "the primary metric" : metric)") }

        // The axis: every segment row's intervals and zero; the channels' too unless they would squeeze the segments
        // into less than two thirds of the width (small channels have wide intervals): those are cut at the edge (▸).
        func extent(_ rs: [LiftRow]) -> (Double, Double)? {
            let v = rs.flatMap { [$0.point, $0.low, $0.high, $0.seqLow, $0.seqHigh].compactMap { $0 } }
            guard let lo = v.min(), let hi = v.max() else { return nil }
            return (lo, hi)
        }
        let base = extent(rows.filter(\.whole)) ?? extent(rows) ?? (0, 0)
        var lo = min(base.0, 0), hi = max(base.1, 0)
        if let all = extent(rows) {
            let width = max(hi - lo, 1e-12) * 1.5
            lo = max(min(lo, all.0), hi - width)
            hi = min(max(hi, all.1), lo + width)
        }
        if hi - lo < 1e-12 { lo -= 0.01; hi += 0.01 }
        let pad = (hi - lo) * 0.04
        let (x0, x1) = nice(lo - pad, hi + pad)

        let rate = isRate(metric)
        func value(_ x: Double) -> String { rate ? String(format: "%+.2f", 100 * x) : String(format: "%+.4g", x) }
        let unit = rate ? " pp" : ""
        func tick(_ x: Double) -> String { rate ? (x == 0 ? "0" : String(format: "%+g", (100 * x * 1000).rounded() / 1000)) : short(x) }

        let labelW = 190.0, plotW = 540.0, textW = 350.0, rowH = 22.0, top = 30.0, bottom = 40.0
        let width = labelW + plotW + textW, height = top + rowH * Double(rows.count) + bottom
        func px(_ x: Double) -> Double { labelW + (x - x0) / (x1 - x0) * plotW }
        func clamp(_ x: Double) -> Double { min(max(x, x0), x1) }
        var s = "<p>The difference in <b>\(esc(metric))</b> (treatment − holdout\(rate ? ", in percentage points" : "")) per segment, "
            + "and per channel inside it: the dot is the estimate, the thick bar its \(opt(e["alpha"]).map { fmt(100 * (1 - $0), 0) + "% " } ?? "")"
            + "interval, the thin light bar the always-valid (sequential) interval, which holds at every look; right of the "
            + "zero line the treatment does better. Colour: <span style=\"color:\(verdictColour["win"]!)\">win</span>, "
            + "<span style=\"color:\(verdictColour["none"]!)\">no detectable effect</span>, <span style=\"color:\(verdictColour["loss"]!)\">loss</span>, "
            + "<span style=\"color:\(verdictColour["invalid"]!)\">invalid</span>. Bars cut at the edge end in ▸.</p>"
        s += svgOpen(width, height, title: "lift of \(metric) per segment and channel with intervals", cls: "forest")
        // Grid, ticks, zero line.
        for t in ticks(x0, x1) {
            s += "<line x1=\"\(n(px(t)))\" x2=\"\(n(px(t)))\" y1=\"\(n(top - 4))\" y2=\"\(n(height - bottom))\" stroke=\"#e5e7eb\"/>"
            s += "<text x=\"\(n(px(t)))\" y=\"\(n(height - bottom + 14))\" text-anchor=\"middle\" class=\"small\">\(esc(tick(t)))</text>"
        }
        s += "<text x=\"\(n(labelW + plotW / 2))\" y=\"\(n(height - 6))\" text-anchor=\"middle\" class=\"small\">"
            + "\(esc(metric)): treatment − holdout\(rate ? " (percentage points)" : "")</text>"
        s += "<text x=\"\(n(labelW + plotW + 12))\" y=\"16\" class=\"small\">estimate [interval]\(unit) · verdict</text>"
        for (i, r) in rows.enumerated() {
            let y = top + Double(i) * rowH, cy = y + rowH / 2
            if r.whole {
                s += "<rect x=\"0\" y=\"\(n(y))\" width=\"\(n(width))\" height=\"\(n(rowH))\" fill=\"#f8fafc\"/>"
            }
            s += "<text x=\"\(n(r.whole ? 4 : 22))\" y=\"\(n(cy + 4))\"\(r.whole ? " font-weight=\"700\"" : "")>\(esc(clip(r.label, 28)))</text>"
            let colour = verdictColour[r.kind] ?? ink, light = verdictLight[r.kind] ?? muted
            if let a = r.seqLow, let b = r.seqHigh {
                s += "<line x1=\"\(n(px(clamp(a))))\" x2=\"\(n(px(clamp(b))))\" y1=\"\(n(cy))\" y2=\"\(n(cy))\" stroke=\"\(light)\" stroke-width=\"3\">"
                    + "<title>always-valid interval \(value(a)) to \(value(b))\(unit)</title></line>"
            }
            if let a = r.low, let b = r.high {
                let xa = px(clamp(a)), xb = px(clamp(b))
                s += "<rect x=\"\(n(xa))\" y=\"\(n(cy - 4))\" width=\"\(n(max(xb - xa, 2)))\" height=\"8\" fill=\"\(colour)\">"
                    + "<title>interval \(value(a)) to \(value(b))\(unit)</title></rect>"
                if b > x1 { s += "<text x=\"\(n(px(x1) + 1))\" y=\"\(n(cy + 4))\" fill=\"\(colour)\">▸</text>" }
                if a < x0 { s += "<text x=\"\(n(px(x0) - 9))\" y=\"\(n(cy + 4))\" fill=\"\(colour)\">◂</text>" }
            }
            if let p = r.point, p >= x0, p <= x1 {
                s += "<circle cx=\"\(n(px(p)))\" cy=\"\(n(cy))\" r=\"5\" fill=\"#111827\" stroke=\"#ffffff\" stroke-width=\"1.5\">"
                    + "<title>\(esc(r.label)): \(value(p))\(unit)</title></circle>"
            }
            let interval = r.low != nil && r.high != nil ? " [\(value(r.low!)), \(value(r.high!))]" : ""
            s += "<text x=\"\(n(labelW + plotW + 12))\" y=\"\(n(cy + 4))\" fill=\"\(colour)\">"
                + "\(r.point.map(value) ?? "–")\(interval)\(r.point == nil ? "" : unit) · \(esc(r.verdict.isEmpty ? "–" : r.verdict))</text>"
        }
        s += "<line x1=\"\(n(px(0)))\" x2=\"\(n(px(0)))\" y1=\"\(n(top - 4))\" y2=\"\(n(height - bottom))\" stroke=\"#111827\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>"
        return s + "</svg>"
    }

    /// Per channel a chart of the cumulative planned and actual spend by day, then the table.
    static func pacing(_ e: [String: Any], currency: String) -> String {
        let pacing = arr(e["pacing"])
        if pacing.isEmpty { return unavailable("the evaluation has no pacing (no spend planned or recorded)") }
        var s = "<p>Spend to date against the approved plan, per channel: the dashed dark line is the plan, cumulative by day; "
            + "the thick blue line what was spent; the orange marks the days with planned posts. Pace is spend ÷ planned to date "
            + "(under 90% is under, over 110% over).</p>"
        s += "<div class=\"curves\">" + pacing.map { pacingChart($0, currency: currency) }.joined() + "</div>"
        s += "<table><tr><th>Channel</th><th class=\"n\">Planned (window)</th><th class=\"n\">Planned to date</th><th class=\"n\">Spent</th>"
            + "<th class=\"n\">Pace</th><th>Status</th><th class=\"n\">Posts due (window)</th><th class=\"n\">Impressions</th><th class=\"n\">Clicks</th></tr>"
        for p in pacing {
            let status = str(p["status"])
            s += "<tr class=\"\(status == "on plan" || status.isEmpty ? "" : "flagged")\"><td>\(esc(str(p["channel"])))</td>"
                + "<td class=\"n\">\(moneyOrDash(p["planned_spend"]))</td><td class=\"n\">\(moneyOrDash(p["planned_to_date"]))</td>"
                + "<td class=\"n\">\(moneyOrDash(p["spend"]))</td><td class=\"n\">\(pct(p["pace"]))</td><td>\(esc(status))</td>"
                + "<td class=\"n\">\(int(p["planned_posts_to_date"])) (\(int(p["planned_posts"])))</td>"
                + "<td class=\"n\">\(int(p["impressions"]))</td><td class=\"n\">\(p["clicks"] == nil ? "–" : String(int(p["clicks"])))</td></tr>"
        }
        return s + "</table><p class=\"why\">Amounts in \(esc(currency.isEmpty ? "the brief's currency" : currency)).</p>"
    }

    static func pacingChart(_ p: [String: Any], currency: String) -> String {
        let days = arr(p["by_day"]).sorted { str($0["date"]) < str($1["date"]) }
        let channel = str(p["channel"])
        var planned: [Double] = [], spent: [Double] = []
        var a = 0.0, b = 0.0
        for d in days {
            a += opt(d["planned_spend"]) ?? 0; b += opt(d["spend"]) ?? 0
            planned.append(a); spent.append(b)
        }
        let (y0, y1) = nice(0, max(planned.max() ?? 0, spent.max() ?? 0, opt(p["planned_spend"]) ?? 0, 1e-9))
        var f = Frame(x0: 0, x1: Double(max(days.count - 1, 1)), y0: y0, y1: y1)
        f.width = 366; f.height = 210; f.left = 48; f.bottom = 38
        let title = "\(channel): \(str(p["status"]))" + (opt(p["pace"]).map { ", pace " + fmt(100 * $0, 0) + "%" } ?? "")
        var s = svgOpen(f.width, f.height, title: "cumulative planned and actual spend of \(channel) by day", cls: "pacing")
        s += f.axes(xLabel: "day", yLabel: title, xFormat: { _ in "" }, xTicks: false)
        if days.isEmpty { return s + "<text x=\"\(n(f.width / 2))\" y=\"\(n(f.height / 2))\" text-anchor=\"middle\">no day recorded</text></svg>" }
        for i in Set([0, days.count / 2, days.count - 1]).sorted() {
            s += "<text x=\"\(n(f.px(Double(i))))\" y=\"\(n(f.height - f.bottom + 14))\" text-anchor=\"\(i == 0 ? "start" : i == days.count - 1 ? "end" : "middle")\" class=\"small\">\(esc(str(days[i]["date"])))</text>"
        }
        for (i, d) in days.enumerated() where int(d["planned_posts"]) > 0 {
            s += "<rect x=\"\(n(f.px(Double(i)) - 2))\" y=\"\(n(f.height - f.bottom - 7))\" width=\"4\" height=\"7\" fill=\"#f59e0b\">"
                + "<title>\(esc(str(d["date"]))): \(int(d["planned_posts"])) planned post(s)</title></rect>"
        }
        func line(_ ys: [Double]) -> String { ys.enumerated().map { "\(n(f.px(Double($0.offset)))),\(n(f.py($0.element)))" }.joined(separator: " ") }
        s += "<polyline points=\"\(line(spent))\" fill=\"none\" stroke=\"\(spentColour)\" stroke-width=\"4\"/>"
        s += "<polyline points=\"\(line(planned))\" fill=\"none\" stroke=\"\(plannedColour)\" stroke-width=\"1.8\" stroke-dasharray=\"6 4\"/>"
        let last = days.count - 1
        s += "<circle cx=\"\(n(f.px(Double(last))))\" cy=\"\(n(f.py(spent[last])))\" r=\"4\" fill=\"\(spentColour)\">"
            + "<title>\(esc(channel)): \(esc(currency)) \(money(spent[last])) spent by \(esc(str(days[last]["date"]))), "
            + "\(money(planned[last])) planned</title></circle>"
        return s + "</svg>"
    }

    static func efficiencyTable(_ e: [String: Any], currency: String) -> String {
        let channels = arr(e["channels"])
        if channels.isEmpty { return unavailable("the evaluation has no channel") }
        let kpi = str(e["kpi"]).isEmpty ? "conversions" : str(e["kpi"])
        var s = "<p>Per channel over the whole window: the treated users' delivery and return, and the \(esc(kpi)) the channel "
            + "added over the holdout (incremental, with its interval), with what each of them cost.</p>"
        s += "<table><tr><th>Channel</th><th class=\"n\">Users (treated / holdout)</th><th class=\"n\">Impressions</th><th class=\"n\">CTR</th>"
            + "<th class=\"n\">Conversion rate (treated / holdout)</th><th class=\"n\">Spend</th><th class=\"n\">CPA</th><th class=\"n\">ROAS</th>"
            + "<th class=\"n\">ROI</th><th class=\"n\">Incremental \(esc(kpi)) [interval]</th><th class=\"n\">Cost per incremental</th></tr>"
        for c in channels {
            let t = obj(c["treatment"]), h = obj(c["holdout"]), inc = obj(c["incremental_conversions"])
            let incremental = opt(inc["value"]).map { v in
                fmt(v, 1) + (opt(inc["low"]) != nil && opt(inc["high"]) != nil ? " [\(fmt(opt(inc["low"])!, 1)), \(fmt(opt(inc["high"])!, 1))]" : "")
            } ?? "–"
            s += "<tr><td>\(esc(str(c["channel"])))</td><td class=\"n\">\(int(t["users"])) / \(int(h["users"]))</td>"
                + "<td class=\"n\">\(int(t["impressions"]))</td><td class=\"n\">\(pct(t["ctr"], 2))</td>"
                + "<td class=\"n\">\(pct(t["conversion_rate"], 2)) / \(pct(h["conversion_rate"], 2))</td>"
                + "<td class=\"n\">\(moneyOrDash(t["spend"]))</td><td class=\"n\">\(moneyOrDash(t["cpa"]))</td>"
                + "<td class=\"n\">\(num(t["roas"]))</td><td class=\"n\">\(pct(t["roi"]))</td>"
                + "<td class=\"n\">\(incremental)</td><td class=\"n\">\(moneyOrDash(c["cost_per_incremental_conversion"]))</td></tr>"
        }
        return s + "</table><p class=\"why\">Amounts in \(esc(currency.isEmpty ? "the brief's currency" : currency)); "
            + "a cost per incremental \(esc(kpi)) is “–” when the channel added none.</p>"
    }

    /// 0.4839 → "48.4%"; null, missing or not finite → "–".
    static func pct(_ v: Any?, _ digits: Int = 1) -> String { opt(v).map { fmt(100 * $0, digits) + "%" } ?? "–" }
    static func num(_ v: Any?) -> String { opt(v).map(sig) ?? "–" }
    static func moneyOrDash(_ v: Any?) -> String { opt(v).map(money) ?? "–" }
}
