import ChorusAnalytics
import ChorusModel
import Foundation
import Testing

/// The forecasting models (docs/forecasting.md "Forecasts"): planted seasonality is recovered, forecasts beat
/// seasonal naive, and the prediction intervals hold their coverage on series of a known process.
@Suite struct ForecastingTests {
    /// Hourly means of a known process: an hour-of-day shape times a weekday factor, like engagement.
    static func hourlyMean(_ t: Int, phase: Int = 0, level: Double) -> Double {
        let how = (phase + t) % 168
        let hour = how % 24, day = how / 24
        let shape = 1 + 0.8 * sin(Double(hour - 6) / 24 * 2 * Double.pi)
        return level * shape * [1, 0.95, 0.95, 1, 1.1, 1.35, 1.3][day]
    }

    static func poisson(_ mean: Double, _ g: inout SplitMix64) -> Double {
        // Knuth for small means, a normal approximation above 60.
        if mean > 60 { return max(0, (mean + mean.squareRoot() * g.gaussian()).rounded()) }
        let l = exp(-mean)
        var k = 0.0, p = 1.0
        repeat { k += 1; p *= g.unit() } while p > l
        return k - 1
    }

    @Test func recoversPlantedDailyAndWeeklySeasonality() throws {
        var g = SplitMix64(seed: 7)
        let n = 28 * 24
        let y = (0..<(n + 168)).map { Self.poisson(Self.hourlyMean($0, level: 20), &g) }
        let fit = try #require(Forecasting.select(Array(y[..<n]), .hourly(phase: 0)))
        let f = fit.forecast(168)
        var rel = 0.0
        for k in 0..<168 { rel += abs(f.point[k] - Self.hourlyMean(n + k, level: 20)) / Self.hourlyMean(n + k, level: 20) }
        #expect(rel / 168 < 0.08, "mean relative error to the true means \(rel / 168), model \(fit.model) \(fit.transform)")
        // The weekend bump and the evening peak are in the forecast.
        let saturday = f.point[(5 * 24)..<(6 * 24)].reduce(0, +), monday = f.point[0..<24].reduce(0, +)
        #expect(saturday > 1.2 * monday)
        let bt = Forecasting.backtest(y, .hourly(phase: 0),
                                      origins: Forecasting.origins(n: y.count, span: 14 * 24, step: 24, horizon: 24),
                                      horizon: 24)
        #expect(bt.origins == 14 && bt.points == 14 * 24)
        #expect(bt.mase < 0.85 * bt.maseSeasonalNaive && bt.relativeMAE < 0.85, "\(bt)")
    }

