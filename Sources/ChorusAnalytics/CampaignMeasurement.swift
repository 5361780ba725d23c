import Foundation

/// The statistics of campaign measurement (docs/campaigns.md "Measurement"): what a treated arm and its holdout say
/// about the campaign's effect. Pure: value types in, value types out, deterministic. Every estimator works from the
/// per-arm sufficient statistics `Moments` (n, Σy, Σy², Σx, Σx², Σxy), which partitions add up, so a distributed job
/// sums them and calls these functions once. (Variances from the sums lose digits when a metric's mean is over ~10⁶
/// times its spread: centre such a metric before summing.)
///
/// - **Welch** (scipy `ttest_ind(equal_var=False)` and its `confidence_interval`): with vᵢ = sᵢ²/nᵢ,
///
///       d = ȳ_t − ȳ_c,  se = √(v_t + v_c),  t = d/se,  ν = (v_t + v_c)² / (v_t²/(n_t−1) + v_c²/(n_c−1))
///       p = 2·P(T_ν > |t|),  CI = d ± t_{ν, 1−α/2}·se
///
///   The Student t distribution through the regularized incomplete beta function: P(|T_ν| > |t|) = I_x(ν/2, ½)
///   with x = ν/(ν + t²), I by its continued fraction (modified Lentz) on whichever side of the mean converges
///   (I_x(a, b) = 1 − I_{1−x}(b, a)); the quantile by a safeguarded Newton iteration on the CDF inside a bracket.
/// - **Relative lift** r = d/ȳ_c by the delta method (arms independent): Var(r) ≈ v_t/ȳ_c² + ȳ_t²·v_c/ȳ_c⁴, the
///   interval r ± t_{ν, 1−α/2}·√Var(r) with the Welch ν. None when ȳ_c = 0.
/// - **CUPED** (Deng et al. 2013): θ = Σ_arms S_xy / Σ_arms S_xx, the within-arm pooled covariance of the metric y
///   with its pre-period covariate x over the pooled variance of x (pooling within arms keeps a treatment effect on
///   y out of θ); the adjusted metric y − θ(x − x̄) with x̄ the mean of x over both arms has per-arm mean
///   ȳ − θ(x̄_arm − x̄) and variance s_y² − 2θ·s_xy + θ²·s_x², and goes through Welch. The variance reduction is
///   1 − se_adjusted²/se². θ = 0 when x does not vary. The relative lift is against the control's observed mean (both adjusted means shifted by one amount).
/// - **Confidence sequence** (normal mixture; Robbins, Howard et al. 2021, Waudby-Smith et al. 2024's asymptotic
///   CS, as Eppo uses): with N = n_t + n_c users and a = N·ρ²,
///
///       d ± se·√( (1 + a)/a · (2·log(1/α) + log(1 + a)) )
///
///   is the set of differences the mixture martingale M = (1 + a)^(−½)·exp(a·z²/(2(1 + a))) (z = (d − δ)/se) has
///   not pushed past 1/α; by Ville's inequality it covers the truth at every look at once with probability ≥ 1 − α
///   (asymptotically, se being estimated). ρ is tuned so the width is smallest when N = `plannedUsers`: a* solves
///   a = 2·log(1/α) + log(1 + a) (fixed-point iteration; Howard et al.'s closed form is its first step), and
///   a = a*·N/plannedUsers. The always-valid p-value is min(1, 1/M) at δ = 0.
/// - **Sample ratio** (as GrowthBook): Pearson's χ² of the arm counts against total × design share, k − 1 degrees
///   of freedom, p = Q((k−1)/2, χ²/2) by the regularized upper incomplete gamma (series below a + 1, continued
///   fraction above); a mismatch when p < threshold (0.001).
/// - **Multiple comparisons** (statsmodels `multipletests`): Holm step-down, p̃₍ᵢ₎ = max_{j≤i} min(1, (m−j+1)·p₍ⱼ₎);
///   Benjamini–Hochberg step-up, p̃₍ᵢ₎ = min_{j≥i} min(1, m·p₍ⱼ₎/j); both returned in input order.
/// - **Retention** ("unbounded": came back on day N or later): eligible when t0 + N·86400 ≤ data end, retained when
///   some activity is at or after t0 + N·86400.
///
/// Degenerate inputs never give NaN: an arm with fewer than 2 users, or no variance in either arm with equal means,
/// is "no evidence" — p = 1, statistic 0, ν = 0, se = 0 and a zero-width interval at the observed difference
/// (`Estimate.isDegenerate` tells it apart); no variance in either arm with different means (all-or-nothing arms)
/// gives p = 0, the statistic ±Double.greatestFiniteMagnitude and a zero-width interval. All outputs are finite,
/// so they encode as JSON.
public enum CampaignMeasurement {
    // MARK: sufficient statistics

