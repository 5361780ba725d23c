import ChorusModel
import Foundation

/// Experiment design for campaign measurement (docs/campaigns.md "Measurement"): the power of a two-sided z-test of
/// two independent proportions with Cohen's h as the effect size, solved for power, effect or sample size; the
/// minimum detectable lift of a holdout design; and the keyed-hash arm assignment. The power function is the one of
/// statsmodels' `NormalIndPower` (`statsmodels.stats.power`), so the same inputs give the same numbers:
///
///     nobs = 1 / (1/nobs1 + 1/(nobs1·ratio)),  crit = Φ⁻¹(1 − α/2)
///     power = Φ̄(crit − d·√nobs) + Φ(−crit − d·√nobs)         (two-sided; "larger" keeps the first term only)
public enum Experiment {
    public enum Alternative: String, Sendable, Codable { case twoSided = "two-sided", larger, smaller }

    // MARK: normal distribution

    /// Φ(x), the standard normal CDF (through erfc, accurate in both tails).
    public static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// Φ⁻¹(p) for p in (0, 1): bisection to bracket, then Newton steps on Φ (|error| < 1e-14 in p's range of use).
    public static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "normalQuantile takes p in (0, 1)")
        var lo = -40.0, hi = 40.0
        for _ in 0..<80 {
            let mid = (lo + hi) / 2
            if normalCDF(mid) < p { lo = mid } else { hi = mid }
        }
        var x = (lo + hi) / 2
        for _ in 0..<3 {
            let density = exp(-x * x / 2) / (2 * Double.pi).squareRoot()
            guard density > 1e-300 else { break }
            x -= (normalCDF(x) - p) / density
        }
        return x
    }

    // MARK: NormalIndPower

    /// Power of the test for effect size `d` (Cohen's h for proportions), `nobs1` in the first group and
    /// `nobs1 × ratio` in the second.
    public static func power(effectSize d: Double, nobs1: Double, alpha: Double, ratio: Double = 1,
                             alternative: Alternative = .twoSided) -> Double {
        let nobs = ratio > 0 ? 1 / (1 / nobs1 + 1 / (nobs1 * ratio)) : nobs1
        let crit = normalQuantile(1 - (alternative == .twoSided ? alpha / 2 : alpha))
        let shift = d * nobs.squareRoot()
        var p = 0.0
        if alternative != .smaller { p += 1 - normalCDF(crit - shift) }
        if alternative != .larger { p += normalCDF(-crit - shift) }
        return p
    }

    /// The smallest |effect size| detected with this power (statsmodels `solve_power(effect_size=None, ...)`).
    public static func detectableEffect(nobs1: Double, alpha: Double, power target: Double, ratio: Double = 1,
                                        alternative: Alternative = .twoSided) -> Double {
        var lo = 0.0, hi = 1.0
        while power(effectSize: hi, nobs1: nobs1, alpha: alpha, ratio: ratio, alternative: alternative) < target && hi < 1e6 { hi *= 2 }
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if power(effectSize: mid, nobs1: nobs1, alpha: alpha, ratio: ratio, alternative: alternative) < target { lo = mid } else { hi = mid }
            if hi - lo < 1e-13 * max(1, hi) { break }
        }
        return (lo + hi) / 2
    }

    /// The first group's size that reaches this power (statsmodels `solve_power(nobs1=None, ...)`; not rounded).
    public static func requiredNobs1(effectSize d: Double, alpha: Double, power target: Double, ratio: Double = 1,
                                     alternative: Alternative = .twoSided) -> Double {
        precondition(d != 0, "a zero effect needs an infinite sample")
        var lo = 1e-6, hi = 2.0
        while power(effectSize: d, nobs1: hi, alpha: alpha, ratio: ratio, alternative: alternative) < target && hi < 1e15 { hi *= 2 }
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if power(effectSize: d, nobs1: mid, alpha: alpha, ratio: ratio, alternative: alternative) < target { lo = mid } else { hi = mid }
            if hi - lo < 1e-10 * hi { break }
        }
        return (lo + hi) / 2
    }

    /// Cohen's h between two proportions (statsmodels `proportion_effectsize(p1, p2)`): 2·asin√p1 − 2·asin√p2.
    public static func cohensH(_ p1: Double, _ p2: Double) -> Double { 2 * asin(p1.squareRoot()) - 2 * asin(p2.squareRoot()) }

    /// The proportion `h` above `p0` in Cohen's h (the inverse of `cohensH(p, p0)`), capped at 1.
    public static func proportion(above p0: Double, h: Double) -> Double {
        let a = asin(p0.squareRoot()) + h / 2
        return a >= Double.pi / 2 ? 1 : pow(sin(a), 2)
    }

    // MARK: holdout design

    public struct HoldoutDesign: Sendable, Equatable, Codable {
        public var size: Int
        public var holdoutShare: Double
        public var treated: Int
        public var holdout: Int
        public var baseRate: Double
        /// The smallest detectable difference of the treated rate over the base rate, absolute and relative.
        public var mdeAbsolute: Double
        public var mdeRelative: Double
        public var effectSize: Double
        /// Whether the design reaches the target lift (`targetLift`), or the segment is too small for it.
        public var reachesTarget: Bool
    }

    /// The holdout share for one segment: the smallest share of `shares` whose minimum detectable relative lift is at
    /// most `targetLift`; when none reaches it, the largest share (stated in `reachesTarget`). With `fixedShare`,
    /// that share. The treated group is `nobs1`, the holdout `nobs1 × ratio` (ratio = share / (1 − share)).
    public static func holdoutDesign(size: Int, baseRate: Double, alpha: Double, power: Double, targetLift: Double,
                                     fixedShare: Double? = nil,
                                     shares: [Double] = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]) -> HoldoutDesign {
        let p0 = min(max(baseRate, 1e-6), 1 - 1e-6)
        func design(_ share: Double) -> HoldoutDesign {
            let holdout = Int((Double(size) * share).rounded())
            let treated = size - holdout
            guard treated > 0, holdout > 0 else {
                return HoldoutDesign(size: size, holdoutShare: share, treated: treated, holdout: holdout, baseRate: baseRate,
                                     mdeAbsolute: .infinity, mdeRelative: .infinity, effectSize: .infinity, reachesTarget: false)
            }
            let h = detectableEffect(nobs1: Double(treated), alpha: alpha, power: power, ratio: Double(holdout) / Double(treated))
            let p1 = proportion(above: p0, h: h)
            let rel = (p1 - p0) / p0
            return HoldoutDesign(size: size, holdoutShare: share, treated: treated, holdout: holdout, baseRate: baseRate,
                                 mdeAbsolute: p1 - p0, mdeRelative: rel, effectSize: h, reachesTarget: rel <= targetLift)
        }
        if let fixedShare { return design(fixedShare) }
        for s in shares.sorted() {
            let d = design(s)
            if d.reachesTarget { return d }
        }
        return design(shares.max() ?? 0.5)
    }

    /// The arm of a user: holdout when the keyed hash of the id, as a number in [0, 1), is below the share.
    public static func inHoldout(_ userID: String, key: SipHash24, share: Double) -> Bool { key.unit(userID) < share }
}
