import ChorusAnalytics
import ChorusModel
import Foundation
import Testing

/// Response curves and the budget split (docs/campaigns.md "Response curves and the budget split"): planted curves
/// are recovered, the allocation fitted on them is within 2% of the oracle computed from the true curves (free and
/// with binding limits), S-shaped curves are crossed, and the limits, errors, extrapolation flags and the even split
/// behave.
@Suite struct MarketingMixTests {
    typealias MM = MarketingMix

    /// Weekly history with planted curves: a concave search channel, an S-shaped TV channel (n = 2.5) with long
    /// carry-over, a concave social channel and a mildly S-shaped display channel; each spends in 75% of the weeks;
    /// base 1000 + 2·t, Gaussian noise (sd 60), all seeded.
    struct Planted {
        static let truth = [
            MM.Curve(name: "search", decay: 0.3, halfSaturation: 80, shape: 1.0, coefficient: 400),
            MM.Curve(name: "tv", decay: 0.6, halfSaturation: 250, shape: 2.5, coefficient: 900),
            MM.Curve(name: "social", decay: 0.1, halfSaturation: 40, shape: 0.8, coefficient: 200),
            MM.Curve(name: "display", decay: 0.2, halfSaturation: 60, shape: 1.3, coefficient: 300),
        ]
        static let scales = [100.0, 150.0, 50.0, 80.0]
        let spend: [[Double]]
        let kpi: [Double]

        init(periods n: Int = 130, seed: UInt64 = 7, noise: Double = 60) {
            var rng = SplitMix64(seed: seed)
            func normal() -> Double {
                let u = max(rng.unit(), 1e-12), v = rng.unit()
                return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
            }
            let k = Self.truth.count
            var spend = [[Double]](repeating: [], count: k)
            for _ in 0..<n {
                for c in 0..<k {
                    let on = rng.unit() < 0.75
                    spend[c].append(on ? Self.scales[c] * (0.2 + 1.6 * rng.unit()) : 0)
                }
            }
            var y = (0..<n).map { 1000 + 2 * Double($0) + noise * normal() }
            for c in 0..<k {
                let contribution = Self.truth[c].contribution(spend[c])
                for t in 0..<n { y[t] += contribution[t] }
            }
            self.spend = spend
            kpi = y
        }

        var series: [MM.Series] { spend.indices.map { MM.Series(Self.truth[$0].name, spend[$0]) } }
    }

    static func trueResponse(_ spend: [Double], periods: Int) -> Double {
        spend.indices.reduce(0) { $0 + Planted.truth[$1].campaignResponse(total: spend[$1], periods: periods) }
    }

    /// The best split of the whole budget under the true curves, by brute force over a grid of budget/150 on the
    /// first three channels (the fourth takes the rest). Every true curve increases, so all of it is spent.
    static func oracle(budget: Double, periods: Int, lo: [Double], hi: [Double]) -> (Double, [Double]) {
        let step = budget / 150
        var best = -Double.infinity, at: [Double] = []
        var i = lo[0]
        while i <= hi[0] + 1e-9 {
            var j = lo[1]
            while j <= hi[1] + 1e-9 && i + j <= budget + 1e-9 {
                var k = lo[2]
                while k <= hi[2] + 1e-9 && i + j + k <= budget + 1e-9 {
                    let l = budget - i - j - k
                    if l >= lo[3] - 1e-9 && l <= hi[3] + 1e-9 {
                        let v = trueResponse([i, j, k, l], periods: periods)
                        if v > best { best = v; at = [i, j, k, l] }
                    }
                    k += step
                }
                j += step
            }
            i += step
        }
        return (best, at)
    }

    @Test func plantedCurvesAreRecovered() throws {
        // Noise sd 30 here (60 in the allocation test, where the curves' low ends are off by up to 50%: the data
        // cannot tell them apart, the fitted SSE being below the true curves'; docs/campaigns.md).
        let data = Planted(noise: 30)
        var options = MM.FitOptions()
        options.bootstrapReplicates = 12
        let model = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
        #expect(model.rSquared > 0.9, "R² \(model.rSquared)")
        #expect(abs(model.residualSD - 30) < 6, "residual sd \(model.residualSD)")
        #expect(abs(model.trend - 2) < 0.3, "trend \(model.trend)")
        for (c, truth) in Planted.truth.enumerated() {
            let fitted = model.channels[c]
            #expect(abs(fitted.decay - truth.decay) < 0.1, "\(truth.name): α \(fitted.decay) vs \(truth.decay)")
            // The curve over the range of history: flat spend at ½, 1 and 1½ times the mean per period, 8 periods.
            let mean = data.spend[c].reduce(0, +) / Double(data.kpi.count)
            for f in [0.5, 1, 1.5] {
                let s = 8 * f * mean
                let r = fitted.campaignResponse(total: s, periods: 8), t = truth.campaignResponse(total: s, periods: 8)
                #expect(abs(r - t) / t < (f < 1 ? 0.25 : 0.15), "\(truth.name) at \(f)× mean: \(r) vs \(t)")
            }
            // ROAS over the fit period against the truth; its interval is a real interval.
            let trueContribution = truth.contribution(data.spend[c]).reduce(0, +)
            let trueROAS = trueContribution / data.spend[c].reduce(0, +)
            print(String(format: "planted %@: α %.2f (true %.1f), ROAS %.2f [80%%: %.2f, %.2f] vs true %.2f", truth.name,
                         fitted.decay, truth.decay, model.roas[c], model.roasInterval[c].lower,
                         model.roasInterval[c].upper, trueROAS))
            #expect(abs(model.roas[c] - trueROAS) / trueROAS < 0.15, "ROAS \(model.roas[c]) vs \(trueROAS)")
            let i = model.roasInterval[c]
            #expect(i.lower < i.upper && i.level == 0.8)
        }
    }