    /// Sufficient statistics of one arm for a per-user metric y with a pre-period covariate x (additive across
    /// partitions).
    public struct Moments: Sendable, Equatable, Codable {
        public var n: Double, sumY: Double, sumY2: Double, sumX: Double, sumX2: Double, sumXY: Double
        public init(n: Double = 0, sumY: Double = 0, sumY2: Double = 0, sumX: Double = 0, sumX2: Double = 0,
                    sumXY: Double = 0) {
            self.n = n; self.sumY = sumY; self.sumY2 = sumY2; self.sumX = sumX; self.sumX2 = sumX2; self.sumXY = sumXY
        }
        /// The moments of these values (x = 0 when there is no covariate).
        public init(y: [Double], x: [Double]? = nil) {
            self.init()
            for (i, v) in y.enumerated() { add(y: v, x: x?[i] ?? 0) }
        }
        public mutating func add(y: Double, x: Double = 0) {
            n += 1; sumY += y; sumY2 += y * y; sumX += x; sumX2 += x * x; sumXY += x * y
        }
        public static func + (a: Moments, b: Moments) -> Moments {
            Moments(n: a.n + b.n, sumY: a.sumY + b.sumY, sumY2: a.sumY2 + b.sumY2, sumX: a.sumX + b.sumX,
                    sumX2: a.sumX2 + b.sumX2, sumXY: a.sumXY + b.sumXY)
        }
        /// Σy / n (0 when n == 0).
        public var mean: Double { n > 0 ? sumY / n : 0 }
        /// Mean of the covariate (0 when n == 0).
        public var meanX: Double { n > 0 ? sumX / n : 0 }
        /// Sample variance of y (n − 1 denominator; 0 when n < 2; never negative).
        public var variance: Double { n >= 2 ? max(0, (sumY2 - sumY * sumY / n) / (n - 1)) : 0 }
        /// Sample variance of x.
        public var varianceX: Double { n >= 2 ? max(0, (sumX2 - sumX * sumX / n) / (n - 1)) : 0 }
        /// Sample covariance of x and y.
        public var covariance: Double { n >= 2 ? (sumXY - sumX * sumY / n) / (n - 1) : 0 }
    }

    // MARK: Welch

    public struct Estimate: Sendable, Equatable, Codable {
        public var treatmentMean: Double, controlMean: Double
        /// treatment − control and its confidence interval.
        public var absolute: Double, absoluteLow: Double, absoluteHigh: Double
        /// (t − c)/c by the delta method; nil when the control mean is 0.
        public var relative: Double?, relativeLow: Double?, relativeHigh: Double?
        public var standardError: Double
        /// Welch t.
        public var statistic: Double
        /// Welch–Satterthwaite; 0 when the comparison is degenerate.
        public var degreesOfFreedom: Double
        /// Two-sided.
        public var pValue: Double
        /// No usable variance estimate (an arm below 2 users, or no variance at all): see the type's comment.
        public var isDegenerate: Bool { degreesOfFreedom == 0 }
    }

    /// An arm as the Welch comparison sees it.
    struct Arm { var n: Double, mean: Double, variance: Double }

    /// Fixed-horizon Welch two-sample comparison (scipy `ttest_ind(equal_var=False)` and its
    /// `confidence_interval(1 − alpha)`).
    public static func welch(treatment: Moments, control: Moments, alpha: Double = 0.05) -> Estimate {
        welch(Arm(n: treatment.n, mean: treatment.mean, variance: treatment.variance),
              Arm(n: control.n, mean: control.mean, variance: control.variance), alpha: alpha)
    }

