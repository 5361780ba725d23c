import ChorusAnalytics
import ChorusModel
import Foundation

/// The budget part of a campaign plan (docs/campaigns.md "Response curves and the budget split"): one response curve
/// per channel (adstock + Hill, `MarketingMix.fit`) from that channel's business-as-usual spend and outcomes, the
/// split that maximises the KPI under the brief's limits (`MarketingMix.allocate`), and everything a reader needs to
/// judge it: marginal returns, binding limits, unspent budget, extrapolation beyond the history, the curves with
/// the chosen spend, the KPI by week with 80% intervals. Without a usable history: the even split, and why.
public enum CampaignBudget {
    /// The least history a channel needs for a curve: periods, and periods with spend.
    static let minPeriods = 12, minSpendingPeriods = 6

    struct Row { var channel: String; var day: Int64; var periodDays: Int; var spend: Double; var kpi: Double }

    /// The outcome column a KPI is measured by in the spend records, and what to say when it stands in for another.
    static func outcome(_ kpi: String) -> (column: String, note: String?) {
        switch kpi {
        case "impressions": return ("impressions", nil)
        case "reach": return ("impressions", "reach is not recorded per channel: impressions stand in for it")
        case "engagements": return ("clicks", "engagements are not recorded in the spend history: clicks stand in for them")
        case "clicks": return ("clicks", nil)
        case "revenue": return ("revenue", nil)
        default: return ("conversions", nil)
        }
    }

    /// A measured experiment of one channel (a finished, valid `campaign-eval` look's `calibration` row): the
    /// campaign's spend on the channel over `days` days and the incremental KPI it caused, with its standard error.
    public struct Experiment: Sendable, Equatable {
        public var id: String
        public var channel: String
        public var kpi: String
        public var spend: Double
        public var days: Double
        public var lift: Double
        public var standardError: Double
        public init(id: String, channel: String, kpi: String, spend: Double, days: Double, lift: Double, standardError: Double) {
            self.id = id; self.channel = channel; self.kpi = kpi; self.spend = spend; self.days = days; self.lift = lift
            self.standardError = standardError
        }
    }