    /// Two known processes of the model class, with Gaussian errors: over many series the 80% and 95% intervals
    /// contain the truth 80% and 95% of the time (within 5 points), at horizons 1 to 48 hours.
    /// (a) an hour-of-day plus weekday pattern with AR(1) errors (φ 0.7); (b) ETS(A,N,A) with a daily season
    /// (α 0.2, γ 0.05): a wandering level.
    @Test func intervalsHoldTheirCoverageOnAKnownProcess() throws {
        for process in ["ar1", "ets"] {
            var inside80 = 0, inside95 = 0, points = 0
            var models: [String: Int] = [:]
            for s in 0..<40 {
                var g = SplitMix64(seed: UInt64(100 + s))
                var ar = 0.0, level = 50.0
                var season = (0..<24).map { 8 * sin(Double($0 - 6) / 24 * 2 * Double.pi) }
                let y = (0..<(21 * 24 + 48)).map { t -> Double in
                    if process == "ar1" {
                        ar = 0.7 * ar + 3 * g.gaussian()
                        let day = [0.0, -1, -1, 0, 2, 6, 5][(t / 24) % 7]
                        return 50 + season[t % 24] + day + ar
                    }
                    let e = 3 * g.gaussian()
                    let v = level + season[t % 24] + e
                    level += 0.2 * e
                    season[t % 24] += 0.05 * e
                    return v
                }
                let o = 21 * 24
                let fit = try #require(Forecasting.select(Array(y[..<o]), .hourly(phase: 0)))
                let f = fit.forecast(48)
                models[fit.model + "/" + fit.transform.rawValue, default: 0] += 1
                for k in 0..<48 {
                    points += 1
                    if y[o + k] >= f.lo80[k] && y[o + k] <= f.hi80[k] { inside80 += 1 }
                    if y[o + k] >= f.lo95[k] && y[o + k] <= f.hi95[k] { inside95 += 1 }
                }
            }
            let c80 = Double(inside80) / Double(points), c95 = Double(inside95) / Double(points)
            #expect(abs(c80 - 0.8) <= 0.05 && abs(c95 - 0.95) <= 0.05,
                    "\(process): coverage 80%: \(c80), 95%: \(c95), models \(models)")
        }
    }

    /// Counts (Poisson around a weekly pattern): the backtest's coverage of both intervals is within 5 points.
    @Test func countIntervalsHoldTheirCoverage() throws {
        var b = Forecasting.Backtest()
        for s in 0..<12 {
            var g = SplitMix64(seed: UInt64(500 + s))
            let level = [3.0, 8, 20, 60][s % 4]
            let y = (0..<(28 * 24)).map { Self.poisson(Self.hourlyMean($0, level: level), &g) }
            let r = Forecasting.backtest(y, .hourly(phase: 0),
                                         origins: Forecasting.origins(n: y.count, span: 7 * 24, step: 24, horizon: 24),
                                         horizon: 24)
            b.points += r.points; b.inside80 += r.inside80; b.inside95 += r.inside95
        }
        #expect(abs(b.coverage80 - 0.8) <= 0.05 && abs(b.coverage95 - 0.95) <= 0.05,
                "coverage 80%: \(b.coverage80), 95%: \(b.coverage95)")
    }

    @Test func dailySeriesWithTrendAndMissingValues() throws {
        var g = SplitMix64(seed: 3)
        var y = (0..<140).map { t -> Double in
            100 + 0.5 * Double(t) + [0, -5, -5, 0, 8, 20, 15][t % 7] + 4 * g.gaussian()
        }
        y[50] = .nan; y[51] = .nan
        let fit = try #require(Forecasting.select(Array(y[..<126]), .daily(phase: 0)))
        let f = fit.forecast(14)
        #expect(f.point.allSatisfy { $0.isFinite } && zip(f.lo95, f.hi95).allSatisfy { $0 < $1 })
        let mae = (0..<14).map { abs(f.point[$0] - y[126 + $0]) }.reduce(0, +) / 14
        #expect(mae < 8, "MAE \(mae) with \(fit.model)")
        #expect(Forecasting.select([1, 2, 3], .daily(phase: 0)) == nil)
    }

    @Test func seasonalNaiveAndOrigins() {
        let y: [Double] = (0..<21).map { Double($0 % 7) }
        #expect(Forecasting.seasonalNaive(y, period: 7, horizon: 9) == [0, 1, 2, 3, 4, 5, 6, 0, 1])
        #expect(Forecasting.maseScale(y, period: 7) == 0)
        #expect(Forecasting.origins(n: 100, span: 30, step: 10, horizon: 10) == [70, 80, 90])
    }

    @Test func deterministic() throws {
        var g = SplitMix64(seed: 11)
        let y = (0..<(21 * 24)).map { Self.poisson(Self.hourlyMean($0, phase: 30, level: 5), &g) }
        let a = try #require(Forecasting.select(y, .hourly(phase: 30))).forecast(24)
        let b = try #require(Forecasting.select(y, .hourly(phase: 30))).forecast(24)
        #expect(a == b)
    }
}

extension SplitMix64 {
    mutating func gaussian() -> Double {
        let u1 = max(unit(), 1e-12), u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