    @Test func allocationIsWithinTwoPercentOfTheOracle() throws {
        // A campaign of 8 weeks, 2400 in all: free, then with a binding minimum (search, whose optimum is near 370)
        // and a binding maximum (tv, whose optimum is near 1500). Three histories (seeds), each fitted afresh.
        let budget = 2400.0, periods = 8
        let limits = ["search": MM.SpendLimit(minimum: 900), "tv": MM.SpendLimit(maximum: 900)]
        let free = Self.oracle(budget: budget, periods: periods, lo: [0, 0, 0, 0], hi: [budget, budget, budget, budget])
        let held = Self.oracle(budget: budget, periods: periods, lo: [900, 0, 0, 0], hi: [budget, 900, budget, budget])
        for seed in [7, 1, 2] as [UInt64] {
            let data = Planted(seed: seed)
            var options = MM.FitOptions()
            options.bootstrapReplicates = seed == 7 ? 12 : 0
            let model = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
            for (label, oracle, lim) in [("free", free, [String: MM.SpendLimit]()), ("limits", held, limits)] {
                let plan = try MM.allocate(model: model, budget: budget, periods: periods, limits: lim)
                let spend = plan.channels.map(\.spend)
                let achieved = Self.trueResponse(spend, periods: periods)
                print("seed \(seed), \(label): allocation \(spend.map { Int($0.rounded()) }) gives \(Int(achieved)) under "
                      + "the true curves; the oracle \(oracle.1.map { Int($0) }) gives \(Int(oracle.0)) "
                      + String(format: "(%.2f%%)", 100 * achieved / oracle.0))
                #expect(achieved >= 0.98 * oracle.0, "seed \(seed) \(label): \(achieved) vs oracle \(oracle.0)")
                #expect(abs(spend.reduce(0, +) - budget) < 1e-6 && plan.unspent < 1e-6 && plan.budgetBinds)
                #expect(plan.unspentReason == .none)
                #expect(plan.channels.allSatisfy { !$0.extrapolated })
                let kpi = try #require(plan.expectedKPI)
                // The level of the response is less sure than its shape: the base absorbs part of channels that
                // are on in most weeks (9% low for seed 7 with the limits).
                #expect(abs(kpi - achieved) / achieved < 0.12, "expected \(kpi), true \(achieved)")
                if label == "limits" {
                    #expect(plan.channels[0].binding == .minimum && abs(spend[0] - 900) < 1e-6)
                    #expect(plan.channels[1].binding == .maximum && abs(spend[1] - 900) < 1e-6)
                    #expect(plan.channels[2].binding == MM.Binding.none && plan.channels[3].binding == MM.Binding.none)
                    // Held at its minimum, search returns less at the margin than the free channels; capped, tv more;
                    // the free ones are equal up to the step.
                    let m = plan.channels.map { $0.marginalReturn! }
                    #expect(m[0] < min(m[2], m[3]) && m[1] > max(m[2], m[3]), "marginal returns \(m)")
                    #expect(abs(m[2] - m[3]) / m[3] < 0.05, "marginal returns \(m)")
                }
                if seed == 7 {
                    let interval = try #require(plan.expectedKPIInterval)
                    #expect(interval.lower <= kpi && kpi <= interval.upper && interval.level == 0.8, "\(kpi) in \(interval)")
                }
            }
        }
    }