    static func welch(_ t: Arm, _ c: Arm, alpha: Double) -> Estimate {
        precondition(alpha > 0 && alpha < 1, "alpha is in (0, 1)")
        let d = t.mean - c.mean
        let vt = t.n >= 2 ? t.variance / t.n : 0, vc = c.n >= 2 ? c.variance / c.n : 0
        let se = (vt + vc).squareRoot()
        var e = Estimate(treatmentMean: t.mean, controlMean: c.mean, absolute: d, absoluteLow: d, absoluteHigh: d,
                         relative: nil, relativeLow: nil, relativeHigh: nil, standardError: 0, statistic: 0,
                         degreesOfFreedom: 0, pValue: 1)
        if c.mean != 0 { let r = d / c.mean; e.relative = r; e.relativeLow = r; e.relativeHigh = r }
        guard t.n >= 2, c.n >= 2 else { return e }
        guard se > 0, se.isFinite else {
            if d != 0 { e.pValue = 0; e.statistic = d > 0 ? .greatestFiniteMagnitude : -.greatestFiniteMagnitude }
            return e
        }
        let df = (vt + vc) * (vt + vc) / (vt * vt / (t.n - 1) + vc * vc / (c.n - 1))
        let stat = d / se
        let q = studentTQuantile(1 - alpha / 2, df: df)
        e.standardError = se
        e.statistic = stat
        e.degreesOfFreedom = df
        e.pValue = min(1, 2 * studentTSurvival(abs(stat), df: df))
        e.absoluteLow = d - q * se
        e.absoluteHigh = d + q * se
        if c.mean != 0 {
            let r = d / c.mean
            // Both means positive: the interval of the ratio on the log scale, exp(log(ȳ_t/ȳ_c) ± q·√(v_t/ȳ_t² + v_c/ȳ_c²))
            // − 1. It stays above −100% and agrees with the absolute interval when the control has few events, where
            // the symmetric delta-method interval crosses −100%. Otherwise (a mean ≤ 0, e.g. a CUPED-adjusted one),
            // the delta method: r ± q·√(v_t/ȳ_c² + ȳ_t²·v_c/ȳ_c⁴).
            let seLog = (vt / (t.mean * t.mean) + vc / (c.mean * c.mean)).squareRoot()
            let lo = exp(log(t.mean / c.mean) - q * seLog) - 1, hi = exp(log(t.mean / c.mean) + q * seLog) - 1
            if t.mean > 0 && c.mean > 0 && lo.isFinite && hi.isFinite {
                e.relativeLow = lo
                e.relativeHigh = hi
            } else {
                let varR = vt / (c.mean * c.mean) + t.mean * t.mean * vc / (c.mean * c.mean * c.mean * c.mean)
                let seR = varR.squareRoot()
                e.relativeLow = r - q * seR
                e.relativeHigh = r + q * seR
            }
        }
        return e
    }

    // MARK: CUPED

    public struct CUPED: Sendable, Equatable, Codable {
        /// On the adjusted metric y − θ(x − x̄).
        public var estimate: Estimate
        /// Pooled (within-arm) cov(x, y) / var(x) over both arms.
        public var theta: Double
        /// 1 − Var(adjusted difference) / Var(unadjusted difference); in [0, 1) typically.
        public var varianceReduction: Double
    }

    public static func cuped(treatment: Moments, control: Moments, alpha: Double = 0.05) -> CUPED {
        let unadjusted = welch(treatment: treatment, control: control, alpha: alpha)
        // Within-arm centred cross-products and squares.
        func sxy(_ m: Moments) -> Double { m.n > 0 ? m.sumXY - m.sumX * m.sumY / m.n : 0 }
        func sxx(_ m: Moments) -> Double { m.n > 0 ? max(0, m.sumX2 - m.sumX * m.sumX / m.n) : 0 }
        let sxxAll = sxx(treatment) + sxx(control)
        let scale = max(abs(treatment.sumX2), abs(control.sumX2), Double.leastNormalMagnitude)
        let theta = sxxAll > 1e-12 * scale ? (sxy(treatment) + sxy(control)) / sxxAll : 0
        let total = treatment.n + control.n
        let xBar = total > 0 ? (treatment.sumX + control.sumX) / total : 0
        func adjusted(_ m: Moments) -> Arm {
            let v = m.variance - 2 * theta * m.covariance + theta * theta * m.varianceX
            return Arm(n: m.n, mean: m.mean - theta * (m.meanX - xBar), variance: max(0, v))
        }
        // Both adjusted means are shifted by the same amount so that the control's is its observed mean: the
        // difference, its interval and p are unchanged, and the relative lift is over the control's real mean
        // (the adjusted control mean can sit near 0 or below when the pre-period explains much of it).
        var t = adjusted(treatment), c = adjusted(control)
        let shift = control.mean - c.mean
        t.mean += shift; c.mean += shift
        let estimate = welch(t, c, alpha: alpha)
        let before = unadjusted.standardError, after = estimate.standardError
        let reduction = before > 0 ? 1 - (after * after) / (before * before) : 0
        return CUPED(estimate: estimate, theta: theta, varianceReduction: reduction)
    }

