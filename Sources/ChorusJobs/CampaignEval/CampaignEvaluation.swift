import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import Foundation

extension CampaignEvalJob {
    /// The evaluation document from the merged sums (docs/campaigns.md "The evaluation document"). No I/O: the
    /// driver gathers, this estimates.
    enum Evaluation {
        struct Input: Sendable {
            var doc: CampaignPlanDocument
            var cells: [Chorus_V1_Jobs_CampaignEvalCell]
            var delivery: [Chorus_V1_Jobs_CampaignDeliveryDay]
            var spend: [Chorus_V1_Jobs_CampaignSpendDay]
            var totals: Chorus_V1_Jobs_CampaignEvalPartial
            var versions: [UInt32: UInt64]
            var alpha: Double
            var correction: CampaignMeasurement.Correction
            var asOf: Int64
            var dataEnd: Int64
            var look: Int
            var jobID: String
            var evaluatedAt: Int64
        }

        /// Finite numbers only (JSON has no NaN or infinity): null for the others. Seven significant digits, so a
        /// p-value of 1e-9 stays 1e-9.
        static func num(_ v: Double?) -> Any {
            guard let v, v.isFinite else { return NSNull() }
            return Double(String(format: "%.7g", v)) ?? v
        }

        static func ratio(_ a: Double, _ b: Double) -> Double? { b > 0 ? a / b : nil }

        /// One arm's figures over a set of cells (one segment, one channel, or both).
        static func arm(_ cells: [Chorus_V1_Jobs_CampaignEvalCell], spend: Double?) -> [String: Any] {
            var t = Chorus_V1_Jobs_CampaignEvalCell()
            for c in cells { t.merge(c) }
            var o: [String: Any] = [
                "users": Int(t.users), "exposed": Int(t.exposed), "impressions": num(t.impressions), "clicks": num(t.clicks),
                "conversions": num(t.conversions), "converters": num(t.converted.sumY), "revenue": num(t.revenue),
                "ctr": num(ratio(t.clicks, t.impressions)), "conversion_rate": num(ratio(t.converted.sumY, t.converted.n)),
                "revenue_per_user": num(ratio(t.value.sumY, t.value.n)),
                "retention_7": num(ratio(t.retained7.sumY, t.retained7.n)), "retention_7_eligible": Int(t.retained7.n),
                "retention_28": num(ratio(t.retained28.sumY, t.retained28.n)), "retention_28_eligible": Int(t.retained28.n),
                "arm_mismatch": Int(t.armMismatch),
            ]
            if let spend {
                o["spend"] = num(spend)
                o["cpa"] = num(ratio(spend, t.conversions))
                o["roas"] = num(ratio(t.revenue, spend))
                o["roi"] = num(spend > 0 ? (t.revenue - spend) / spend : nil)
            }
            return o
        }

        struct Test {
            var segment: Int
            var channel: String
            var metric: Metric
            var primary: Bool
            var welch: CampaignMeasurement.Estimate
            var cuped: CampaignMeasurement.CUPED?
            var treated: Double
            var planned: Double
            var treatment: CampaignMeasurement.Moments
            var control: CampaignMeasurement.Moments
            /// The estimate the verdict reads: CUPED when the pre-period varies, else Welch.
            var estimate: CampaignMeasurement.Estimate { cuped?.estimate ?? welch }
        }

        /// The fewest users an arm needs for a lift to be tested.
        static let minArmUsers = 10