    @Test func sShapedCurvesAreCrossedFromZero() throws {
        // Two channels from zero: a steep S-curve (n = 3) whose first small steps return almost nothing but whose
        // average return past its knee beats the concave channel's. Greedy in small steps alone would starve it.
        let s = MM.Curve(name: "s", decay: 0.2, halfSaturation: 300, shape: 3, coefficient: 1000)
        let c = MM.Curve(name: "c", decay: 0.2, halfSaturation: 400, shape: 0.7, coefficient: 500)
        let model = MM.Model(channels: [s, c])
        let budget = 4000.0, periods = 4
        let plan = try MM.allocate(model: model, budget: budget, periods: periods)
        var best = 0.0, bestS = 0.0
        for k in 0...4000 {
            let x = Double(k)
            let v = s.campaignResponse(total: x, periods: periods) + c.campaignResponse(total: budget - x, periods: periods)
            if v > best { best = v; bestS = x }
        }
        let got = try #require(plan.expectedKPI)
        #expect(got >= 0.999 * best, "\(got) vs \(best) at s = \(bestS)")
        #expect(plan.channels[0].spend > 1000, "S-channel spend \(plan.channels[0].spend)")
        // Analytic marginal return against a central difference.
        for x in [100.0, 1500, 3000] {
            let h = 1e-3
            let fd = (s.campaignResponse(total: x + h, periods: periods) - s.campaignResponse(total: x - h, periods: periods)) / (2 * h)
            #expect(abs(s.campaignMarginal(total: x, periods: periods) - fd) < 1e-6 * max(1, abs(fd)))
        }
    }