    // MARK: confidence sequence

    public struct Sequential: Sendable, Equatable, Codable {
        public var low: Double, high: Double, halfWidth: Double
        /// Always-valid p-value for "no difference" (p < α exactly when the sequence excludes 0).
        public var pValue: Double
    }

    /// The mixture scale a* = N*·ρ² that makes the width smallest at N*: the fixed point of a = L + log(1 + a) with
    /// L = 2·log(1/α).
    static func optimalMixture(alpha: Double) -> Double {
        let l = -2 * log(alpha)
        var a = l + log(1 + l)
        for _ in 0..<60 {
            let next = l + log(1 + a)
            if abs(next - a) < 1e-15 * a { a = next; break }
            a = next
        }
        return a
    }

    /// The half-width as a multiple of the standard error at mixture scale a = N·ρ².
    public static func sequenceMultiplier(alpha: Double, mixture a: Double) -> Double {
        ((1 + a) / a * (-2 * log(alpha) + log(1 + a))).squareRoot()
    }

    /// Always-valid (sequential) confidence interval for treatment − control: the asymptotic confidence sequence of
    /// Waudby-Smith et al. / Howard et al. (normal mixture, as Eppo uses), with the mixture parameter tuned so the
    /// sequence is tightest at `plannedUsers` (total users of both arms; ≤ 0 tunes at the current total). Valid
    /// under any number of looks. Degenerate comparisons as in `welch` (zero width, p = 1, or p = 0).
    public static func confidenceSequence(treatment: Moments, control: Moments, alpha: Double = 0.05,
                                          plannedUsers: Double) -> Sequential {
        let w = welch(treatment: treatment, control: control, alpha: alpha)
        let d = w.absolute
        guard !w.isDegenerate else { return Sequential(low: d, high: d, halfWidth: 0, pValue: w.pValue) }
        let users = treatment.n + control.n
        let planned = plannedUsers > 0 ? plannedUsers : users
        let a = optimalMixture(alpha: alpha) * users / planned
        let half = w.standardError * sequenceMultiplier(alpha: alpha, mixture: a)
        let z = d / w.standardError
        // 1/M = √(1 + a)·exp(−a·z²/(2(1 + a))), computed in logs.
        let logInverse = 0.5 * log(1 + a) - a * z * z / (2 * (1 + a))
        let p = logInverse >= 0 ? 1 : exp(logInverse)
        return Sequential(low: d - half, high: d + half, halfWidth: half, pValue: p)
    }

    // MARK: sample ratio

    public struct SampleRatio: Sendable, Equatable, Codable {
        public var observed: [Double], expected: [Double], chiSquare: Double, degreesOfFreedom: Int, pValue: Double,
                   mismatch: Bool
    }

    /// Chi-square goodness of fit of the observed arm counts to the design's shares (as GrowthBook: mismatch at
    /// p < threshold). Shares are normalised; a count in an arm with share 0 is a mismatch (χ² reported as
    /// Double.greatestFiniteMagnitude, p = 0); no users or fewer than 2 arms give χ² = 0, p = 1.
    public static func sampleRatio(observed: [Double], expectedShares: [Double], threshold: Double = 0.001) -> SampleRatio {
        precondition(observed.count == expectedShares.count, "one design share per arm")
        let total = observed.reduce(0, +), shareSum = expectedShares.reduce(0, +)
        let k = observed.count
        guard total > 0, shareSum > 0, k >= 2 else {
            return SampleRatio(observed: observed, expected: expectedShares.map { shareSum > 0 ? total * $0 / shareSum : 0 },
                               chiSquare: 0, degreesOfFreedom: max(0, k - 1), pValue: 1, mismatch: false)
        }
        let expected = expectedShares.map { total * $0 / shareSum }
        var chi = 0.0
        for (o, e) in zip(observed, expected) {
            if e > 0 { chi += (o - e) * (o - e) / e } else if o != 0 { chi = .greatestFiniteMagnitude; break }
        }
        let p = chi == .greatestFiniteMagnitude ? 0 : chiSquareSurvival(chi, df: Double(k - 1))
        return SampleRatio(observed: observed, expected: expected, chiSquare: chi, degreesOfFreedom: k - 1,
                           pValue: p, mismatch: p < threshold)
    }

