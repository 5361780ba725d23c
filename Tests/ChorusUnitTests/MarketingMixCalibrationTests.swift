import ChorusAnalytics
import ChorusModel
import Foundation
import Testing

/// Calibration of the response curves by experiments (docs/campaigns.md "Calibration by experiments"): a channel
/// whose history cannot identify its saturation is pulled to the truth by one experiment, collinear channels are
/// only partly separated by one, unknown channels are ignored and reported, no calibration leaves the fit as it was,
/// and the calibrated fit is deterministic.
@Suite struct MarketingMixCalibrationTests {
    typealias MM = MarketingMix

    /// 130 weeks. search spends in 75% of the weeks, from 20 to 180 (identified by its on/off history); tv is always
    /// on at 80 to 120 per week, so its level hides in the intercept and its curve beyond the usual spend is a guess.
    /// Base 1000 + t, Gaussian noise sd 40, all seeded.
    struct AlwaysOn {
        static let truth = [
            MM.Curve(name: "search", decay: 0.3, halfSaturation: 80, shape: 1.0, coefficient: 400),
            MM.Curve(name: "tv", decay: 0.5, halfSaturation: 150, shape: 1.0, coefficient: 600),
        ]
        let spend: [[Double]]
        let kpi: [Double]

        init(seed: UInt64, periods n: Int = 130, noise: Double = 40) {
            var rng = SplitMix64(seed: seed)
            var search: [Double] = [], tv: [Double] = []
            for _ in 0..<n {
                search.append(rng.unit() < 0.75 ? 100 * (0.2 + 1.6 * rng.unit()) : 0)
                tv.append(100 * (0.8 + 0.4 * rng.unit()))
            }
            spend = [search, tv]
            var y = (0..<n).map { 1000 + Double($0) + noise * rng.gaussian() }
            for c in 0..<2 {
                let contribution = Self.truth[c].contribution(spend[c])
                for t in 0..<n { y[t] += contribution[t] }
            }
            kpi = y
        }

        var series: [MM.Series] { spend.indices.map { MM.Series(Self.truth[$0].name, spend[$0]) } }
    }

    /// tv's response to a campaign at `multiple`× its usual 100 per week over 8 weeks, from zero adstock.
    static func tvResponse(_ curve: MM.Curve, multiple: Double) -> Double {
        curve.campaignResponse(total: 8 * 100 * multiple, periods: 8)
    }

    /// The worst relative error of tv's curve against the truth at ½, 1, 1½ and 2× its usual spend (8-week campaigns).
    static func worstError(_ curve: MM.Curve) -> Double {
        [0.5, 1, 1.5, 2].map { m in
            abs(tvResponse(curve, multiple: m) / tvResponse(AlwaysOn.truth[1], multiple: m) - 1)
        }.max()!
    }

    /// One holdout experiment on tv: 400 over 4 weeks (its usual rate, from zero), measured with an 8% standard
    /// error; the measurement is the true curve's lift plus seeded noise at that standard error.
    static func experiment(seed: UInt64) -> MM.Calibration {
        let truth = AlwaysOn.truth[1].experimentLift(spend: 400, periods: 4)
        var rng = SplitMix64(seed: 100 + seed)
        let se = 0.08 * truth
        return MM.Calibration(id: "tv-holdout", channel: "tv", spend: 400, periods: 4,
                              lift: truth + se * rng.gaussian(), standardError: se)
    }