    public static func plan(brief: CampaignBrief, history: [Chorus_V1_Jobs_CampaignSpendRow],
                            experiments: [Experiment] = []) -> (json: [String: Any], gaps: [String], evidence: String?) {
        var gaps: [String] = []
        let (column, note) = outcome(brief.kpi)
        if let note { gaps.append(note) }
        let limits = Dictionary(uniqueKeysWithValues: brief.channels.map { c in
            (c, MarketingMix.SpendLimit(minimum: brief.constraints.spend[c]?.min ?? 0, maximum: brief.constraints.spend[c]?.max)) })
        let days = brief.days ?? 1
        func value(_ r: Chorus_V1_Jobs_CampaignSpendRow) -> Double {
            switch column { case "impressions": return r.impressions; case "clicks": return r.clicks; case "revenue": return r.revenue; default: return r.conversions }
        }
        // The history's period: the commonest one among the brief's channels.
        let mine = history.filter { brief.channels.contains($0.channel) }
        let periodDays = Dictionary(grouping: mine, by: \.periodDays).max { a, b in a.value.count != b.value.count ? a.value.count < b.value.count : a.key > b.key }?.key ?? 7
        let skipped = mine.filter { $0.periodDays != periodDays }.count
        if skipped > 0 { gaps.append("\(skipped) spend records of another period than \(periodDays) day(s) were left out of the curves") }
        var rows: [String: [Int64: (spend: Double, kpi: Double)]] = [:]
        for r in mine where r.periodDays == periodDays {
            guard let day = SpendRecord.day(of: r.date) else { continue }
            var e = rows[r.channel, default: [:]][day] ?? (0, 0)
            e.spend += r.spend; e.kpi += value(r)
            rows[r.channel, default: [:]][day] = e
        }
        var fits: [(channel: String, model: MarketingMix.Model)] = []
        var unfit: [String: String] = [:]
        for c in brief.channels {
            guard let byDay = rows[c], let first = byDay.keys.min(), let last = byDay.keys.max() else {
                unfit[c] = "no spend history"; continue
            }
            let step = Int64(periodDays)
            let dayList = stride(from: first, through: last, by: Int(step)).map { $0 }
            let spend = dayList.map { byDay[$0]?.spend ?? 0 }, kpi = dayList.map { byDay[$0]?.kpi ?? 0 }
            guard dayList.count >= minPeriods, spend.filter({ $0 > 0 }).count >= minSpendingPeriods else {
                unfit[c] = "\(dayList.count) periods, \(spend.filter { $0 > 0 }.count) with spend (a curve needs \(minPeriods) and \(minSpendingPeriods))"
                continue
            }
            do {
                // The records' outcomes are the channel's own (attributed to its spend): no spend, no outcome, so no
                // intercept or trend takes a share of the curve.
                var options = MarketingMix.FitOptions()
                options.includeIntercept = false
                options.includeTrend = false
                // Experiments on this channel measured in the same KPI calibrate its curve (Robyn's calibration).
                options.calibration = experiments.filter { $0.channel == c && outcome($0.kpi).column == column }.map {
                    MarketingMix.Calibration(id: $0.id, channel: c, spend: $0.spend, periods: $0.days / Double(periodDays),
                                             lift: $0.lift, standardError: $0.standardError)
                }
                fits.append((c, try MarketingMix.fit(kpi: kpi, channels: [.init(c, spend)], options: options)))
            } catch {
                unfit[c] = "the curve could not be fitted: \(error)"
            }
        }
        let periods = max(1, Int((Double(days) / Double(periodDays)).rounded(.up)))
        let unitName = periodDays == 7 ? "week" : "day"
        for (c, why) in unfit.sorted(by: { $0.key < $1.key }) {
            gaps.append("channel \(c): \(why); it gets only its minimum spend (\(limits[c]?.minimum ?? 0))")
        }
        guard !fits.isEmpty else {
            gaps.append("no spend history: response curves cannot be fitted, so the budget is split evenly within the brief's limits")
            let even = (try? MarketingMix.evenSplit(channels: brief.channels, budget: brief.budget, periods: periods, limits: limits))
            return (json(even, brief: brief, limits: limits, periods: periods, unit: unitName, method: "even split",
                         why: "no channel has a spend history with outcomes: without response curves no channel can be shown to return more, so each gets the same level, moved to respect the brief's min and max",
                         fits: [], unfit: unfit, model: nil), gaps, nil)
        }
        // One model of every fitted channel; the bootstrap replicates of the channels are paired by index.
        var model = MarketingMix.Model(channels: fits.map { $0.model.channels[0] },
                                       historicMaxPerPeriod: fits.map { $0.model.historicMaxPerPeriod.first ?? .greatestFiniteMagnitude })
        let reps = fits.map(\.model.replicates.count).min() ?? 0
        model.replicates = (0..<reps).map { r in fits.map { $0.model.replicates[r][0] } }
        model.intervalLevel = fits.first?.model.intervalLevel ?? 0.8
        let fitted = fits.map(\.channel)
        var fittedLimits = limits.filter { fitted.contains($0.key) }
        // Unfitted channels keep their minimum, outside the optimisation.
        let held = brief.channels.filter { !fitted.contains($0) }.reduce(0.0) { $0 + (limits[$1]?.minimum ?? 0) }
        for c in fitted where fittedLimits[c] == nil { fittedLimits[c] = .init() }
        let allocation: MarketingMix.Allocation
        do {
            allocation = try MarketingMix.allocate(model: model, budget: max(0, brief.budget - held), periods: periods, limits: fittedLimits)
        } catch {
            gaps.append("the optimiser refused the limits (\(error)): the budget is split evenly instead")
            let even = try? MarketingMix.evenSplit(channels: brief.channels, budget: brief.budget, periods: periods, limits: limits)
            return (json(even, brief: brief, limits: limits, periods: periods, unit: unitName, method: "even split",
                         why: "the response-curve optimiser could not meet the limits", fits: fits, unfit: unfit, model: nil), gaps, nil)
        }
        let first = history.compactMap { SpendRecord.day(of: $0.date) }.min().map { SpendRecord.date(ofDay: $0) } ?? ""
        let last = history.compactMap { SpendRecord.day(of: $0.date) }.max().map { SpendRecord.date(ofDay: $0) } ?? ""
        let evidence = "\(mine.count) spend records of \(fitted.count) channel(s), \(first) … \(last)"
        return (json(allocation, brief: brief, limits: limits, periods: periods, unit: unitName, method: "response curves",
                     why: "each channel's \(column) per \(unitName) fitted as adstock (carry-over) then Hill saturation of its own spend; the split maximises the expected \(brief.kpi) inside the window under the brief's limits",
                     fits: fits, unfit: unfit, model: model), gaps, evidence)
    }

