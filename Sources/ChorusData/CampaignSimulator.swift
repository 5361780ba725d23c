import ChorusModel
import Foundation

/// Simulates what a campaign's delivery would report, with a planted lift per segment and channel, for tests and
/// `chorus local` (docs/campaigns.md "Simulated outcomes"). Deterministic for a seed; no I/O but `write`.
///
/// For every member of the audience (from `campaign-audience`):
/// - a latent propensity m = exp(σ·z − σ²/2) (z standard normal, σ = `propensitySpread`), so E[m] = 1;
/// - the base probability to convert in a period as long as the campaign: p0 = min(0.95, base · m), with `base` the
///   segment's base rate from the plan (`measurement.segments[].base_rate`, else `defaultBaseRate`);
/// - in the pre-period (as long as the campaign, just before it) the user converts with probability p0: a
///   `conversion` interaction with a value (the CUPED covariate, correlated with the outcome through m);
/// - an `assigned` outcome in the first `entryDays` days of the window, for both arms;
/// - in the treatment: impressions on the user's channel every day (Poisson, mean `impressionsPerDay`), clicks among
///   them (probability `clickRate` each), and a conversion with probability p1 = min(0.95, p0 · (1 + lift)), where
///   lift is the planted relative lift of the user's (segment, channel); in the holdout, p0;
/// - conversion values are log-normal with mean `meanValue`, the same in both arms;
/// - return visits after the assignment (`view` interactions, for retention): with probability `returnRate` a user
///   comes back, at a uniform time within `returnDays` days, and again with the same probability after that.
/// The treatment's spend per channel and day is the plan's budget for the channel spread over the window's days, with
/// ±5% noise, as `spend` records of the campaign (arm treatment, its version).
///
/// The truth: per (segment, channel) the planted lift and the expected conversion rates of both arms given the
/// members' propensities (the mean of p0 and of p1 over the cell's users), so a test can compare the estimate with
/// the exact estimand.
public struct CampaignSimulator: Sendable {
    public struct Member: Sendable, Equatable {
        public var user: String
        public var segment: Int
        public var channel: String
        public var holdout: Bool
        public init(user: String, segment: Int, channel: String, holdout: Bool) {
            self.user = user; self.segment = segment; self.channel = channel; self.holdout = holdout
        }
    }

    public var campaign: String
    public var version: UInt32
    /// The window's first and last day (days since 1970-01-01).
    public var firstDay: Int
    public var lastDay: Int
    public var currency = "USD"
    /// Planned spend per channel over the window.
    public var budget: [String: Double] = [:]
    /// Base conversion rate per segment over a window-long period.
    public var baseRates: [Int: Double] = [:]
    public var defaultBaseRate = 0.05
    /// Planted relative lift: `lifts["3:tiktok"]`, else `lifts["3:*"]`, else `lifts["*:tiktok"]`, else `defaultLift`.
    public var lifts: [String: Double] = [:]
    public var defaultLift = 0.3
    /// The share of the holdout's assignments that the delivery "loses" (a planted sample-ratio mismatch); 0: none.
    public var dropHoldoutShare = 0.0
    /// A content id for the simulated interactions (they need one).
    public var contentID = "campaign-content"
    public var propensitySpread = 0.8
    public var impressionsPerDay = 0.8
    public var clickRate = 0.03
    public var meanValue = 40.0
    public var entryDays = 2
    public var returnRate = 0.45
    public var returnDays = 30
    public var seed: UInt64 = 16

    public init(campaign: String, version: UInt32, firstDay: Int, lastDay: Int) {
        self.campaign = campaign; self.version = version; self.firstDay = firstDay; self.lastDay = lastDay
    }

    public func lift(segment: Int, channel: String) -> Double {
        lifts["\(segment):\(channel)"] ?? lifts["\(segment):*"] ?? lifts["*:\(channel)"] ?? defaultLift
    }

    public struct Truth: Sendable, Equatable {
        public var segment: Int
        public var channel: String
        public var lift: Double
        public var treated = 0
        public var holdout = 0
        /// Expected conversion rate over the cell's users without and with the campaign.
        public var expectedBase = 0.0
        public var expectedTreated = 0.0
    }

    public struct Output: Sendable {
        public var outcomes: [String] = []
        public var interactions: [String] = []
        public var spend: [String] = []
        public var truth: [Truth] = []
        public var droppedAssignments = 0
    }