    @Test func infeasibleAndInvalidInputsAreErrors() throws {
        let model = MM.Model(channels: Planted.truth)
        #expect(throws: ChorusError.self) {
            try MM.allocate(model: model, budget: 500, periods: 4,
                            limits: ["search": .init(minimum: 300), "tv": .init(minimum: 300)])
        }
        #expect(throws: ChorusError.self) {
            try MM.allocate(model: model, budget: 500, periods: 4, limits: ["tv": .init(minimum: 200, maximum: 100)])
        }
        #expect(throws: ChorusError.self) {
            try MM.allocate(model: model, budget: 500, periods: 4, limits: ["radio": .init(maximum: 100)])
        }
        #expect(throws: ChorusError.self) { try MM.allocate(model: model, budget: -1, periods: 4) }
        #expect(throws: ChorusError.self) { try MM.allocate(model: model, budget: 100, periods: 0) }
        #expect(throws: ChorusError.self) {
            try MM.evenSplit(channels: ["a", "b"], budget: 100, periods: 2, limits: ["a": .init(minimum: 101)])
        }
        do {
            _ = try MM.allocate(model: model, budget: 500, periods: 4,
                                limits: ["search": .init(minimum: 300), "tv": .init(minimum: 300)])
        } catch let e as ChorusError {
            #expect(e.code == .invalidInput && e.message.contains("infeasible") && e.hint != nil)
        }
        // The fit refuses mismatched lengths and a channel that never spends.
        let data = Planted(periods: 40)
        #expect(throws: ChorusError.self) {
            try MM.fit(kpi: Array(data.kpi.dropLast()), channels: data.series)
        }
        #expect(throws: ChorusError.self) {
            try MM.fit(kpi: data.kpi, channels: [MM.Series("none", Array(repeating: 0, count: 40))])
        }
    }

    @Test func limitsUnspentBudgetAndExtrapolation() throws {
        // History never spent more than 100 per period on any channel.
        let model = MM.Model(channels: Planted.truth, historicMaxPerPeriod: [100, 100, 100, 100])
        // Every channel capped: the rest of the budget stays unspent, and says why.
        let capped = try MM.allocate(model: model, budget: 5000, periods: 10,
                                     limits: ["search": .init(maximum: 1000), "tv": .init(maximum: 1500),
                                              "social": .init(maximum: 500), "display": .init(maximum: 800)])
        #expect(abs(capped.spent - 3800) < 1e-6 && abs(capped.unspent - 1200) < 1e-6)
        #expect(capped.unspentReason == .allChannelsAtMaximum && !capped.budgetBinds)
        #expect(capped.channels.allSatisfy { $0.binding == .maximum })
        // tv at 150 per period is beyond the historic 100; search at exactly 100 is not.
        #expect(capped.channels.map(\.extrapolated) == [false, true, false, false])
        // A minimum marginal return above what the curves offer at the margin leaves money unspent.
        let thrifty = try MM.allocate(model: model, budget: 20000, periods: 10, minimumMarginalReturn: 1.5)
        #expect(thrifty.unspent > 1000 && thrifty.unspentReason == .marginalReturnBelowThreshold)
        for c in thrifty.channels where c.spend > 1 {
            #expect(abs(c.marginalReturn! - 1.5) < 0.1, "\(c.name): \(c.marginalReturn!)")
        }
        #expect(thrifty.channels.contains { $0.extrapolated })
        // A channel held at zero (its maximum) with a concave curve still reports a finite marginal return, and the
        // plan and the model encode to JSON (the campaign-plan job stores them).
        let zero = try MM.allocate(model: model, budget: 1000, periods: 4, limits: ["social": .init(maximum: 0)])
        let social = zero.channels[2]
        #expect(social.spend == 0 && social.binding == .maximum)
        #expect(social.marginalReturn!.isFinite && social.marginalReturn! > zero.channels[0].marginalReturn!)
        #expect(try JSONDecoder().decode(MM.Allocation.self, from: JSONEncoder().encode(zero)) == zero)
        _ = try JSONEncoder().encode(MM.Model(channels: Planted.truth))
        // Every plan respects its limits.
        for budget in [300.0, 1000, 4000] {
            let limits: [String: MM.SpendLimit] = ["search": .init(minimum: 100, maximum: 250), "social": .init(minimum: 50)]
            let plan = try MM.allocate(model: model, budget: budget, periods: 6, limits: limits)
            #expect(plan.spent <= budget + 1e-6)
            #expect(plan.channels[0].spend >= 100 - 1e-9 && plan.channels[0].spend <= 250 + 1e-9)
            #expect(plan.channels[2].spend >= 50 - 1e-9)
            #expect(plan.channels.allSatisfy { $0.spend >= 0 && abs($0.spendPerPeriod * 6 - $0.spend) < 1e-9 })
        }
    }

    @Test func evenSplitRespectsMinimumsAndMaximums() throws {
        let plain = try MM.evenSplit(channels: ["a", "b", "c"], budget: 900, periods: 3)
        #expect(plain.channels.map(\.spend) == [300, 300, 300] && plain.method == "even-split")
        #expect(plain.expectedKPI == nil && plain.channels.allSatisfy { $0.marginalReturn == nil && !$0.extrapolated })
        let capped = try MM.evenSplit(channels: ["a", "b", "c"], budget: 900, periods: 3, limits: ["c": .init(maximum: 100)])
        #expect(capped.channels.map(\.spend).map { ($0 * 1e6).rounded() / 1e6 } == [400, 400, 100])
        #expect(capped.channels[2].binding == .maximum)
        let both = try MM.evenSplit(channels: ["a", "b", "c"], budget: 900, periods: 3,
                                    limits: ["a": .init(minimum: 500), "c": .init(maximum: 100)])
        #expect(both.channels.map(\.spend).map { ($0 * 1e6).rounded() / 1e6 } == [500, 300, 100])
        #expect(both.channels[0].binding == .minimum && both.channels[2].binding == .maximum)
        let full = try MM.evenSplit(channels: ["a", "b"], budget: 900, periods: 3,
                                    limits: ["a": .init(maximum: 100), "b": .init(maximum: 200)])
        #expect(full.spent == 300 && full.unspent == 600 && full.unspentReason == .allChannelsAtMaximum)
        // With a model the same shape carries the expected KPI and flags.
        let model = MM.Model(channels: Planted.truth, historicMaxPerPeriod: [100, 100, 100, 100])
        let withModel = try MM.evenSplit(channels: ["search", "tv", "social", "display"], budget: 4800, periods: 10,
                                         model: model)
        #expect(abs(withModel.expectedKPI! - Self.trueResponse([1200, 1200, 1200, 1200], periods: 10)) < 1e-6)
        #expect(withModel.channels.allSatisfy { $0.extrapolated })
    }

    @Test func oneChannelOutcomeSeries() throws {
        // A channel's own outcomes: one curve and an intercept, no trend.
        var rng = SplitMix64(seed: 3)
        let truth = MM.Curve(name: "posts", decay: 0.5, halfSaturation: 30, shape: 1.5, coefficient: 120)
        let spend = (0..<120).map { _ in rng.unit() < 0.8 ? 40 * rng.unit() : 0 }
        let contrib = truth.contribution(spend)
        let outcomes = contrib.map { 20 + $0 + 4 * (rng.unit() - 0.5) }
        var options = MM.FitOptions()
        options.includeTrend = false
        options.bootstrapReplicates = 0
        let model = try MM.fit(kpi: outcomes, channels: [MM.Series("posts", spend)], options: options)
        #expect(abs(model.channels[0].decay - 0.5) < 0.05, "α \(model.channels[0].decay)")
        #expect(abs(model.intercept - 20) < 2, "intercept \(model.intercept)")
        let trueROAS = contrib.reduce(0, +) / spend.reduce(0, +)
        #expect(abs(model.roas[0] - trueROAS) / trueROAS < 0.05, "ROAS \(model.roas[0]) vs \(trueROAS)")
        #expect(model.rSquared > 0.98 && model.roasInterval.isEmpty)
        // Fitting is deterministic.
        let again = try MM.fit(kpi: outcomes, channels: [MM.Series("posts", spend)], options: options)
        #expect(again.channels == model.channels)
    }
}