        static func build(_ input: Input) -> [String: Any] {
            let doc = input.doc, alpha = input.alpha
            // Over when the look is at or after the window's end: the data then is all the delivery reported.
            let finished = input.asOf >= doc.end
            let seen = min(input.dataEnd, doc.end)
            let days = Double(doc.end - doc.start) / 86_400
            let elapsed = max(0, min(days, Double(seen - doc.start) / 86_400))
            var problems: [String] = []
            let primary = Metric.primary(kpi: doc.kpi)

            // Spend of the campaign: per channel and arm; per (segment, channel) when the records name segments.
            var channelSpend: [String: Double] = [:], holdoutSpend: [String: Double] = [:]
            var segmentSpend: [String: Double] = [:]
            var spendByDay: [String: Double] = [:]
            for s in input.spend {
                if s.arm == "holdout" { holdoutSpend[s.channel, default: 0] += s.spend; continue }
                channelSpend[s.channel, default: 0] += s.spend
                if !s.segment.isEmpty { segmentSpend[s.segment + "\u{0}" + s.channel, default: 0] += s.spend }
                if s.periodDays == 1 { spendByDay[s.channel + "\u{0}" + s.date, default: 0] += s.spend }
            }
            if holdoutSpend.values.contains(where: { $0 > 0 }) {
                problems.append("spend was recorded on the holdout arm (\(holdoutSpend.keys.sorted().joined(separator: ", "))): a holdout should get none")
            }
            let treatedCells = input.cells.filter { $0.arm == "treatment" }
            var treatedByChannel: [String: Double] = [:]
            for c in treatedCells { treatedByChannel[c.channel, default: 0] += Double(c.users) }
            /// A (segment, channel)'s spend: recorded, else the channel's spend shared by its treated users.
            func spendOf(segment: Int, channel: String) -> Double? {
                if let s = segmentSpend["\(segment)\u{0}\(channel)"] { return s }
                guard let total = channelSpend[channel], let all = treatedByChannel[channel], all > 0 else { return nil }
                let mine = treatedCells.filter { Int($0.segment) == segment && $0.channel == channel }.reduce(0.0) { $0 + Double($1.users) }
                return total * mine / all
            }
            let channels = Set(input.cells.map(\.channel)).sorted()

            // Sample-ratio check per segment against the plan's holdout share.
            var srm: [[String: Any]] = []
            var mismatch = Set<Int>()
            for s in doc.segments {
                let t = input.cells.filter { Int($0.segment) == s.segment && $0.arm == "treatment" }.reduce(0.0) { $0 + Double($1.users) }
                let h = input.cells.filter { Int($0.segment) == s.segment && $0.arm == "holdout" }.reduce(0.0) { $0 + Double($1.users) }
                guard t + h > 0 else { continue }
                let r = CampaignMeasurement.sampleRatio(observed: [t, h], expectedShares: [1 - s.holdoutShare, s.holdoutShare])
                if r.mismatch { mismatch.insert(s.segment) }
                srm.append(["segment": s.segment, "expected_holdout_share": num(s.holdoutShare), "treatment": Int(t),
                            "holdout": Int(h), "observed_holdout_share": num(h / (t + h)), "chi_square": num(r.chiSquare),
                            "p_value": num(r.pValue), "mismatch": r.mismatch])
            }

            // The tests: every metric per segment and per segment × channel.
            var tests: [Test] = []
            var tooSmall: [String] = [], noVariance: [String] = []
            for s in doc.segments {
                for channel in [""] + channels {
                    let mine = input.cells.filter { Int($0.segment) == s.segment && (channel.isEmpty || $0.channel == channel) }
                    for metric in Metric.allCases {
                        var tm = CampaignMeasurement.Moments(), cm = CampaignMeasurement.Moments()
                        for c in mine {
                            if c.arm == "treatment" { tm = tm + metric.moments(c).moments } else { cm = cm + metric.moments(c).moments }
                        }
                        // A test needs `minArmUsers` users in each arm and some variance: a tiny cell where every
                        // user is alike (3 of 3 converted, 0 of 4) has no standard error, and would read as certain.
                        guard tm.n >= Double(minArmUsers), cm.n >= Double(minArmUsers) else {
                            if metric == .conversionRate { tooSmall.append("segment \(s.segment)" + (channel.isEmpty ? "" : " · \(channel)")) }
                            continue
                        }
                        let welch = CampaignMeasurement.welch(treatment: tm, control: cm, alpha: alpha)
                        guard welch.standardError > 0 else {
                            if metric == .conversionRate { noVariance.append("segment \(s.segment)" + (channel.isEmpty ? "" : " · \(channel)")) }
                            continue
                        }
                        var cuped: CampaignMeasurement.CUPED?
                        if metric.hasCovariate {
                            let all = tm + cm
                            let varX = all.n > 1 ? (all.sumX2 - all.sumX * all.sumX / all.n) / (all.n - 1) : 0
                            if varX > 1e-12 { cuped = CampaignMeasurement.cuped(treatment: tm, control: cm, alpha: alpha) }
                        }
                        tests.append(Test(segment: s.segment, channel: channel, metric: metric, primary: metric == primary && channel.isEmpty,
                                          welch: welch, cuped: cuped, treated: tm.n, planned: tm.n + cm.n,
                                          treatment: tm, control: cm))
                    }
                }
            }
            // Two families, each corrected on its own: the decision tests (the KPI's metric per segment, which give
            // the verdicts) and the secondary ones (the other metrics, and every metric per channel), reported.
            var adjusted = [Double](repeating: 1, count: tests.count)
            for primaryFamily in [true, false] {
                let idx = tests.indices.filter { tests[$0].primary == primaryFamily }
                let adj = CampaignMeasurement.adjust(idx.map { tests[$0].estimate.pValue }, method: input.correction)
                for (k, i) in idx.enumerated() { adjusted[i] = adj[k] }
            }
            let decisionTests = max(1, tests.filter(\.primary).count)
            let secondaryTests = max(1, tests.count - tests.filter(\.primary).count)
            var lifts: [[String: Any]] = []
            var verdictOf: [Int: (String, String)] = [:]
            var calibration: [String: (lift: Double, variance: Double)] = [:]
            for (i, t) in tests.enumerated() {
                let e = t.estimate
                let plannedUsers = Double(doc.segmentUsers[t.segment] ?? 0)
                // The sequence holds over every look at the family's level (Bonferroni over the family's tests).
                let family = t.primary ? decisionTests : secondaryTests
                let seq = CampaignMeasurement.confidenceSequence(treatment: t.treatment, control: t.control,
                                                                 alpha: alpha / Double(family),
                                                                 plannedUsers: max(plannedUsers, t.planned))
                let significant: Bool
                let direction: Double
                if finished {
                    significant = adjusted[i] < alpha
                    direction = e.absolute
                } else {
                    significant = seq.low > 0 || seq.high < 0
                    direction = seq.low > 0 ? 1 : -1
                }
                let valid = !mismatch.contains(t.segment)
                let verdict = !valid ? "invalid (sample ratio mismatch)"
                    : significant ? (direction > 0 ? "win" : "loss")
                    : (finished ? "no detectable effect" : "no detectable effect yet")
                var o: [String: Any] = [
                    "segment": t.segment, "channel": t.channel, "metric": t.metric.rawValue, "primary": t.primary,
                    "estimator": t.cuped != nil ? "cuped" : "welch",
                    "treatment_users": Int(t.treatment.n), "holdout_users": Int(t.control.n),
                    "treatment_mean": num(e.treatmentMean), "holdout_mean": num(e.controlMean),
                    "absolute": num(e.absolute), "absolute_low": num(e.absoluteLow), "absolute_high": num(e.absoluteHigh),
                    "relative": num(e.relative), "relative_low": num(e.relativeLow), "relative_high": num(e.relativeHigh),
                    "p_value": num(e.pValue), "p_adjusted": num(adjusted[i]), "family": t.primary ? "decision" : "secondary",
                    "sequential": ["low": num(seq.low), "high": num(seq.high), "p_value": num(seq.pValue)],
                    "welch": estimateJSON(t.welch), "significant": significant, "valid": valid, "verdict": verdict,
                ]
                if let c = t.cuped {
                    o["cuped"] = ["theta": num(c.theta), "variance_reduction": num(c.varianceReduction)]
                }
                lifts.append(o)
                if t.primary {
                    let why: String
                    if !valid {
                        why = "the arms' sizes do not match the design (SRM p < 0.001): the results are not presented as valid"
                    } else if finished {
                        let interval = e.relative != nil
                            ? String(format: "relative lift %+.1f%% (%.0f%% CI %+.1f%% to %+.1f%%)", (e.relative ?? 0) * 100, (1 - alpha) * 100,
                                     (e.relativeLow ?? 0) * 100, (e.relativeHigh ?? 0) * 100)
                            : String(format: "difference %+.4g (%.0f%% CI %.4g to %.4g)", e.absolute, (1 - alpha) * 100, e.absoluteLow, e.absoluteHigh)
                        why = "\(t.metric.rawValue) " + interval + String(format: ", p = %.3g, ", e.pValue)
                            + "\(input.correction.rawValue)-adjusted p = " + String(format: "%.3g", adjusted[i])
                            + " over the \(family) segment verdicts"
                    } else {
                        why = "running: the always-valid interval for \(t.metric.rawValue) is "
                            + String(format: "%.4g to %.4g (α %.3g for each of the %d segment verdicts)", seq.low, seq.high, alpha / Double(family), family)
                    }
                    verdictOf[t.segment] = (verdict, why)
                }
                // Calibration: the channel's incremental KPI summed over its segment cells.
                // A cell without variance (every user alike in an arm) has no standard error to weigh it by: left out.
                if !t.channel.isEmpty, t.metric == primary, e.standardError > 0 {
                    var c = calibration[t.channel] ?? (0, 0)
                    c.lift += e.absolute * t.treated
                    c.variance += pow(e.standardError * t.treated, 2)
                    calibration[t.channel] = c
                }
            }

            // Per segment: the arms, per channel, and the verdict.
            var segments: [[String: Any]] = []
            for s in doc.segments {
                let mine = input.cells.filter { Int($0.segment) == s.segment }
                let segSpend = channels.compactMap { spendOf(segment: s.segment, channel: $0) }.reduce(0, +)
                let (verdict, why) = verdictOf[s.segment]
                    ?? ("not measured", mine.isEmpty ? "no user of this segment was assigned" : "an arm has fewer than 2 users")
                segments.append([
                    "segment": s.segment, "holdout_share": num(s.holdoutShare), "verdict": verdict, "why": why,
                    "valid": !mismatch.contains(s.segment),
                    "arms": ["treatment": arm(mine.filter { $0.arm == "treatment" }, spend: segSpend),
                             "holdout": arm(mine.filter { $0.arm == "holdout" }, spend: nil)],
                    "channels": channels.compactMap { ch -> [String: Any]? in
                        let c = mine.filter { $0.channel == ch }
                        guard !c.isEmpty else { return nil }
                        return ["channel": ch,
                                "arms": ["treatment": arm(c.filter { $0.arm == "treatment" }, spend: spendOf(segment: s.segment, channel: ch)),
                                         "holdout": arm(c.filter { $0.arm == "holdout" }, spend: nil)]]
                    },
                ])
            }

            // Per channel: efficiency and incrementality.
            var channelRows: [[String: Any]] = []
            var calibrationRows: [[String: Any]] = []
            let z = Experiment.normalQuantile(1 - alpha / 2)
            for ch in channels {
                let c = input.cells.filter { $0.channel == ch }
                let spend = channelSpend[ch] ?? 0
                var row: [String: Any] = [
                    "channel": ch,
                    "treatment": arm(c.filter { $0.arm == "treatment" }, spend: spend),
                    "holdout": arm(c.filter { $0.arm == "holdout" }, spend: nil),
                ]
                if let cal = calibration[ch] {
                    let se = cal.variance.squareRoot()
                    let name = primary == .conversionRate ? "conversions" : "revenue"
                    row["incremental_" + name] = ["value": num(cal.lift), "low": num(cal.lift - z * se), "high": num(cal.lift + z * se),
                                                  "standard_error": num(se)]
                    if primary == .conversionRate {
                        row["cost_per_incremental_conversion"] = num(cal.lift > 0 ? spend / cal.lift : nil)
                    } else {
                        row["incremental_roas"] = num(ratio(cal.lift, spend))
                        row["incremental_roi"] = num(spend > 0 ? (cal.lift - spend) / spend : nil)
                    }
                    if spend > 0 {
                        calibrationRows.append([
                            "id": "\(doc.campaignID) v\(doc.version)", "campaign_id": doc.campaignID, "channel": ch,
                            "kpi": doc.kpi, "spend": num(spend), "days": num(elapsed), "lift": num(cal.lift),
                            "standard_error": num(se), "finished": finished,
                            "valid": !doc.segments.contains { mismatch.contains($0.segment) },
                        ])
                    }
                }
                channelRows.append(row)
            }

            // Pacing against the plan: spend and delivery to date.
            var pacing: [[String: Any]] = []
            let planned = Dictionary(doc.budget.map { ($0.channel, $0.spend) }, uniquingKeysWith: +)
            let today = CivilDate.iso(days: Int((seen - 1).floorDiv(86_400)))
            for ch in Set(planned.keys).union(channels).sorted() where !ch.isEmpty {
                let plan = planned[ch] ?? 0
                let toDate = days > 0 ? plan * elapsed / days : 0
                let actual = channelSpend[ch] ?? 0
                let posts = doc.posts.filter { $0.channel == ch }
                let postsToDate = posts.filter { $0.date <= today }.count
                let deliveredDays = input.delivery.filter { $0.channel == ch }.sorted { $0.date < $1.date }
                var byDay: [[String: Any]] = []
                let startDay = Int(doc.start / 86_400), endDay = Int((doc.end - 1) / 86_400)
                for d in startDay...max(startDay, endDay) {
                    let date = CivilDate.iso(days: d)
                    let imp = deliveredDays.first { $0.date == date }
                    byDay.append(["date": date, "planned_spend": num(days > 0 ? plan / days : 0),
                                  "spend": num(spendByDay[ch + "\u{0}" + date]), "impressions": num(imp?.impressions ?? 0),
                                  "planned_posts": posts.filter { $0.date == date }.count])
                }
                let pace = ratio(actual, toDate)
                pacing.append([
                    "channel": ch, "planned_spend": num(plan), "planned_to_date": num(toDate), "spend": num(actual),
                    "pace": num(pace),
                    "status": pace.map { $0 < 0.9 ? "under" : $0 > 1.1 ? "over" : "on plan" } ?? (actual > 0 ? "unplanned" : "no spend"),
                    "planned_posts": posts.count, "planned_posts_to_date": postsToDate,
                    "impressions": num(deliveredDays.reduce(0) { $0 + $1.impressions }),
                    "clicks": num(deliveredDays.reduce(0) { $0 + $1.clicks }),
                    "by_day": byDay,
                ])
            }

            let t = input.totals
            let users = input.cells.reduce(0) { $0 + Int($1.users) }
            let holdout = input.cells.filter { $0.arm == "holdout" }.reduce(0) { $0 + Int($1.users) }
            if t.unassignedUsers > 0 {
                problems.append("\(t.unassignedUsers) users have outcomes but no assignment: they are left out (log an `assigned` event for every user of both arms)")
            }
            if t.reassignedUsers > 0 { problems.append("\(t.reassignedUsers) users were assigned twice to different arms or segments: the first assignment is kept") }
            if t.unknownSegmentUsers > 0 { problems.append("\(t.unknownSegmentUsers) users were assigned to a segment plan v\(doc.version) does not have: left out") }
            let armMismatch = input.cells.reduce(0) { $0 + Int($1.armMismatch) }
            if armMismatch > 0 {
                problems.append("\(armMismatch) users' recorded arm differs from the plan's keyed-hash assignment: the delivery does not follow the design")
            }
            if !tooSmall.isEmpty {
                problems.append("not tested, fewer than \(minArmUsers) users in an arm: " + tooSmall.joined(separator: ", "))
            }
            if !noVariance.isEmpty {
                problems.append("not tested, no variance in either arm (every user alike): " + noVariance.joined(separator: ", "))
            }
            if !mismatch.isEmpty {
                problems.append("sample ratio mismatch in segment(s) \(mismatch.sorted().map(String.init).joined(separator: ", ")): their results are not valid")
            }
            return [
                "format": 1, "campaign_id": doc.campaignID, "plan_version": Int(doc.version), "look": input.look,
                "job_id": input.jobID, "evaluated_at": ForecastJob.iso(input.evaluatedAt),
                "as_of": ForecastJob.iso(input.asOf), "data_end": ForecastJob.iso(input.dataEnd),
                "window": ["start": doc.brief.start, "end": doc.brief.end, "days": num(days), "elapsed_days": num(elapsed),
                           "finished": finished],
                "kpi": doc.kpi, "primary_metric": primary.rawValue, "alpha": num(alpha),
                "correction": input.correction.rawValue, "tests": tests.count, "min_arm_users": minArmUsers, "decision_tests": tests.filter(\.primary).count,
                "sequential": ["method": "asymptotic confidence sequence (normal mixture), Bonferroni within each family",
                               "alpha_per_decision_test": num(alpha / Double(decisionTests)),
                               "alpha_per_secondary_test": num(alpha / Double(secondaryTests))],
                "totals": ["outcome_records": Int(t.outcomeRecords), "users": users, "treatment": users - holdout, "holdout": holdout,
                           "unassigned_users": Int(t.unassignedUsers), "reassigned_users": Int(t.reassignedUsers),
                           "unknown_segment_users": Int(t.unknownSegmentUsers), "late_events": Int(t.lateEvents),
                           "outside_window": Int(t.outsideWindow), "arm_mismatch": armMismatch,
                           "versions": input.versions.keys.sorted().map { ["version": Int($0), "users": Int(input.versions[$0]!)] }],
                "srm": srm, "segments": segments, "lifts": lifts, "channels": channelRows, "pacing": pacing,
                "calibration": calibrationRows, "problems": problems,
            ]
        }

        static func estimateJSON(_ e: CampaignMeasurement.Estimate) -> [String: Any] {
            ["absolute": num(e.absolute), "absolute_low": num(e.absoluteLow), "absolute_high": num(e.absoluteHigh),
             "relative": num(e.relative), "relative_low": num(e.relativeLow), "relative_high": num(e.relativeHigh),
             "p_value": num(e.pValue), "standard_error": num(e.standardError), "df": num(e.degreesOfFreedom)]
        }
    }
}