    // MARK: multiple comparisons

    public enum Correction: String, Sendable, Codable { case holm, benjaminiHochberg = "benjamini-hochberg", none }

    /// Adjusted p-values in the input order (Holm step-down; BH step-up), same as statsmodels multipletests.
    public static func adjust(_ pValues: [Double], method: Correction) -> [Double] {
        let m = pValues.count
        guard m > 0, method != .none else { return pValues }
        let order = pValues.indices.sorted { pValues[$0] < pValues[$1] || (pValues[$0] == pValues[$1] && $0 < $1) }
        var out = [Double](repeating: 0, count: m)
        switch method {
        case .holm:
            var running = 0.0
            for (rank, i) in order.enumerated() {
                running = max(running, Double(m - rank) * pValues[i])
                out[i] = min(1, running)
            }
        case .benjaminiHochberg:
            var running = Double.infinity
            for (rank, i) in order.enumerated().reversed() {
                running = min(running, Double(m) * pValues[i] / Double(rank + 1))
                out[i] = min(1, running)
            }
        case .none:
            return pValues
        }
        return out
    }

    // MARK: retention

    /// Retention: given a user's first exposure time t0 (unix seconds), the sorted times of their activity, and the
    /// end of the data, returns nil when the user is not eligible (t0 + days·86400 > dataEnd) else whether any
    /// activity is at or after t0 + days·86400 ("unbounded" / rolling retention: the user came back on day N or
    /// later).
    public static func retained(firstExposure t0: Int64, activity: [Int64], days: Int, dataEnd: Int64) -> Bool? {
        let (offset, o1) = Int64(max(0, days)).multipliedReportingOverflow(by: 86_400)
        let (due, o2) = t0.addingReportingOverflow(offset)
        guard !o1, !o2, due <= dataEnd else { return nil }
        // The first activity at or after `due` (binary search on the sorted times).
        var lo = 0, hi = activity.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if activity[mid] < due { lo = mid + 1 } else { hi = mid }
        }
        return lo < activity.count
    }

    // MARK: distributions

    /// P(T ≤ t) for Student's t with `df` degrees of freedom (df > 0; +∞ or above 1e12 is the normal).
    public static func studentTCDF(_ t: Double, df: Double) -> Double {
        if t.isNaN || !(df > 0) { return .nan }
        if t == 0 { return 0.5 }
        let tail = studentTSurvival(abs(t), df: df)
        return t > 0 ? 1 - tail : tail
    }

    /// P(T > t) for t ≥ 0, without cancellation in the tail.
    static func studentTSurvival(_ t: Double, df: Double) -> Double {
        if t.isInfinite { return 0 }
        if df > 1e12 { return 0.5 * erfc(t / 2.0.squareRoot()) }
        // P(|T| > t) = I_x(df/2, 1/2), x = df/(df + t²); 1 − x = t²/(df + t²) computed directly.
        let t2 = t * t
        return 0.5 * regularizedBeta(a: df / 2, b: 0.5, x: df / (df + t2), y: t2 / (df + t2))
    }

    /// The t quantile: the t with studentTCDF(t, df) = p, for p in (0, 1).
    public static func studentTQuantile(_ p: Double, df: Double) -> Double {
        guard p > 0, p < 1, df > 0 else { return p == 0 ? -.infinity : p == 1 ? .infinity : .nan }
        if p == 0.5 { return 0 }
        if df > 1e12 { return Experiment.normalQuantile(p) }
        // Solve for the upper tail q = P(T > t) with t > 0, then mirror.
        let q = p > 0.5 ? 1 - p : p
        var lo = 0.0, hi = max(1.0, -Experiment.normalQuantile(q))
        while studentTSurvival(hi, df: df) > q { lo = hi; hi *= 2; if hi > 1e300 { break } }
        var x = (lo + hi) / 2
        let logNorm = -0.5 * log(df) - logBeta(df / 2, 0.5)
        for _ in 0..<200 {
            let s = studentTSurvival(x, df: df)
            if s > q { lo = x } else { hi = x }
            let density = exp(logNorm - (df + 1) / 2 * log1p(x * x / df))
            var next = density > 0 ? x + (s - q) / density : (lo + hi) / 2
            if !(next > lo && next < hi) { next = (lo + hi) / 2 }
            if abs(next - x) <= 1e-15 * max(1, abs(x)) || hi - lo <= 1e-15 * max(1, hi) { x = next; break }
            x = next
        }
        return p > 0.5 ? x : -x
    }

    /// P(χ²_df > x): the regularized upper incomplete gamma Q(df/2, x/2).
    public static func chiSquareSurvival(_ x: Double, df: Double) -> Double {
        if x.isNaN || !(df > 0) { return .nan }
        if x <= 0 { return 1 }
        if x.isInfinite { return 0 }
        return regularizedGammaQ(a: df / 2, x: x / 2)
    }

    /// I_x(a, b), given both x and y = 1 − x (so neither is computed by a cancelling subtraction).
    static func regularizedBeta(a: Double, b: Double, x: Double, y: Double) -> Double {
        if x <= 0 { return 0 }
        if y <= 0 { return 1 }
        // log(x) and log(y) from whichever is the smaller (log1p of the other's complement keeps its digits).
        let logX = x > 0.5 ? log1p(-y) : log(x), logY = y > 0.5 ? log1p(-x) : log(y)
        let logFront = -logBeta(a, b) + a * logX + b * logY
        if x < (a + 1) / (a + b + 2) {
            return exp(logFront) * betaContinuedFraction(a: a, b: b, x: x) / a
        }
        return 1 - exp(logFront) * betaContinuedFraction(a: b, b: a, x: y) / b
    }

    /// log B(a, b) = lnΓ(a) + lnΓ(b) − lnΓ(a + b). When one argument is large, lnΓ(big + small) − lnΓ(big) comes
    /// from Stirling's series as (big − ½)·log1p(small/big) + small·ln(big + small) − small + μ(big + small) − μ(big),
    /// μ(z) = 1/(12z) − 1/(360z³) + 1/(1260z⁵) − 1/(1680z⁷), instead of as the difference of two huge lgammas (which
    /// would cost ~1e-7 relative at ν = 10⁸).
    static func logBeta(_ a: Double, _ b: Double) -> Double {
        let big = max(a, b), small = min(a, b)
        guard big > 50 else { return lgamma(a) + lgamma(b) - lgamma(a + b) }
        func mu(_ z: Double) -> Double {
            let z2 = z * z
            return (1.0 / 12 - (1.0 / 360 - (1.0 / 1260 - 1.0 / (1680 * z2)) / z2) / z2) / z
        }
        let ratio = (big - 0.5) * log1p(small / big) + small * log(big + small) - small + mu(big + small) - mu(big)
        return lgamma(small) - ratio
    }

    /// The continued fraction of I_x(a, b) (Numerical Recipes' betacf form), by the modified Lentz method.
    static func betaContinuedFraction(a: Double, b: Double, x: Double) -> Double {
        let tiny = 1e-300, eps = 1e-16
        let qab = a + b, qap = a + 1, qam = a - 1
        var c = 1.0, d = 1 - qab * x / qap
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...200_000 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((qam + m2) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; h *= d * c
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < eps { break }
        }
        return h
    }

    /// Q(a, x) = Γ(a, x)/Γ(a): the series of P below x = a + 1, the continued fraction of Q above.
    static func regularizedGammaQ(a: Double, x: Double) -> Double {
        let logFront = a * log(x) - x - lgamma(a)
        if x < a + 1 {
            var term = 1 / a, sum = term, ap = a
            for _ in 0..<100_000 {
                ap += 1; term *= x / ap; sum += term
                if abs(term) < abs(sum) * 1e-17 { break }
            }
            return max(0, 1 - sum * exp(logFront))
        }
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1...100_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b; if abs(d) < tiny { d = tiny }
            c = b + an / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return min(1, exp(logFront) * h)
    }
}
