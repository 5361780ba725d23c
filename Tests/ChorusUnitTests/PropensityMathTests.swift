import ChorusAnalytics
import ChorusModel
import Testing

/// The pure parts of the `propensity` job: features as of a cutoff (no look-ahead), the logistic loss and its
/// gradient, partition sums, Platt scaling, and the held-out metrics.
@Suite struct PropensityMathTests {
    static let day: Int64 = 86400
    static let t0: Int64 = 1_756_684_800

    static func events(_ list: [(Int64, InteractionKind)]) -> [PropensityEvent] {
        list.map { PropensityEvent(ts: t0 + $0.0, kind: $0.1, value: $0.1 == .conversion ? 50 : 0) }
    }

    @Test func featuresAsOfACutoffReadNothingAfterIt() {
        let cutoff = Self.t0 + 10 * Self.day, window = 14 * Self.day
        let past = Self.events([(1 * Self.day, .view), (1 * Self.day + 60, .click), (3 * Self.day, .view),
                                (3 * Self.day + 5, .conversion), (8 * Self.day, .view), (8 * Self.day + 9, .like)])
        // The future holds a burst that would give a perfect predictor if it leaked: shares, clicks, a conversion.
        let future = Self.events([(10 * Self.day + 1, .share), (10 * Self.day + 2, .click), (11 * Self.day, .conversion)])
        let a = PropensityFeatures.row(events: past, followers: 3, channel: "x", channels: ["x", "weibo"],
                                       cutoff: cutoff, window: window)
        let b = PropensityFeatures.row(events: future + past, followers: 3, channel: "x", channels: ["x", "weibo"],
                                       cutoff: cutoff, window: window)
        #expect(a != nil && a == b)
        let names = PropensityFeatures.names(channels: ["x", "weibo"])
        let f = Dictionary(uniqueKeysWithValues: zip(names, a ?? []))
        #expect(f["active_days"] == 3)
        #expect(f["frequency"] == 2)
        #expect(abs((f["recency_days"] ?? 0) - (2 - 9.0 / 86400)) < 1e-9)
        #expect(abs((f["click_rate"] ?? 0) - 1.0 / 3) < 1e-12)
        #expect(f["conversion_value"] == 50)
        #expect(f["channel=x"] == 1 && f["channel=weibo"] == 0)
        // The label looks only at (cutoff, cutoff + horizon].
        #expect(PropensityFeatures.label(events: future + past, cutoff: cutoff, horizon: 7 * Self.day))
        #expect(!PropensityFeatures.label(events: future + past, cutoff: cutoff, horizon: Self.day / 2))
        #expect(!PropensityFeatures.label(events: past, cutoff: cutoff, horizon: 7 * Self.day))
        // Nothing before the cutoff: insufficient data, not a row of zeros or NaN.
        #expect(PropensityFeatures.row(events: future, followers: 0, channel: "", channels: [], cutoff: cutoff,
                                       window: window) == nil)
        // The window: events older than W count for recency only.
        let old = PropensityFeatures.row(events: past, followers: 0, channel: "", channels: [], cutoff: cutoff,
                                         window: 5 * Self.day) ?? []
        #expect(old[0] == 1 && old[2] == 2 - 9.0 / 86400)
    }

    static func data(_ n: Int, seed: UInt64, weights: [Double], bias: Double) -> ([[Double]], [Bool]) {
        var rng = SplitMix64(seed: seed)
        var x: [[Double]] = [], y: [Bool] = []
        for _ in 0..<n {
            let z = weights.map { _ in rng.gaussian() }
            var s = bias
            for j in z.indices { s += weights[j] * z[j] }
            x.append(z)
            y.append(rng.unit() < LogisticRegression.sigmoid(s))
        }
        return (x, y)
    }

    @Test func gradientMatchesFiniteDifferencesAndPartsAddUp() {
        let (x, y) = Self.data(300, seed: 1, weights: [1, -0.5, 0.2], bias: -1)
        let p = [0.3, -0.2, 0.1, -0.4]
        let lambda = 0.05
        func f(_ q: [Double]) -> (Double, [Double]) {
            var g = [Double](repeating: 0, count: 4)
            let l = LogisticRegression.lossAndGradient(q, rows: x, labels: y, into: &g)
            return LogisticRegression.objective(params: q, lossSum: l, gradientSum: g, count: Double(x.count), lambda: lambda)
        }
        let (_, g) = f(p)
        for j in 0..<4 {
            var a = p, b = p
            a[j] += 1e-6; b[j] -= 1e-6
            let numeric = (f(a).0 - f(b).0) / 2e-6
            #expect(abs(numeric - g[j]) < 1e-6, "parameter \(j): \(numeric) vs \(g[j])")
        }
        // The sums of two halves equal the sum of the whole (up to rounding): what the coordinator adds up.
        var g1 = [Double](repeating: 0, count: 4), g2 = g1, gAll = g1
        let l1 = LogisticRegression.lossAndGradient(p, rows: Array(x[..<100]), labels: Array(y[..<100]), into: &g1)
        let l2 = LogisticRegression.lossAndGradient(p, rows: Array(x[100...]), labels: Array(y[100...]), into: &g2)
        let lAll = LogisticRegression.lossAndGradient(p, rows: x, labels: y, into: &gAll)
        #expect(abs(l1 + l2 - lAll) < 1e-9)
        for j in 0..<4 { #expect(abs(g1[j] + g2[j] - gAll[j]) < 1e-9) }
    }

    @Test func fitRecoversPlantedWeightsAndL2Shrinks() {
        let truth = [1.2, -0.8, 0.0]
        let (x, y) = Self.data(20000, seed: 2, weights: truth, bias: -0.5)
        let w = LogisticRegression.fit(rows: x, labels: y, lambda: 0)
        for j in 0..<3 { #expect(abs(w[j] - truth[j]) < 0.08, "weight \(j): \(w[j])") }
        #expect(abs(w[3] + 0.5) < 0.08)
        let shrunk = LogisticRegression.fit(rows: x, labels: y, lambda: 1)
        #expect(abs(shrunk[0]) < abs(w[0]) && abs(shrunk[1]) < abs(w[1]))
    }

    @Test func plattScalingFixesMiscalibratedLogits() {
        var rng = SplitMix64(seed: 3)
        var s: [Double] = [], y: [Bool] = []
        for _ in 0..<20000 {
            let logit = rng.gaussian() * 1.5
            s.append(logit)
            y.append(rng.unit() < LogisticRegression.sigmoid(0.5 * logit - 1))  // the model is overconfident
        }
        let platt = PlattScaling.fit(logits: s, labels: y)
        #expect(abs(platt.a - 0.5) < 0.05 && abs(platt.b + 1) < 0.05, "\(platt)")
        let raw = s.map(LogisticRegression.sigmoid), cal = s.map(platt.probability)
        #expect(PropensityMetrics.ece(cal, y) < PropensityMetrics.ece(raw, y))
        #expect(PropensityMetrics.logLoss(cal, y) < PropensityMetrics.logLoss(raw, y))
        // Logits that rank the slice backwards: the slope stays positive (the ranking is the model's), and the
        // probabilities come to about the base rate.
        let inverted = PlattScaling.fit(logits: s, labels: s.map { $0 < 0 })
        #expect(inverted.a == PlattScaling.minSlope)
        let mean = s.map(inverted.probability).reduce(0, +) / Double(s.count)
        #expect(abs(mean - Double(s.filter { $0 < 0 }.count) / Double(s.count)) < 1e-6)
        // One class only: identity, never NaN.
        #expect(PlattScaling.fit(logits: [1, 2], labels: [false, false]) == PlattScaling())
    }

    @Test func metricsOnSmallCases() {
        // AUC: 3 positives, 3 negatives, one tie across classes (counts ½).
        let auc = PropensityMetrics.auc([0.9, 0.8, 0.5, 0.5, 0.3, 0.1], [true, true, false, true, false, false])
        #expect(abs((auc ?? 0) - 8.5 / 9) < 1e-12)
        #expect(PropensityMetrics.auc([0.1, 0.2], [true, true]) == nil)
        // ECE: bin [0.1, 0.2) holds p 0.1, 0.1 with labels 0, 1 → |0.5 − 0.1| × 2/4; bin [0.9, 1] holds 1.0, 0.9 with 1, 1.
        let ece = PropensityMetrics.ece([0.1, 0.1, 1.0, 0.9], [false, true, true, true])
        #expect(abs(ece - (0.4 * 0.5 + 0.05 * 0.5)) < 1e-12)
        // Lift: 10 rows, base rate 0.2, the top row converts → 1.0 / 0.2 = 5.
        let scores = (0..<10).map { Double(10 - $0) }
        var labels = [Bool](repeating: false, count: 10)
        labels[0] = true; labels[7] = true
        #expect(PropensityMetrics.liftTopDecile(scores, labels)?.lift == 5)
        // Deciles of 1…100: cut k at the (10k)-th highest; 100 is decile 1, 1 is decile 10.
        let cuts = PropensityMetrics.decileCuts((1...100).map(Double.init))
        #expect(cuts.first == 91 && cuts.last == 11)
        #expect(PropensityMetrics.decile(100, cuts: cuts) == 1 && PropensityMetrics.decile(91, cuts: cuts) == 1)
        #expect(PropensityMetrics.decile(90, cuts: cuts) == 2 && PropensityMetrics.decile(1, cuts: cuts) == 10)
        #expect(PropensityMetrics.logLoss([0, 1], [true, false]).isFinite)
    }

    @Test func driversAndReasonsInWords() {
        #expect(PropensityWords.driver("click_rate", coefficient: 0.8) == "users who click more convert more: +0.80 per s.d. of click rate")
        #expect(PropensityWords.driver("recency_days", coefficient: -0.31)
                == "users who have been away longer convert less: −0.31 per s.d. of days since last seen")
        let r = PropensityWords.reasons(names: ["click_rate", "recency_days", "channel=x"], weights: [0.8, -0.3, 0.2, 0],
                                        z: [1.5, -2, -1])
        #expect(r == ["click rate 1.5 s.d. above average (+1.20 to the log-odds)",
                      "days since last seen 2.0 s.d. below average (+0.60 to the log-odds)"])
        #expect(PropensityWords.fixed(-0.004, 2) == "0.00" && PropensityWords.fixed(2.345, 1) == "2.3")
    }

    @Test func slicesAreStableAndAboutSixtyTwentyTwenty() {
        var counts = [0, 0, 0]
        for i in 0..<10000 { counts[PropensityFeatures.slice(of: "u\(i)").rawValue] += 1 }
        #expect((5700...6300).contains(counts[0]) && (1800...2200).contains(counts[1]) && (1800...2200).contains(counts[2]))
        #expect(PropensityFeatures.slice(of: "u42") == PropensityFeatures.slice(of: "u42"))
    }
}