    static func r(_ x: Double) -> Double { CampaignPlanJob.r6(x) }

    /// The budget section of the plan document.
    static func json(_ a: MarketingMix.Allocation?, brief: CampaignBrief, limits: [String: MarketingMix.SpendLimit], periods: Int,
                     unit: String, method: String, why: String, fits: [(channel: String, model: MarketingMix.Model)],
                     unfit: [String: String], model: MarketingMix.Model?) -> [String: Any] {
        var channels: [[String: Any]] = []
        let planned = Dictionary((a?.channels ?? []).map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        var extrapolated: [String] = []
        for c in brief.channels {
            var o: [String: Any] = ["channel": c]
            let spend = planned[c]?.spend ?? (limits[c]?.minimum ?? 0)
            o["spend"] = CampaignPlanJob.r2(spend)
            o["spend_per_\(unit)"] = r(spend / Double(periods))
            if let m = brief.constraints.spend[c]?.min { o["min"] = m }
            if let m = brief.constraints.spend[c]?.max { o["max"] = m }
            var binds: [String] = []
            if let p = planned[c] {
                if p.binding == .minimum { binds.append("min") }
                if p.binding == .maximum { binds.append("max") }
                if let v = p.expectedKPI { o["expected_kpi"] = r(v) }
                if let v = p.marginalReturn { o["marginal_return"] = r(v) }
                if let h = p.historicMaxPerPeriod, h < .greatestFiniteMagnitude { o["history_max_per_\(unit)"] = r(h) }
                o["extrapolated"] = p.extrapolated
                if p.extrapolated { extrapolated.append(c) }
            } else if let why = unfit[c] {
                o["not_modelled"] = why
                if (limits[c]?.minimum ?? 0) > 0 { binds.append("min") }
            }
            o["binding"] = binds
            if let f = fits.first(where: { $0.channel == c })?.model {
                if !f.calibration.isEmpty {
                    o["calibration"] = f.calibration.map { r -> [String: Any] in
                        var x: [String: Any] = ["experiment": r.id, "measured_lift": CampaignBudget.r(r.lift),
                                                "standard_error": CampaignBudget.r(r.point.standardError),
                                                "spend": CampaignBudget.r(r.point.spend), "used": r.used, "note": r.note]
                        if let v = r.impliedBefore, v.isFinite { x["implied_before"] = CampaignBudget.r(v) }
                        if let v = r.implied, v.isFinite { x["implied_after"] = CampaignBudget.r(v) }
                        return x
                    }
                }
                let k = f.channels[0]
                o["fit"] = ["decay": r(k.decay), "half_saturation": r(k.halfSaturation), "shape": r(k.shape),
                            "coefficient": r(k.coefficient), "r2": r(f.rSquared), "periods": f.periods,
                            "roas_history": r(f.roas.first ?? 0)]
            }
            channels.append(o)
        }
        var out: [String: Any] = [
            "method": method, "why": why, "currency": brief.currency, "total": brief.budget, "kpi": brief.kpi,
            "periods": periods, "period": unit, "channels": channels,
            "unspent": CampaignPlanJob.r2(a?.unspent ?? brief.budget),
            "unspent_why": {
                switch a?.unspentReason {
                case .allChannelsAtMaximum?: return "every channel is at its max"
                case .marginalReturnBelowThreshold?: return "more spend returns nothing on any channel (the curves are flat there)"
                default: return (a?.unspent ?? 0) > 0.005 ? "the channels' limits leave it over" : ""
                }
            }(),
            "extrapolated_channels": extrapolated,
            // The experiments that calibrated a curve (docs/campaigns.md "Calibration by experiments").
            "experiments_used": Array(Set(fits.flatMap { $0.model.calibration.filter(\.used).map { "\($0.id) (\($0.channel))" } })).sorted(),
            "expected_kpi": NSNull(), "curves": [Any](), "kpi_by_week": [Any](),
        ]
        if !extrapolated.isEmpty {
            out["extrapolation_warning"] = "the plan spends more per \(unit) than the history ever did on \(extrapolated.joined(separator: ", ")): the curve there is an extrapolation, not a measurement"
        }
        guard let model, let a, let kpi = a.expectedKPI else { return out }
        var e: [String: Any] = ["value": r(kpi), "level": a.expectedKPIInterval?.level ?? 0.8]
        if let i = a.expectedKPIInterval { e["low"] = r(i.lower); e["high"] = r(i.upper) }
        out["expected_kpi"] = e
        // The curves over the campaign window, with their intervals, and the chosen spend.
        func quantiles(_ v: [Double]) -> (Double, Double)? {
            guard v.count >= 5 else { return nil }
            let s = v.sorted()
            return (s[Int(0.1 * Double(s.count - 1))], s[Int((0.9 * Double(s.count - 1)).rounded(.up))])
        }
        var curves: [[String: Any]] = []
        for (i, k) in model.channels.enumerated() {
            let chosen = planned[k.name]?.spend ?? 0
            let histMax = model.historicMaxPerPeriod[i] < .greatestFiniteMagnitude ? model.historicMaxPerPeriod[i] * Double(periods) : chosen
            let top = max(chosen * 1.5, histMax * 1.2, (limits[k.name]?.maximum ?? 0), 1)
            let points: [[String: Any]] = (0...40).map { j in
                let s = top * Double(j) / 40
                var p: [String: Any] = ["spend": r(s), "kpi": r(k.campaignResponse(total: s, periods: periods))]
                if let (lo, hi) = quantiles(model.replicates.map { $0[i].campaignResponse(total: s, periods: periods) }) {
                    p["low"] = r(lo); p["high"] = r(hi)
                }
                return p
            }
            curves.append(["channel": k.name, "points": points, "chosen_spend": CampaignPlanJob.r2(chosen), "history_max": r(histMax)])
        }
        out["curves"] = curves
        // The KPI by period of the window: with a flat spend s per period from zero adstock, period w adds
        // R(s·w, w) − R(s·(w−1), w−1), summed over the channels; its interval from the replicates.
        let start = CampaignBrief.dayNumber(brief.start) ?? 0
        let perPeriod = model.channels.map { (planned[$0.name]?.spend ?? 0) / Double(periods) }
        func upTo(_ w: Int, _ curves: [MarketingMix.Curve]) -> Double {
            w == 0 ? 0 : zip(curves, perPeriod).reduce(0.0) { $0 + $1.0.campaignResponse(total: $1.1 * Double(w), periods: w) }
        }
        out["kpi_by_week"] = (1...periods).map { w -> [String: Any] in
            var o: [String: Any] = ["period_start": CampaignBrief.date(dayNumber: start + (w - 1) * (unit == "week" ? 7 : 1)),
                                    "expected": r(upTo(w, model.channels) - upTo(w - 1, model.channels))]
            if let (lo, hi) = quantiles(model.replicates.map { upTo(w, $0) - upTo(w - 1, $0) }) { o["low"] = r(lo); o["high"] = r(hi) }
            return o
        }
        return out
    }
}
