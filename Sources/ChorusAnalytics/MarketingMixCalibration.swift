import ChorusModel
import Foundation

/// Calibration of the response curves by experiments (issue 16 "The loop", docs/campaigns.md "Calibration by
/// experiments"). A holdout experiment measures the incremental KPI a channel's spend caused; the fit takes each such
/// measurement as a calibration point and penalises curves whose implied lift disagrees with it, as Robyn does with
/// its lift calibration (there MAPE.lift, here a squared error in standard errors).
///
/// **Implied lift** of a point on channel c: the response of c's curve to `spend` spread evenly over `periods`
/// periods, from zero campaign adstock, counted inside the experiment's window — the quantity the allocator values
/// (`Curve.campaignResponse`), so a calibrated curve is calibrated where the plan uses it:
///
///     r = spend / P,  a_p = r + α·a_{p−1} (a_{−1} = 0),  B = b / (1 − α)
///     implied = β · [ Σ_{p<⌊P⌋} (h(B + a_p) − h(B)) + (P − ⌊P⌋) · (h(B + a_⌊P⌋) − h(B)) ]
///
/// b is `baseSpendPerPeriod`, the channel's spend per period that both arms kept (nil = 0: the experiment's spend was
/// all the channel spent, so the lift is on top of zero), carried at its steady-state adstock B. A fractional P
/// counts the last, partial period's response by its fraction.
///
/// **Objective.** With σ̂² the residual variance of the uncalibrated fit (SSE / (periods − parameters)) and w
/// `FitOptions.calibrationWeight`:
///
///     minimise  SSE + w · σ̂² · Σ_i ((implied_i − lift_i) / se_i)²
///
/// that is σ̂² times (SSE/σ̂² + w·Σ z_i²): for w = 1 the Gaussian likelihood of the data and of the experiments taken
/// as measurements with their stated standard errors. The implied lift is linear in β, so for fixed (α, K, n) the
/// term enters the non-negative least squares exactly, as one pseudo-observation per point; the grid search and
/// the polish then work on the calibrated objective unchanged.
extension MarketingMix {
    /// One experiment's measured effect of a channel: `spend` on `channel` spread evenly over `periods` periods (of
    /// the fit's period length; fractional allowed) caused `lift` incremental KPI, with standard error
    /// `standardError`.
    public struct Calibration: Sendable, Codable, Equatable {
        /// The experiment, e.g. "spring-launch v2".
        public var id: String
        public var channel: String
        /// The campaign spend on the channel over the experiment.
        public var spend: Double
        /// Length of the experiment in the fit's periods (3 weeks = 3 for a weekly fit).
        public var periods: Double
        /// Measured incremental KPI over the experiment (e.g. incremental conversions).
        public var lift: Double
        public var standardError: Double
        /// The channel's spend per period that both arms kept during the experiment (business as usual on top of
        /// which the experiment's spend came). nil or 0: the lift is the response on top of zero spend.
        public var baseSpendPerPeriod: Double?

        public init(id: String, channel: String, spend: Double, periods: Double, lift: Double, standardError: Double,
                    baseSpendPerPeriod: Double? = nil) {
            self.id = id
            self.channel = channel
            self.spend = spend
            self.periods = periods
            self.lift = lift
            self.standardError = standardError
            self.baseSpendPerPeriod = baseSpendPerPeriod
        }
    }

    /// What the fit made of one calibration point.
    public struct CalibrationResult: Sendable, Codable, Equatable {
        /// The point as given.
        public var point: Calibration
        /// The point entered the objective. When false, `note` says why (unknown channel, invalid values, weight 0,
        /// or a residual variance of 0).
        public var used: Bool
        public var note: String
        /// The implied lift under the uncalibrated curve (nil when the channel is not in the fit).
        public var impliedBefore: Double?
        /// The implied lift under the fitted model's curve (equal to `impliedBefore` when nothing was used).
        public var implied: Double?
        /// The bootstrap interval of `implied` (nil without replicates).
        public var impliedInterval: Interval?

        public var id: String { point.id }
        public var channel: String { point.channel }
        /// The measured lift.
        public var lift: Double { point.lift }
        /// (implied − lift) / standard error (nil when either is unknown or the standard error is not positive).
        public var zScore: Double? {
            guard let implied, point.standardError > 0, point.standardError.isFinite else { return nil }
            return (implied - point.lift) / point.standardError
        }
    }

    /// A calibration point as the problem uses it: channel index, values and λ = w·σ̂²/se².
    struct CalPoint: Sendable {
        var channel: Int
        var spend: Double
        var periods: Double
        var base: Double
        var lift: Double
        var standardError: Double
        var lambda: Double
    }

