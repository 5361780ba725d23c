import ChorusAnalytics
import ChorusData
import ChorusJobs
import ChorusModel
import ChorusWire
import Foundation
import Testing

/// The plan's budget on the generator's spend history (planted adstock + Hill curves per channel, truth known):
/// the split fitted from the records, judged under the true curves, against the optimum of the true curves with the
/// same limits (issue 15's goal: within 2%).
@Suite struct CampaignBudgetTests {
    static func rows(seed: UInt64) -> [Chorus_V1_Jobs_CampaignSpendRow] {
        let day = try! #require(CampaignBrief.dayNumber("2025-09-29"))
        return SpendHistory(seed: seed, weeks: 104, endDay: Int64(day)).series().flatMap(\.records).map { r in
            var row = Chorus_V1_Jobs_CampaignSpendRow()
            row.channel = r.channel; row.date = r.date; row.periodDays = UInt32(r.period.days); row.spend = r.spend
            row.impressions = r.impressions; row.clicks = r.clicks; row.conversions = r.conversions; row.revenue = r.revenue
            return row
        }
    }

    static func brief(budget: Double) -> CampaignBrief {
        var b = CampaignBrief(name: "budget test", objective: .conversions, budget: budget, currency: "USD",
                              start: "2026-01-05", end: "2026-01-25", channels: ["weibo", "wechat", "x", "instagram", "tiktok"])
        b.constraints.spend = ["tiktok": .init(min: 15_000, max: 45_000), "wechat": .init(max: 12_000)]
        return b
    }

    static let truth = MarketingMix.Model(channels: SpendHistory.curves.map {
        MarketingMix.Curve(name: $0.channel, decay: $0.alpha, halfSaturation: $0.k, shape: $0.n, coefficient: $0.betaConversions)
    })

    @Test(arguments: [(UInt64(7), 90_000.0), (UInt64(11), 60_000.0), (UInt64(23), 140_000.0)])
    func theFittedSplitIsWithinTwoPercentOfThePlantedOptimum(seed: UInt64, budget: Double) throws {
        let b = Self.brief(budget: budget)
        let (json, gaps, evidence) = CampaignBudget.plan(brief: b, history: Self.rows(seed: seed))
        #expect(json["method"] as? String == "response curves", "\(gaps)")
        #expect(evidence?.contains("520 spend records of 5 channel(s)") == true, "\(evidence ?? "")")
        let periods = try #require(json["periods"] as? Int)
        #expect(periods == 3)
        let channels = try #require(json["channels"] as? [[String: Any]])
        let spend = Dictionary(uniqueKeysWithValues: channels.map { ($0["channel"] as! String, ($0["spend"] as! NSNumber).doubleValue) })
        #expect(spend["tiktok"]! >= 15_000 - 0.01 && spend["tiktok"]! <= 45_000 + 0.01 && spend["wechat"]! <= 12_000 + 0.01)
        #expect(spend.values.reduce(0, +) + ((json["unspent"] as? NSNumber)?.doubleValue ?? 0) <= budget + 0.05)
        // Under the planted curves: the plan's KPI against the optimum of those curves with the same limits.
        let planned = Self.truth.channels.reduce(0.0) { $0 + $1.campaignResponse(total: spend[$1.name] ?? 0, periods: periods) }
        let limits: [String: MarketingMix.SpendLimit] = ["tiktok": .init(minimum: 15_000, maximum: 45_000), "wechat": .init(maximum: 12_000)]
        let oracle = try MarketingMix.allocate(model: Self.truth, budget: budget, periods: periods, limits: limits, steps: 2000)
        let best = try #require(oracle.expectedKPI)
        print("budget seed \(seed), \(budget): planned \(planned) under the true curves, optimum \(best), ratio \(planned / best)")
        #expect(planned >= 0.98 * best, "planned \(planned) vs optimum \(best): \(spend) vs \(oracle.channels.map { ($0.name, $0.spend) }); fits \(channels.map { "\($0["channel"]!): \($0["fit"] ?? "")" })")
        // Everything the reader needs is there.
        let kpi = try #require(json["expected_kpi"] as? [String: Any])
        let low = (kpi["low"] as? NSNumber)?.doubleValue ?? .nan, high = (kpi["high"] as? NSNumber)?.doubleValue ?? .nan
        let value = (kpi["value"] as? NSNumber)?.doubleValue ?? .nan
        #expect(low <= value && value <= high)
        #expect((json["curves"] as? [[String: Any]])?.count == 5)
        #expect((json["kpi_by_week"] as? [[String: Any]])?.count == 3)
        #expect(channels.allSatisfy { $0["marginal_return"] is NSNumber && $0["fit"] is [String: Any] })
    }

    @Test func withoutAHistoryTheSplitIsEvenAndSaysWhy() throws {
        let (json, gaps, evidence) = CampaignBudget.plan(brief: Self.brief(budget: 50_000), history: [])
        #expect(json["method"] as? String == "even split" && evidence == nil)
        #expect(gaps.contains { $0.contains("no spend history") })
        let spend = (json["channels"] as? [[String: Any]] ?? []).map { ($0["spend"] as? NSNumber)?.doubleValue ?? 0 }
        #expect(abs(spend.reduce(0, +) - 50_000) < 0.05)
        // A channel without history gets its minimum only; the others are still fitted.
        let partial = Self.rows(seed: 3).filter { $0.channel != "instagram" }
        let (p2, g2, _) = CampaignBudget.plan(brief: Self.brief(budget: 50_000), history: partial)
        #expect(p2["method"] as? String == "response curves")
        #expect(g2.contains { $0.contains("channel instagram: no spend history") }, "\(g2)")
        let insta = (p2["channels"] as? [[String: Any]] ?? []).first { $0["channel"] as? String == "instagram" }
        #expect((insta?["spend"] as? NSNumber)?.doubleValue == 0 && insta?["not_modelled"] != nil)
    }
}