    @Test func anExperimentPinsACurveHistoryCannotIdentify() throws {
        let trueLift = AlwaysOn.truth[1].experimentLift(spend: 400, periods: 4)
        #expect(abs(trueLift - 1196.4) < 0.1, "true lift \(trueLift)")
        var plainErrors: [Double] = [], calibratedErrors: [Double] = []
        for seed in [1, 2, 3, 4, 5] as [UInt64] {
            let data = AlwaysOn(seed: seed)
            var options = MM.FitOptions()
            options.bootstrapReplicates = seed == 1 ? 10 : 0
            let plain = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
            let point = Self.experiment(seed: seed)
            options.calibration = [point]
            let model = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
            let r = try #require(model.calibration.first)
            #expect(model.calibration.count == 1 && r.used && r.id == "tv-holdout" && r.lift == point.lift)
            let before = try #require(r.impliedBefore), implied = try #require(r.implied)
            #expect(abs(before - plain.channels[1].experimentLift(point)) < 1e-9 * max(1, abs(before)))
            #expect(abs(implied - model.channels[1].experimentLift(point)) < 1e-9 * implied)
            let plainError = Self.worstError(plain.channels[1]), calibratedError = Self.worstError(model.channels[1])
            plainErrors.append(plainError)
            calibratedErrors.append(calibratedError)
            print(String(format: "seed %d: lift true %.0f, measured %.0f (se %.0f); implied %.0f uncalibrated, %.0f "
                         + "calibrated (%+.2f SE from the truth); tv at 2× usual: true %.0f, uncalibrated %.0f, "
                         + "calibrated %.0f; worst error over ½–2×: %.0f%% uncalibrated, %.0f%% calibrated; "
                         + "R² %.3f → %.3f", seed, trueLift, point.lift, point.standardError, before, implied,
                         (implied - trueLift) / point.standardError, Self.tvResponse(AlwaysOn.truth[1], multiple: 2),
                         Self.tvResponse(plain.channels[1], multiple: 2), Self.tvResponse(model.channels[1], multiple: 2),
                         100 * plainError, 100 * calibratedError, plain.rSquared, model.rSquared))
            // The calibrated curve follows the experiment (within 1 SE of the measurement, within 2 SE of the truth)
            // where the uncalibrated one was 9 to 100,000 SE off.
            #expect(abs(implied - point.lift) < point.standardError, "\(implied) vs measured \(point.lift)")
            #expect(abs(implied - trueLift) < 2 * point.standardError, "\(implied) vs true \(trueLift)")
            #expect(abs(before - trueLift) > 5 * point.standardError, "uncalibrated \(before)")
            // tv's curve over ½–2× its usual spend: within 30% of the truth (8–26%), against 87% to 10⁶% off
            // uncalibrated. At 2× alone the uncalibrated curve of seed 3 happens to be closer (−11% against +13%): it
            // crosses the truth there while it is 65% low at the usual spend.
            #expect(calibratedError < 0.3 && calibratedError < 0.5 * plainError,
                    "seed \(seed): worst error \(calibratedError) calibrated, \(plainError) uncalibrated")
            // The history cannot tell the two apart: R² moves by less than 0.01.
            #expect(abs(model.rSquared - plain.rSquared) < 0.01)
            // search, identified by its on/off history, keeps its curve (within 10% at its mean spend).
            let s = 8 * 75.0
            let searchPlain = plain.channels[0].campaignResponse(total: s, periods: 8)
            let searchCal = model.channels[0].campaignResponse(total: s, periods: 8)
            #expect(abs(searchCal / searchPlain - 1) < 0.1, "search \(searchCal) vs \(searchPlain)")
            if seed == 1 {
                // The bootstrap redraws the lift at its standard error: the interval is a real one around it.
                let interval = try #require(r.impliedInterval)
                #expect(interval.lower < implied && implied < interval.upper && interval.level == 0.8, "\(interval)")
                #expect(interval.upper - interval.lower < 4 * point.standardError, "\(interval)")
                #expect(model.replicates.count == 10)
            }
        }
        let median = { (v: [Double]) in v.sorted()[v.count / 2] }
        print(String(format: "median worst error over ½–2× usual spend: %.0f%% uncalibrated, %.0f%% calibrated",
                     100 * median(plainErrors), 100 * median(calibratedErrors)))
        #expect(median(calibratedErrors) < 0.25 && median(plainErrors) > 0.8)
    }

    /// Two collinear channels: social spends 0.6× search (±10%) in the same weeks, so history cannot split their
    /// effect. One experiment on social (240 over 4 weeks, 10% standard error) pins social's implied lift, but each
    /// curve's shape elsewhere stays loose: the figures are a limit in docs/campaigns.md, not a success.
    @Test func collinearChannelsAreOnlyPartlySeparated() throws {
        let truth = [MM.Curve(name: "search", decay: 0.3, halfSaturation: 80, shape: 1.0, coefficient: 400),
                     MM.Curve(name: "social", decay: 0.3, halfSaturation: 60, shape: 1.0, coefficient: 250)]
        let trueLift = truth[1].experimentLift(spend: 240, periods: 4)
        func worst(_ curve: MM.Curve, _ c: Int, mean: Double) -> Double {
            [0.5, 1, 1.5, 2].map { f in
                abs(curve.campaignResponse(total: 8 * f * mean, periods: 8)
                    / truth[c].campaignResponse(total: 8 * f * mean, periods: 8) - 1)
            }.max()!
        }
        for seed in [1, 2, 3, 4, 5] as [UInt64] {
            var rng = SplitMix64(seed: seed)
            var search: [Double] = [], social: [Double] = []
            for _ in 0..<130 {
                let x = rng.unit() < 0.75 ? 100 * (0.2 + 1.6 * rng.unit()) : 0
                search.append(x)
                social.append(x * 0.6 * (0.9 + 0.2 * rng.unit()))
            }
            var y = (0..<130).map { 1000 + Double($0) + 40 * rng.gaussian() }
            for (c, x) in [search, social].enumerated() {
                let k = truth[c].contribution(x)
                for t in 0..<130 { y[t] += k[t] }
            }
            var options = MM.FitOptions()
            options.bootstrapReplicates = 0
            let series = [MM.Series("search", search), MM.Series("social", social)]
            let plain = try MM.fit(kpi: y, channels: series, options: options)
            var liftRNG = SplitMix64(seed: 100 + seed)
            let se = 0.1 * trueLift
            let point = MM.Calibration(id: "social-holdout", channel: "social", spend: 240, periods: 4,
                                       lift: trueLift + se * liftRNG.gaussian(), standardError: se)
            options.calibration = [point]
            let model = try MM.fit(kpi: y, channels: series, options: options)
            let r = try #require(model.calibration.first)
            let implied = try #require(r.implied), before = try #require(r.impliedBefore)
            let socialBefore = worst(plain.channels[1], 1, mean: 45), socialAfter = worst(model.channels[1], 1, mean: 45)
            let searchBefore = worst(plain.channels[0], 0, mean: 75), searchAfter = worst(model.channels[0], 0, mean: 75)
            print(String(format: "collinear seed %d: social lift true %.0f, measured %.0f; implied %.0f uncalibrated, "
                         + "%.0f calibrated; worst error over ½–2×: social %.0f%% → %.0f%%, search %.0f%% → %.0f%%",
                         seed, trueLift, point.lift, before, implied, 100 * socialBefore, 100 * socialAfter,
                         100 * searchBefore, 100 * searchAfter))
            #expect(r.used && abs(implied - trueLift) < 2 * se, "\(implied) vs \(trueLift)")
            #expect(socialAfter < socialBefore, "seed \(seed): social \(socialAfter) vs \(socialBefore)")
        }
    }

    @Test func unknownChannelsAndInvalidPointsAreIgnoredAndReported() throws {
        let data = AlwaysOn(seed: 1)
        var options = MM.FitOptions()
        options.bootstrapReplicates = 4
        let plain = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
        options.calibration = [
            MM.Calibration(id: "radio-test", channel: "radio", spend: 500, periods: 2, lift: 300, standardError: 50),
            MM.Calibration(id: "no-se", channel: "tv", spend: 400, periods: 4, lift: 1200, standardError: 0),
            MM.Calibration(id: "no-spend", channel: "search", spend: 0, periods: 4, lift: 10, standardError: 5),
        ]
        let model = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
        let r = model.calibration
        #expect(r.count == 3 && r.map(\.id) == ["radio-test", "no-se", "no-spend"])
        #expect(r.allSatisfy { !$0.used })
        #expect(r[0].note.contains("no channel radio") && r[0].impliedBefore == nil && r[0].implied == nil)
        #expect(r[1].note.contains("standard error") && r[1].impliedBefore == r[1].implied && r[1].implied != nil)
        #expect(r[2].note.contains("spend") && r[2].implied == nil)
        // Nothing used: the fit is the plain one, bit for bit, replicates included.
        #expect(model.channels == plain.channels && model.replicates == plain.replicates)
        #expect(model.intercept == plain.intercept && model.rSquared == plain.rSquared)
        // Weight 0 reports the implied lift of a valid point without using it.
        options.calibration = [Self.experiment(seed: 1)]
        options.calibrationWeight = 0
        let unweighted = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
        let u = try #require(unweighted.calibration.first)
        #expect(!u.used && u.note.contains("weight") && u.implied == u.impliedBefore)
        #expect(u.implied == plain.channels[1].experimentLift(options.calibration[0]))
        #expect(unweighted.channels == plain.channels)
        // The results encode (the campaign plan stores them).
        let decoded = try JSONDecoder().decode([MM.CalibrationResult].self, from: JSONEncoder().encode(r))
        #expect(decoded == r)
    }

    @Test func noCalibrationLeavesTheFitAsItWas() throws {
        let data = AlwaysOn(seed: 2)
        var options = MM.FitOptions()
        options.bootstrapReplicates = 4
        let plain = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
        #expect(plain.calibration.isEmpty)
        options.calibration = []
        options.calibrationWeight = 5
        let again = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
        #expect(again.channels == plain.channels && again.replicates == plain.replicates && again.calibration.isEmpty)
        #expect(again.contribution == plain.contribution && again.residualSD == plain.residualSD)
    }

    @Test func calibratedFitIsDeterministic() throws {
        let data = AlwaysOn(seed: 3)
        var options = MM.FitOptions()
        options.bootstrapReplicates = 5
        options.calibration = [Self.experiment(seed: 3),
                               MM.Calibration(id: "search-burst", channel: "search", spend: 900, periods: 2.5,
                                              lift: 800, standardError: 120)]
        let a = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
        let b = try MM.fit(kpi: data.kpi, channels: data.series, options: options)
        #expect(a.channels == b.channels && a.replicates == b.replicates && a.calibration == b.calibration)
        #expect(a.calibration.allSatisfy { $0.used })
    }

    @Test func impliedLiftOfAnExperiment() {
        let curve = MM.Curve(name: "tv", decay: 0.5, halfSaturation: 150, shape: 1.0, coefficient: 600)
        // Whole periods from zero: the allocator's campaign response, exactly.
        for (s, p) in [(400.0, 4), (1200, 3), (50, 1)] {
            #expect(curve.experimentLift(spend: s, periods: Double(p)) == curve.campaignResponse(total: s, periods: p))
        }
        // 400 over 4 weeks: a_p = 100, 150, 175, 187.5, h = a/(a + 150), 600·Σh.
        let hand = 600 * [100.0, 150, 175, 187.5].reduce(0) { $0 + $1 / ($1 + 150) }
        #expect(abs(curve.experimentLift(spend: 400, periods: 4) - hand) < 1e-9)
        // 2.5 periods at 100 per period: two whole periods and half of the third's response.
        let half = 600 * (100.0 / 250 + 150.0 / 300 + 0.5 * 175.0 / 325)
        #expect(abs(curve.experimentLift(spend: 250, periods: 2.5) - half) < 1e-9)
        // On top of a usual 100 per week (steady adstock 200) the same spend adds less on a concave curve.
        let onTop = curve.experimentLift(spend: 400, periods: 4, baseSpendPerPeriod: 100)
        let steps: [Double] = [100, 150, 175, 187.5]
        var byHand = 0.0
        for a in steps { byHand += 600 * ((200 + a) / (350 + a) - 200.0 / 350) }
        #expect(abs(onTop - byHand) < 1e-9 && onTop < hand)
        #expect(curve.experimentLift(spend: 0, periods: 4) == 0)
    }
}