    /// The implied lift per unit of β (see the extension's comment).
    static func unitLift(decay: Double, k: Double, n: Double, spend: Double, periods: Double,
                         baseSpendPerPeriod: Double) -> Double {
        guard periods > 0, spend > 0 else { return 0 }
        let r = spend / periods
        let steady = baseSpendPerPeriod > 0 ? baseSpendPerPeriod / (1 - decay) : 0
        let h0 = hill(steady, k, n)
        let whole = Int(periods.rounded(.down))
        let fraction = periods - Double(whole)
        var a = 0.0, sum = 0.0
        for _ in 0..<whole {
            a = r + decay * a
            sum += hill(steady + a, k, n) - h0
        }
        if fraction > 0 {
            a = r + decay * a
            sum += fraction * (hill(steady + a, k, n) - h0)
        }
        return sum
    }

    /// Validates the points against the fit's channels: the usable ones become `CalPoint`s, every one gets a
    /// result with its implied lift under the uncalibrated curves.
    static func prepareCalibration(_ given: [Calibration], names: [String], curves: [Curve], variance: Double,
                                   weight: Double) -> ([CalibrationResult], [CalPoint]) {
        var results: [CalibrationResult] = []
        var points: [CalPoint] = []
        for q in given {
            guard let c = names.firstIndex(of: q.channel) else {
                results.append(CalibrationResult(
                    point: q, used: false,
                    note: "ignored: no channel \(q.channel) in the fit (channels: \(names.joined(separator: ", ")))",
                    impliedBefore: nil, implied: nil, impliedInterval: nil))
                continue
            }
            let base = q.baseSpendPerPeriod ?? 0
            let valid = q.spend.isFinite && q.spend > 0 && q.periods.isFinite && q.periods > 0
            let before: Double? = valid ? curves[c].experimentLift(q) : nil
            var why: String? = nil
            if !(q.spend.isFinite && q.spend > 0) {
                why = "ignored: spend must be finite and > 0"
            } else if !(q.periods.isFinite && q.periods > 0) {
                why = "ignored: periods must be finite and > 0"
            } else if !q.lift.isFinite {
                why = "ignored: the lift is not finite"
            } else if !(q.standardError.isFinite && q.standardError > 0) {
                why = "ignored: the standard error must be finite and > 0"
            } else if !(base.isFinite && base >= 0) {
                why = "ignored: the base spend per period must be finite and ≥ 0"
            } else if !(weight.isFinite && weight > 0) {
                why = "not used: the calibration weight is 0"
            } else if !(variance.isFinite && variance > 0) {
                why = "not used: the uncalibrated fit has no residual variance to weigh it against"
            }
            if let why {
                results.append(CalibrationResult(point: q, used: false, note: why, impliedBefore: before,
                                                 implied: before, impliedInterval: nil))
                continue
            }
            let lambda = weight * variance / (q.standardError * q.standardError)
            points.append(CalPoint(channel: c, spend: q.spend, periods: q.periods, base: base, lift: q.lift,
                                   standardError: q.standardError, lambda: lambda))
            results.append(CalibrationResult(point: q, used: true, note: "used", impliedBefore: before,
                                             implied: nil, impliedInterval: nil))
        }
        return (results, points)
    }

    /// Fills in the implied lift under the final curves and its bootstrap interval.
    static func finishCalibration(_ results: [CalibrationResult], names: [String],
                                  curves: [Curve], replicates: [[Curve]], level: Double) -> [CalibrationResult] {
        results.map { r in
            var r = r
            guard let c = names.firstIndex(of: r.point.channel), r.impliedBefore != nil else { return r }
            r.implied = curves[c].experimentLift(r.point)
            if !replicates.isEmpty {
                r.impliedInterval = percentileInterval(replicates.map { $0[c].experimentLift(r.point) }, level: level)
            }
            if r.used, let z = r.zScore {
                r.note = String(format: "used: implied %.4g against measured %.4g (%+.2f SE)", r.implied!,
                                r.point.lift, z)
            }
            return r
        }
    }
}

extension MarketingMix.Curve {
    /// The incremental response to `spend` spread evenly over `periods` periods (fractional allowed) from zero
    /// campaign adstock, on top of a steady `baseSpendPerPeriod`, counted inside the window. For whole periods and no
    /// base spend it equals `campaignResponse(total:periods:)`.
    public func experimentLift(spend: Double, periods: Double, baseSpendPerPeriod: Double = 0) -> Double {
        coefficient * MarketingMix.unitLift(decay: decay, k: halfSaturation, n: shape, spend: spend, periods: periods,
                                            baseSpendPerPeriod: max(baseSpendPerPeriod, 0))
    }

    /// The implied lift of a calibration point under this curve.
    public func experimentLift(_ point: MarketingMix.Calibration) -> Double {
        guard point.spend.isFinite, point.periods.isFinite else { return .nan }
        return experimentLift(spend: point.spend, periods: point.periods,
                              baseSpendPerPeriod: point.baseSpendPerPeriod ?? 0)
    }
}