    static func fixed(_ v: Double) -> String { String(format: "%.2f", v) }

    public func simulate(_ members: [Member]) -> Output {
        var rng = SplitMix64(seed: seed ^ 0x5EED_CA4A_16)
        var out = Output()
        let days = max(1, lastDay - firstDay + 1)
        let start = Int64(firstDay) * 86_400, length = Int64(days) * 86_400
        var truth: [String: Truth] = [:]
        var delivery: [String: (impressions: Int, clicks: Int, conversions: Int, revenue: Double)] = [:]
        func poisson(_ mean: Double) -> Int {
            let l = PortableMath.exp(-mean)
            var k = 0, p = 1.0
            repeat { k += 1; p *= rng.unit() } while p > l
            return k - 1
        }
        func value() -> Double {
            let s = 0.6
            return meanValue * PortableMath.exp(s * rng.gaussian() - s * s / 2)
        }
        let sorted = members.sorted { $0.user < $1.user }
        for m in sorted {
            let u = JSONText.quote(m.user), ch = JSONText.quote(m.channel)
            let key = "\(m.segment)\u{0}\(m.channel)"
            let lift = self.lift(segment: m.segment, channel: m.channel)
            var t = truth[key] ?? Truth(segment: m.segment, channel: m.channel, lift: lift)
            let propensity = PortableMath.exp(propensitySpread * rng.gaussian() - propensitySpread * propensitySpread / 2)
            let p0 = min(0.95, (baseRates[m.segment] ?? defaultBaseRate) * propensity)
            let p1 = min(0.95, p0 * (1 + lift))
            t.expectedBase += p0
            t.expectedTreated += p1
            if m.holdout { t.holdout += 1 } else { t.treated += 1 }
            truth[key] = t
            // Pre-period conversion (the covariate).
            let preDraw = rng.unit(), preAt = start - length + Int64(rng.unit() * Double(length - 1)), preValue = value()
            if preDraw < p0 {
                out.interactions.append("{\"interaction_id\":\(JSONText.quote("sim-pre-\(campaign)-\(m.user)")),\"user_id\":\(u),"
                    + "\"content_id\":\(JSONText.quote(contentID)),\"type\":\"conversion\",\"channel\":\(ch),\"ts\":\(preAt),"
                    + "\"value\":\(Self.fixed(preValue))}")
            }
            let assignedAt = start + Int64(rng.unit() * Double(min(length, Int64(entryDays) * 86_400) - 1))
            let drop = m.holdout && rng.unit() < dropHoldoutShare
            if drop { out.droppedAssignments += 1 } else {
                out.outcomes.append("{\"campaign\":\(JSONText.quote(campaign)),\"version\":\(version),"
                    + "\"arm\":\"\(m.holdout ? "holdout" : "treatment")\",\"segment\":\(m.segment),\"user_id\":\(u),"
                    + "\"event\":\"assigned\",\"channel\":\(ch),\"ts\":\(assignedAt)}")
            }
            // Delivery, treatment only: impressions per day from the assignment's day on, clicks among them.
            if !m.holdout && !drop {
                let firstOwnDay = Int(assignedAt / 86_400)
                for d in firstOwnDay...(firstDay + days - 1) {
                    let n = poisson(impressionsPerDay)
                    guard n > 0 else { continue }
                    let at = max(assignedAt, Int64(d) * 86_400 + Int64(rng.unit() * 86_399))
                    out.outcomes.append("{\"campaign\":\(JSONText.quote(campaign)),\"version\":\(version),\"arm\":\"treatment\","
                        + "\"user_id\":\(u),\"event\":\"impression\",\"channel\":\(ch),\"ts\":\(at),\"count\":\(n)}")
                    var clicks = 0
                    for _ in 0..<n where rng.unit() < clickRate { clicks += 1 }
                    if clicks > 0 {
                        out.outcomes.append("{\"campaign\":\(JSONText.quote(campaign)),\"version\":\(version),\"arm\":\"treatment\","
                            + "\"user_id\":\(u),\"event\":\"click\",\"channel\":\(ch),\"ts\":\(at + 1),\"count\":\(clicks)}")
                    }
                    let dk = m.channel + "\u{0}" + CivilDate.iso(days: d)
                    delivery[dk, default: (0, 0, 0, 0)].impressions += n
                    delivery[dk, default: (0, 0, 0, 0)].clicks += clicks
                }
            }
            // The outcome: a conversion within the window, after the assignment.
            let convDraw = rng.unit(), convValue = value()
            let convAt = assignedAt + Int64(rng.unit() * Double(max(1, start + length - assignedAt - 1)))
            if !drop && convDraw < (m.holdout ? p0 : p1) {
                out.outcomes.append("{\"campaign\":\(JSONText.quote(campaign)),\"version\":\(version),"
                    + "\"arm\":\"\(m.holdout ? "holdout" : "treatment")\",\"user_id\":\(u),\"event\":\"conversion\","
                    + "\"channel\":\(ch),\"ts\":\(convAt),\"value\":\(Self.fixed(convValue))}")
                if !m.holdout {
                    let dk = m.channel + "\u{0}" + CivilDate.iso(days: Int(convAt / 86_400))
                    delivery[dk, default: (0, 0, 0, 0)].conversions += 1
                    delivery[dk, default: (0, 0, 0, 0)].revenue += (convValue * 100).rounded() / 100
                }
            }
            // Return visits (retention).
            var at = assignedAt, visit = 0
            while rng.unit() < returnRate && visit < 6 {
                at += 3_600 + Int64(rng.unit() * Double(returnDays * 86_400))
                out.interactions.append("{\"interaction_id\":\(JSONText.quote("sim-visit-\(campaign)-\(m.user)-\(visit)")),"
                    + "\"user_id\":\(u),\"content_id\":\(JSONText.quote(contentID)),\"type\":\"view\",\"channel\":\(ch),\"ts\":\(at)}")
                visit += 1
            }
        }
        // The treatment's spend per channel and day.
        for (channel, total) in budget.sorted(by: { $0.key < $1.key }) where total > 0 {
            for d in firstDay...(firstDay + days - 1) {
                let date = CivilDate.iso(days: d)
                let spend = total / Double(days) * (0.95 + 0.1 * rng.unit())
                let del = delivery[channel + "\u{0}" + date] ?? (0, 0, 0, 0)
                out.spend.append("{\"channel\":\(JSONText.quote(channel)),\"date\":\"\(date)\",\"period\":\"day\","
                    + "\"spend\":\(Self.fixed(spend)),\"currency\":\"\(currency)\",\"impressions\":\(del.impressions),"
                    + "\"clicks\":\(del.clicks),\"conversions\":\(del.conversions),\"revenue\":\(Self.fixed(del.revenue)),"
                    + "\"campaign\":\(JSONText.quote(campaign)),\"version\":\(version),\"arm\":\"treatment\"}")
            }
        }
        out.truth = truth.keys.sorted().map { k in
            var t = truth[k]!
            let n = Double(t.treated + t.holdout)
            if n > 0 { t.expectedBase /= n; t.expectedTreated /= n }
            return t
        }
        return out
    }

    /// The header of `truth/campaign_outcomes.csv`.
    public static let truthHeader = "campaign,version,segment,channel,planted_lift,treated,holdout,expected_base_rate,"
        + "expected_treated_rate,expected_absolute_lift"

    /// Writes outcomes.jsonl, interactions-campaign.jsonl, spend-campaign.jsonl and truth/campaign_outcomes.csv into
    /// `dir`; returns the paths written (the three to ingest first, in that order: interactions, outcomes, spend).
    public func write(_ out: Output, to dir: String) throws -> [String] {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/truth", withIntermediateDirectories: true)
        func put(_ name: String, _ lines: [String]) throws -> String {
            let path = dir + "/" + name
            try Data((lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")).utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        let paths = [try put("interactions-campaign.jsonl", out.interactions), try put("outcomes.jsonl", out.outcomes),
                     try put("spend-campaign.jsonl", out.spend)]
        let truth = out.truth.map { t in
            [campaign, String(version), String(t.segment), t.channel, String(t.lift), String(t.treated), String(t.holdout),
             String(format: "%.6f", t.expectedBase), String(format: "%.6f", t.expectedTreated),
             String(format: "%.6f", t.expectedTreated - t.expectedBase)].joined(separator: ",")
        }
        _ = try put("truth/campaign_outcomes.csv", [Self.truthHeader] + truth)
        return paths
    }
}
