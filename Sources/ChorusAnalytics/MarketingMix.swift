import ChorusModel
import Foundation

/// Response curves for campaign budget planning (issue 15, docs/campaigns.md "Response curves and the budget split"):
/// a marketing-mix model fitted to history, a budget allocator over its curves, and an even split for when there is
/// no history. Value types in, value types out, no I/O, deterministic (the bootstrap is seeded).
///
/// **Model.** For channel c with spend x_c[t] per period:
///
///     adstock    A_c[t] = x_c[t] + α_c · A_c[t−1],  A_c[−1] = 0                 (geometric carry-over, α_c ∈ [0, 1))
///     saturation h_c(a) = aⁿ / (aⁿ + Kⁿ)  with K = K_c > 0, n = n_c > 0          (Hill; n > 1 is S-shaped)
///     KPI        y[t]  = b₀ + b₁·t + Σ_j γ_j·z_j[t] + Σ_c β_c·h_c(A_c[t]) + ε[t],  β_c ≥ 0
///
/// b₀ is the intercept, b₁ an optional linear trend (t = 0, 1, … over the fit period), z_j optional control columns.
/// One total KPI with several channels is a joint fit; a channel's own outcome series is the same fit with one channel.
///
/// **Fit** (`fit`). For fixed (α, K, n) of every channel the model is linear in (b, γ, β), solved by non-negative least
/// squares (Lawson–Hanson on the Gram matrix; β ≥ 0, base terms free). The nonlinear parameters are found by
/// coordinate search: channel by channel, every (α, K, n) of a grid is tried with the other channels fixed — α in
/// {0, 0.1, …, 0.9}, K at quantiles {5, 15, 30, 50, 70, 85, 100}% of the channel's positive adstock and at 1.5× and 3×
/// its maximum, n in {0.5, 0.8, 1, 1.5, 2, 3} — and sweeps repeat until nothing changes (at most 5). A
/// Nelder–Mead polish over all channels' (α, K, n) jointly follows (α ≤ 0.95, K from 2% to 3× the largest adstock,
/// 0.25 ≤ n ≤ `maxShape` = 3; it is kept only if it lowers the SSE). Intervals come from a
/// seeded moving-block residual bootstrap: each replicate refits (one sweep from the fitted point, then the polish)
/// on fitted values plus resampled residual blocks; intervals are the replicates' 10th–90th percentiles (80%).
///
/// **Calibration** (`FitOptions.calibration`, MarketingMixCalibration.swift). Experiments' measured lifts enter the
/// objective as SSE + w·σ̂²·Σ_i ((implied_i − lift_i)/se_i)²; without calibration points the fit is unchanged.
///
/// **Allocation** (`allocate`). A campaign of P periods spends each channel's total S_c flat, S_c / P per period. Its
/// carry-over starts at zero adstock (the campaign's own effect, not history's) and the response is counted inside
/// the window only (the tail after the window is not counted):
///
///     R_c(S) = Σ_{p<P} β_c · h_c(a_p),  a_p = (S/P) · (1 − α_c^{p+1}) / (1 − α_c)
///
/// The allocator maximises Σ_c R_c(S_c) + θ·(unspent), θ the minimum marginal return worth spending for (default 0),
/// under min_c ≤ S_c ≤ max_c and Σ S_c ≤ budget. S-shaped curves are handled by (1) greedy allocation in steps of
/// 1/`steps` of the free budget where each move takes the jump (1, 2, 4, … steps, or up to the cap) with the best
/// average return, so a convex start is crossed; (2) pairwise exchange moves between channels and "unspent", with
/// the move size halved down to a quarter step; (3) the same exchange search from the even split and from each
/// channel filled first; the best end point wins. The expected KPI is the media response over the window (the
/// baseline is reported apart), with the 80% interval of the bootstrap replicates' curves at the same spend.
public enum MarketingMix {
    /// A named series, one value per period (spend, a control, or a KPI).
    public struct Series: Sendable, Codable, Equatable {
        public var name: String
        public var values: [Double]
        public init(_ name: String, _ values: [Double]) {
            self.name = name
            self.values = values
        }
    }

    /// A closed interval with its level (0.8 = the 10th to the 90th percentile of the bootstrap replicates).
    public struct Interval: Sendable, Codable, Equatable {
        public var lower: Double
        public var upper: Double
        public var level: Double
        public init(lower: Double, upper: Double, level: Double) {
            self.lower = lower
            self.upper = upper
            self.level = level
        }
    }

    /// One channel's response curve: geometric adstock with decay α, Hill saturation (K, n), coefficient β.
    public struct Curve: Sendable, Codable, Equatable {
        public var name: String
        /// α, the share of last period's adstock carried into this one.
        public var decay: Double
        /// K, the adstock at which the response is half its ceiling β.
        public var halfSaturation: Double
        /// n, the Hill shape: ≤ 1 concave, > 1 S-shaped.
        public var shape: Double
        /// β, the response ceiling per period (KPI units).
        public var coefficient: Double

        public init(name: String, decay: Double, halfSaturation: Double, shape: Double, coefficient: Double) {
            self.name = name
            self.decay = decay
            self.halfSaturation = halfSaturation
            self.shape = shape
            self.coefficient = coefficient
        }

        /// h(a) = aⁿ / (aⁿ + Kⁿ), in [0, 1).
        public func saturation(_ adstock: Double) -> Double {
            MarketingMix.hill(adstock, halfSaturation, shape)
        }

        /// A[t] = x[t] + α·A[t−1], from A[−1] = 0.
        public func adstock(_ spend: [Double]) -> [Double] { MarketingMix.adstock(spend, decay) }

        /// β·h(A[t]) for each period of a spend path.
        public func contribution(_ spend: [Double]) -> [Double] {
            adstock(spend).map { coefficient * saturation($0) }
        }

        /// R(S): the response inside a window of `periods` periods to a flat spend of `total / periods` per period,
        /// starting from zero adstock.
        public func campaignResponse(total: Double, periods: Int) -> Double {
            guard periods > 0, total > 0 else { return 0 }
            let perPeriod = total / Double(periods)
            var a = 0.0, sum = 0.0
            for _ in 0..<periods {
                a = perPeriod + decay * a
                sum += saturation(a)
            }
            return coefficient * sum
        }

        /// dR/dS at S = `total` (analytic): β · Σ_p h'(a_p) · (1 − α^{p+1}) / ((1 − α)·P). At zero spend a concave
        /// curve (n < 1) has an infinite slope; it is taken at a = 10⁻⁹·K instead, so the value stays finite.
        public func campaignMarginal(total: Double, periods: Int) -> Double {
            guard periods > 0 else { return 0 }
            let perPeriod = max(total, 0) / Double(periods)
            var g = 0.0, a = 0.0, sum = 0.0
            let k = halfSaturation, n = shape
            for _ in 0..<periods {
                g = 1 + decay * g  // da/ds for one period's spend s
                a = perPeriod + decay * a
                let at = max(a, 1e-9 * k)
                let an = pow(at / k, n)
                sum += n * an / (at * (1 + an) * (1 + an)) * g
            }
            return coefficient * sum / Double(periods)
        }
    }

    /// A fitted model: curves, base, fit quality, per-channel contribution and ROAS over the fit period, and the
    /// bootstrap replicates' curves behind the intervals.
    public struct Model: Sendable, Codable {
        public var channels: [Curve]
        public var intercept: Double
        /// b₁ per period (0 when the trend was not fitted).
        public var trend: Double
        public var controlNames: [String]
        public var controlCoefficients: [Double]
        /// Periods in the fit.
        public var periods: Int
        /// 1 − SSE/SST (0 for a model built from curves).
        public var rSquared: Double
        /// √(SSE / (periods − parameters)), parameters counting the linear ones and 3 per channel (0 for a model built
        /// from curves).
        public var residualSD: Double
        /// Σ_t β_c·h_c(A_c[t]) over the fit period, per channel.
        public var contribution: [Double]
        /// Σ_t x_c[t], per channel.
        public var spend: [Double]
        /// contribution / spend, per channel (0 when the channel spent nothing).
        public var roas: [Double]
        public var contributionInterval: [Interval]
        public var roasInterval: [Interval]
        /// The largest spend in one period of history, per channel (extrapolation is judged against it;
        /// `.greatestFiniteMagnitude` when unknown, so the model stays JSON-encodable).
        public var historicMaxPerPeriod: [Double]
        /// The base level per period at the end of the fit: b₀ + b₁·(periods − 1) + Σ_j γ_j·mean(z_j).
        public var baselinePerPeriod: Double
        /// Curves refitted on each bootstrap replicate (same channel order); empty when the bootstrap was off.
        public var replicates: [[Curve]]
        public var intervalLevel: Double
        /// One result per experiment calibration point of `FitOptions.calibration`, in its order: the implied lift
        /// before and after calibration, the measured lift, and whether the point was used (and if not, why). Empty
        /// without calibration points.
        public var calibration: [CalibrationResult]

        /// A model from known curves (planning from curves fitted elsewhere, or the true curves of a test).
        public init(channels: [Curve], historicMaxPerPeriod: [Double]? = nil) {
            self.channels = channels
            intercept = 0
            trend = 0
            controlNames = []
            controlCoefficients = []
            periods = 0
            rSquared = 0
            residualSD = 0
            contribution = channels.map { _ in 0 }
            spend = channels.map { _ in 0 }
            roas = channels.map { _ in 0 }
            contributionInterval = []
            roasInterval = []
            self.historicMaxPerPeriod = historicMaxPerPeriod ?? channels.map { _ in .greatestFiniteMagnitude }
            baselinePerPeriod = 0
            replicates = []
            intervalLevel = 0.8
            calibration = []
        }

        /// Predicted KPI per period for spend and controls given from period 0 of the fit (so the trend and the
        /// carry-over continue); longer series than the fit extrapolate the trend.
        public func predict(spend: [Series], controls: [Series] = []) throws -> [Double] {
            var columns: [[Double]] = []
            for c in channels {
                guard let s = spend.first(where: { $0.name == c.name }) else {
                    throw ChorusError(.invalidInput, "no spend series for channel \(c.name)")
                }
                columns.append(s.values)
            }
            var ctrl: [[Double]] = []
            for name in controlNames {
                guard let s = controls.first(where: { $0.name == name }) else {
                    throw ChorusError(.invalidInput, "no series for control \(name)")
                }
                ctrl.append(s.values)
            }
            let n = columns.first?.count ?? ctrl.first?.count ?? 0
            guard columns.allSatisfy({ $0.count == n }), ctrl.allSatisfy({ $0.count == n }) else {
                throw ChorusError(.invalidInput, "spend and control series differ in length")
            }
            var y = (0..<n).map { intercept + trend * Double($0) }
            for (j, z) in ctrl.enumerated() { for t in 0..<n { y[t] += controlCoefficients[j] * z[t] } }
            for (c, curve) in channels.enumerated() {
                let contrib = curve.contribution(columns[c])
                for t in 0..<n { y[t] += contrib[t] }
            }
            return y
        }
    }

    /// Fit settings. The defaults fit 100–200 weekly periods with 2–5 channels in well under a second, plus the
    /// bootstrap (about 40 ms per replicate for 3 channels).
    public struct FitOptions: Sendable {
        public var includeTrend: Bool = true
        /// Fit an intercept b₀. Off for outcomes attributed to the channel's own spend (no spend, no outcome), as in
        /// the spend records a campaign plan fits per channel.
        public var includeIntercept: Bool = true
        /// Nelder–Mead polish after the grid search.
        public var polish: Bool = true
        /// Bootstrap replicates for the intervals (0: no intervals).
        public var bootstrapReplicates: Int = 30
        /// Periods per resampled residual block (0: round(periods^(1/3))).
        public var blockLength: Int = 0
        public var seed: UInt64 = 15
        public var decayGrid: [Double] = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
        public var shapeGrid: [Double] = [0.5, 0.8, 1, 1.5, 2, 3]
        /// The largest Hill shape n the polish may reach (at 8, near-step curves overfit the case study's weekly
        /// sales: docs/campaigns.md).
        public var maxShape: Double = 3
        /// Quantiles of the positive adstock for K; values above 1 are multiples of its maximum.
        public var halfSaturationQuantiles: [Double] = [0.05, 0.15, 0.3, 0.5, 0.7, 0.85, 1, 1.5, 3]
        /// Experiments that calibrate the curves (docs/campaigns.md "Calibration by experiments"). Empty: the plain
        /// fit, unchanged.
        public var calibration: [Calibration] = []
        /// w in the calibrated objective SSE + w·σ̂²·Σ_i ((implied_i − lift_i)/se_i)², σ̂² the residual variance of
        /// the uncalibrated fit. 1 weighs each experiment as one measurement with its stated standard error; 0
        /// reports the implied lifts without using them.
        public var calibrationWeight: Double = 1
        public init() {}
    }

    /// Per-channel limits on the campaign total (min ≥ 0; max nil = no limit but the budget).
    public struct SpendLimit: Sendable, Codable, Equatable {
        public var minimum: Double
        public var maximum: Double?
        public init(minimum: Double = 0, maximum: Double? = nil) {
            self.minimum = minimum
            self.maximum = maximum
        }
    }

    /// Which limit holds a channel at the allocation.
    public enum Binding: String, Sendable, Codable { case none, minimum, maximum }

    /// Why some budget was left unspent.
    public enum UnspentReason: String, Sendable, Codable {
        /// The whole budget was allocated.
        case none
        /// Every channel is at its maximum.
        case allChannelsAtMaximum
        /// Every channel below its maximum returns no more than the minimum marginal return per extra unit.
        case marginalReturnBelowThreshold
    }

    public struct ChannelPlan: Sendable, Codable, Equatable {
        public var name: String
        /// Total over the campaign.
        public var spend: Double
        public var spendPerPeriod: Double
        /// R_c(spend) (nil without a model).
        public var expectedKPI: Double?
        /// dR_c/dS at the allocation (nil without a model).
        public var marginalReturn: Double?
        public var binding: Binding
        /// The spend per period is above the largest spend per period in the history (the curve is extrapolated).
        public var extrapolated: Bool
        public var historicMaxPerPeriod: Double?
    }

    public struct Allocation: Sendable, Codable, Equatable {
        public var channels: [ChannelPlan]
        public var budget: Double
        public var periods: Int
        public var spent: Double
        public var unspent: Double
        public var unspentReason: UnspentReason
        /// The budget constraint holds with equality.
        public var budgetBinds: Bool
        /// Σ_c R_c over the window: the media response, without the baseline (nil without a model).
        public var expectedKPI: Double?
        /// The bootstrap interval of `expectedKPI` (nil without replicates).
        public var expectedKPIInterval: Interval?
        /// The model's baseline over the window (baselinePerPeriod × periods; nil without a model).
        public var baselineKPI: Double?
        /// "response-curves" or "even-split".
        public var method: String
    }

    // MARK: transforms

    static func hill(_ a: Double, _ k: Double, _ n: Double) -> Double {
        guard a > 0 else { return 0 }
        return 1 / (1 + pow(k / a, n))
    }

    static func adstock(_ x: [Double], _ alpha: Double) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        var a = 0.0
        for t in 0..<x.count {
            a = x[t] + alpha * a
            out[t] = a
        }
        return out
    }

    // MARK: fit

    /// Fits the model to `kpi` with the given channels' spend and optional controls (all of the same length).
    /// Throws `invalidInput` on mismatched lengths, negative or non-finite values, a channel that never spends, or
    /// too few periods for the parameters.
    public static func fit(kpi: [Double], channels: [Series], controls: [Series] = [],
                           options: FitOptions = FitOptions()) throws -> Model {
        let n = kpi.count
        guard !channels.isEmpty else { throw ChorusError(.invalidInput, "no channels to fit") }
        guard Set(channels.map(\.name)).count == channels.count else {
            throw ChorusError(.invalidInput, "channel names repeat")
        }
        for s in channels + controls where s.values.count != n {
            throw ChorusError(.invalidInput, "series \(s.name) has \(s.values.count) periods, the KPI \(n)")
        }
        guard kpi.allSatisfy(\.isFinite) else { throw ChorusError(.invalidInput, "the KPI has non-finite values") }
        for s in channels {
            guard s.values.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw ChorusError(.invalidInput, "channel \(s.name) has negative or non-finite spend")
            }
            guard s.values.contains(where: { $0 > 0 }) else {
                throw ChorusError(.invalidInput, "channel \(s.name) never spends: its curve cannot be fitted",
                                  hint: "leave it out, or plan it with evenSplit")
            }
        }
        for s in controls where !s.values.allSatisfy(\.isFinite) {
            throw ChorusError(.invalidInput, "control \(s.name) has non-finite values")
        }
        let linear = (options.includeIntercept ? 1 : 0) + (options.includeTrend ? 1 : 0) + controls.count + channels.count
        guard n >= linear + 3 * channels.count + 3 else {
            throw ChorusError(.invalidInput, "\(n) periods are too few for \(linear + 3 * channels.count) parameters")
        }
        var base: [[Double]] = options.includeIntercept ? [[Double](repeating: 1, count: n)] : []
        if options.includeTrend { base.append((0..<n).map(Double.init)) }
        for c in controls { base.append(c.values) }
        let problem = try Problem(y: kpi, base: base, spend: channels.map(\.values), options: options)

        var params = problem.gridSearch(start: nil, sweeps: 5)
        if options.polish { params = problem.polish(params, evaluations: 120 * 3 * channels.count) }
        var solution = problem.solve(params)

        // calibration by experiments: refit with the points as pseudo-observations
        let names = channels.map(\.name)
        var fitProblem = problem
        var calibration: [CalibrationResult] = []
        var points: [CalPoint] = []
        if !options.calibration.isEmpty {
            let dof0 = max(1, n - linear - 3 * channels.count)
            let sse0 = zip(kpi, solution.fitted).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            let variance = sse0 / Double(dof0)
            let before = makeCurves(names, params, solution.beta)
            (calibration, points) = prepareCalibration(options.calibration, names: names, curves: before,
                                                       variance: variance, weight: options.calibrationWeight)
            if !points.isEmpty {
                let cp = problem.with(calibration: points)
                var best: (params: [ChannelParams], value: Double)? = nil
                for start in [params, nil] {
                    var p = cp.gridSearch(start: start, sweeps: 5)
                    if options.polish { p = cp.polish(p, evaluations: 120 * 3 * channels.count) }
                    let v = cp.sse(p)
                    if best == nil || v < best!.value { best = (p, v) }
                }
                params = best!.params
                solution = cp.solve(params)
                fitProblem = cp
            }
        }
        let fitted = solution.fitted

        // bootstrap
        var replicates: [[Curve]] = []
        if options.bootstrapReplicates > 0 {
            let residuals = zip(kpi, fitted).map { $0 - $1 }
            let mean = residuals.reduce(0, +) / Double(n)
            let centred = residuals.map { $0 - mean }
            let block = options.blockLength > 0 ? options.blockLength : max(1, Int((pow(Double(n), 1.0 / 3)).rounded()))
            var rng = SplitMix64(seed: options.seed)
            // The measured lifts are redrawn per replicate at their standard errors, from a stream of their own
            // (so the residual blocks are those of the uncalibrated fit).
            var liftRNG = SplitMix64(seed: options.seed ^ 0x6361_6C69_6272_6174)
            for _ in 0..<options.bootstrapReplicates {
                var ystar = fitted
                var t = 0
                while t < n {
                    let start = rng.below(max(1, n - block + 1))
                    for k in 0..<block where t + k < n { ystar[t + k] += centred[start + k] }
                    t += block
                }
                let rp: Problem
                if points.isEmpty {
                    rp = problem.with(y: ystar)
                } else {
                    let redrawn = points.map { q -> CalPoint in
                        var r = q
                        r.lift = q.lift + q.standardError * liftRNG.gaussian()
                        return r
                    }
                    rp = fitProblem.with(calibration: redrawn, y: ystar)
                }
                var p = rp.gridSearch(start: params, sweeps: 1)
                if options.polish { p = rp.polish(p, evaluations: 60 * 3 * channels.count) }
                let s = rp.solve(p)
                replicates.append(makeCurves(channels.map(\.name), p, s.beta))
            }
        }

        let curves = makeCurves(channels.map(\.name), params, solution.beta)
        let spendTotals = channels.map { $0.values.reduce(0, +) }
        let contribution = curves.enumerated().map { c, curve in curve.contribution(channels[c].values).reduce(0, +) }
        let roas = zip(contribution, spendTotals).map { $1 > 0 ? $0 / $1 : 0 }
        let level = 0.8
        var contributionInterval: [Interval] = []
        var roasInterval: [Interval] = []
        if !replicates.isEmpty {
            for c in channels.indices {
                let values = replicates.map { $0[c].contribution(channels[c].values).reduce(0, +) }
                let i = percentileInterval(values, level: level)
                contributionInterval.append(i)
                let s = spendTotals[c]
                roasInterval.append(Interval(lower: s > 0 ? i.lower / s : 0, upper: s > 0 ? i.upper / s : 0, level: level))
            }
        }
        let yMean = kpi.reduce(0, +) / Double(n)
        let sst = kpi.reduce(0) { $0 + ($1 - yMean) * ($1 - yMean) }
        let sse = zip(kpi, fitted).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let dof = max(1, n - linear - 3 * channels.count)
        var k = 0
        let intercept = options.includeIntercept ? solution.base[k] : 0
        if options.includeIntercept { k += 1 }
        let trend = options.includeTrend ? solution.base[k] : 0
        if options.includeTrend { k += 1 }
        let gammas = Array(solution.base[k...])
        var baseline = intercept + trend * Double(n - 1)
        for (j, z) in controls.enumerated() { baseline += gammas[j] * z.values.reduce(0, +) / Double(n) }

        var model = Model(channels: curves, historicMaxPerPeriod: channels.map { $0.values.max() ?? 0 })
        model.intercept = intercept
        model.trend = trend
        model.controlNames = controls.map(\.name)
        model.controlCoefficients = gammas
        model.periods = n
        model.rSquared = sst > 0 ? 1 - sse / sst : 0
        model.residualSD = (sse / Double(dof)).squareRoot()
        model.contribution = contribution
        model.spend = spendTotals
        model.roas = roas
        model.contributionInterval = contributionInterval
        model.roasInterval = roasInterval
        model.baselinePerPeriod = baseline
        model.replicates = replicates
        model.intervalLevel = level
        model.calibration = finishCalibration(calibration, names: names, curves: curves,
                                              replicates: replicates, level: level)
        return model
    }

    static func makeCurves(_ names: [String], _ p: [ChannelParams], _ beta: [Double]) -> [Curve] {
        names.indices.map {
            Curve(name: names[$0], decay: p[$0].alpha, halfSaturation: p[$0].k, shape: p[$0].n, coefficient: beta[$0])
        }
    }

    static func percentileInterval(_ values: [Double], level: Double) -> Interval {
        let s = values.sorted()
        func q(_ p: Double) -> Double {
            guard s.count > 1 else { return s.first ?? .nan }
            let x = p * Double(s.count - 1)
            let i = Int(x.rounded(.down)), f = x - Double(i)
            return i + 1 < s.count ? s[i] * (1 - f) + s[i + 1] * f : s[i]
        }
        return Interval(lower: q((1 - level) / 2), upper: q((1 + level) / 2), level: level)
    }

    struct ChannelParams: Sendable, Equatable {
        var alpha: Double
        var k: Double
        var n: Double
    }

    /// The least-squares problem with the base columns fixed and the channel columns depending on (α, K, n).
    struct Problem {
        let y: [Double]
        let yy: Double
        let base: [[Double]]  // scaled base columns
        let baseScale: [Double]
        let spend: [[Double]]
        let options: FitOptions
        let kGrid: [[[Double]]]  // [channel][alpha index] -> K candidates
        let adstocks: [[[Double]]]  // [channel][alpha index] -> adstock
        let baseGram: [[Double]]
        let baseY: [Double]
        /// Experiment calibration points as pseudo-observations (empty: the plain least-squares fit).
        let calib: [CalPoint]

        init(y: [Double], base rawBase: [[Double]], spend: [[Double]], options: FitOptions) throws {
            var scales: [Double] = []
            var base: [[Double]] = []
            for (j, col) in rawBase.enumerated() {
                let rms = (col.reduce(0) { $0 + $1 * $1 } / Double(col.count)).squareRoot()
                guard rms > 0 else { throw ChorusError(.invalidInput, "base column \(j) is all zero") }
                scales.append(rms)
                base.append(col.map { $0 / rms })
            }
            var kGrid: [[[Double]]] = []
            var adstocks: [[[Double]]] = []
            for x in spend {
                var ks: [[Double]] = []
                var ads: [[Double]] = []
                for a in options.decayGrid {
                    let ad = MarketingMix.adstock(x, a)
                    let positive = ad.filter { $0 > 0 }.sorted()
                    let top = positive.last ?? 1
                    ks.append(options.halfSaturationQuantiles.map { q in
                        if q > 1 { return top * q }
                        let pos = q * Double(positive.count - 1)
                        let i = Int(pos.rounded(.down)), f = pos - Double(i)
                        return i + 1 < positive.count ? positive[i] * (1 - f) + positive[i + 1] * f : positive[i]
                    })
                    ads.append(ad)
                }
                kGrid.append(ks)
                adstocks.append(ads)
            }
            self.init(y: y, base: base, baseScale: scales, spend: spend, options: options, kGrid: kGrid,
                      adstocks: adstocks)
        }

        init(y: [Double], base: [[Double]], baseScale: [Double], spend: [[Double]], options: FitOptions,
             kGrid: [[[Double]]], adstocks: [[[Double]]], calib: [CalPoint] = []) {
            self.y = y
            var yy = dot(y, y)
            if !calib.isEmpty { for q in calib { yy += q.lambda * q.lift * q.lift } }
            self.yy = yy
            self.calib = calib
            self.base = base
            self.baseScale = baseScale
            self.spend = spend
            self.options = options
            self.kGrid = kGrid
            self.adstocks = adstocks
            baseGram = base.map { a in base.map { b in dot(a, b) } }
            baseY = base.map { dot($0, y) }
        }

        func with(y: [Double]) -> Problem {
            Problem(y: y, base: base, baseScale: baseScale, spend: spend, options: options, kGrid: kGrid,
                    adstocks: adstocks, calib: calib)
        }

        /// The same problem with the calibration points replaced (the objective gains Σ λ·(implied − lift)²).
        func with(calibration points: [CalPoint], y newY: [Double]? = nil) -> Problem {
            Problem(y: newY ?? y, base: base, baseScale: baseScale, spend: spend, options: options, kGrid: kGrid,
                    adstocks: adstocks, calib: points)
        }

        /// The calibration rows' additions to channel c's diagonal Gram entry and right-hand side, for the column
        /// scaled by `rms`: implied lift = β·u = x·(u/rms) with x the scaled coefficient, so each point adds
        /// λ·(u/rms)² and λ·(u/rms)·lift.
        func calibrationTerm(_ c: Int, _ p: ChannelParams, rms: Double) -> (Double, Double) {
            var gg = 0.0, gb = 0.0
            guard rms > 0 else { return (0, 0) }
            for q in calib where q.channel == c {
                let u = MarketingMix.unitLift(decay: p.alpha, k: p.k, n: p.n, spend: q.spend, periods: q.periods,
                                              baseSpendPerPeriod: q.base) / rms
                gg += q.lambda * u * u
                gb += q.lambda * u * q.lift
            }
            return (gg, gb)
        }

        /// The channel column h(A) and its rms scale (0 when the column is all zero).
        func column(_ c: Int, _ p: ChannelParams, adstock: [Double]? = nil) -> ([Double], Double) {
            let ad = adstock ?? MarketingMix.adstock(spend[c], p.alpha)
            var col = ad.map { MarketingMix.hill($0, p.k, p.n) }
            let rms = (col.reduce(0) { $0 + $1 * $1 } / Double(col.count)).squareRoot()
            if rms > 0 { for t in col.indices { col[t] /= rms } }
            return (col, rms)
        }

        struct Solution {
            var base: [Double]
            var beta: [Double]
            var fitted: [Double]
            var sse: Double
        }

        /// SSE and coefficients (scaled) from the Gram system.
        func solveGram(_ g: [[Double]], _ b: [Double], constrainedFrom: Int) -> ([Double], Double) {
            let x = nnls(g, b, constrainedFrom: constrainedFrom)
            var sse = yy
            for i in x.indices where x[i] != 0 {
                sse -= 2 * x[i] * b[i]
                for j in x.indices where x[j] != 0 { sse += x[i] * g[i][j] * x[j] }
            }
            return (x, max(sse, 0))
        }

        func gram(columns cols: [[Double]], terms: [(Double, Double)] = []) -> ([[Double]], [Double]) {
            let nb = base.count
            let p = nb + cols.count
            var g = [[Double]](repeating: [Double](repeating: 0, count: p), count: p)
            var b = [Double](repeating: 0, count: p)
            for i in 0..<nb {
                b[i] = baseY[i]
                for j in 0..<nb { g[i][j] = baseGram[i][j] }
            }
            for (ci, col) in cols.enumerated() {
                let i = nb + ci
                b[i] = dot(col, y)
                for j in 0..<nb {
                    let v = dot(col, base[j])
                    g[i][j] = v
                    g[j][i] = v
                }
                for (cj, other) in cols.enumerated() where cj <= ci {
                    let v = dot(col, other)
                    g[i][nb + cj] = v
                    g[nb + cj][i] = v
                }
                if ci < terms.count {
                    g[i][i] += terms[ci].0
                    b[i] += terms[ci].1
                }
            }
            return (g, b)
        }

        /// Calibration terms per channel (empty without calibration points, so the plain fit is unchanged).
        func terms(_ params: [ChannelParams], _ built: [([Double], Double)]) -> [(Double, Double)] {
            calib.isEmpty ? [] : params.indices.map { calibrationTerm($0, params[$0], rms: built[$0].1) }
        }

        func sse(_ params: [ChannelParams]) -> Double {
            let built = params.indices.map { column($0, params[$0]) }
            let (g, b) = gram(columns: built.map(\.0), terms: terms(params, built))
            return solveGram(g, b, constrainedFrom: base.count).1
        }

        func solve(_ params: [ChannelParams]) -> Solution {
            let built = params.indices.map { column($0, params[$0]) }
            let (g, b) = gram(columns: built.map(\.0), terms: terms(params, built))
            let (x, sse) = solveGram(g, b, constrainedFrom: base.count)
            let nb = base.count
            let baseCoef = (0..<nb).map { x[$0] / baseScale[$0] }
            let beta = built.indices.map { built[$0].1 > 0 ? x[nb + $0] / built[$0].1 : 0 }
            var fitted = [Double](repeating: 0, count: y.count)
            for j in 0..<nb { for t in fitted.indices { fitted[t] += x[j] * base[j][t] } }
            for (c, col) in built.enumerated() { for t in fitted.indices { fitted[t] += x[nb + c] * col.0[t] } }
            return Solution(base: baseCoef, beta: beta, fitted: fitted, sse: sse)
        }

        /// Coordinate search over the grid; `start` nil starts every channel at α = 0.3, K = median, n = 1.
        func gridSearch(start: [ChannelParams]?, sweeps: Int) -> [ChannelParams] {
            let nc = spend.count
            let nb = base.count
            let ag = options.decayGrid
            var params = start ?? (0..<nc).map { c in
                let ai = ag.indices.min(by: { abs(ag[$0] - 0.3) < abs(ag[$1] - 0.3) }) ?? 0
                let ks = kGrid[c][ai]
                return ChannelParams(alpha: ag[ai], k: ks[ks.count / 2], n: 1)
            }
            let built = (0..<nc).map { column($0, params[$0]) }
            var cols = built.map(\.0)
            var (g, b) = gram(columns: cols, terms: terms(params, built))
            var best = solveGram(g, b, constrainedFrom: nb).1
            for _ in 0..<max(1, sweeps) {
                var changed = false
                for c in 0..<nc {
                    let i = nb + c
                    for (ai, a) in ag.enumerated() {
                        for k in kGrid[c][ai] {
                            for shape in options.shapeGrid where shape <= options.maxShape {
                                let p = ChannelParams(alpha: a, k: k, n: shape)
                                if p == params[c] { continue }
                                let (col, rms) = column(c, p, adstock: adstocks[c][ai])
                                guard rms > 0 else { continue }
                                var g2 = g, b2 = b
                                b2[i] = dot(col, y)
                                for j in 0..<nb { g2[i][j] = dot(col, base[j]); g2[j][i] = g2[i][j] }
                                for cj in 0..<nc where cj != c {
                                    let v = dot(col, cols[cj])
                                    g2[i][nb + cj] = v
                                    g2[nb + cj][i] = v
                                }
                                g2[i][i] = dot(col, col)
                                if !calib.isEmpty {
                                    let (gg, gb) = calibrationTerm(c, p, rms: rms)
                                    g2[i][i] += gg
                                    b2[i] += gb
                                }
                                let s = solveGram(g2, b2, constrainedFrom: nb).1
                                if s < best * (1 - 1e-12) {
                                    best = s
                                    params[c] = p
                                    cols[c] = col
                                    g = g2
                                    b = b2
                                    changed = true
                                }
                            }
                        }
                    }
                }
                if !changed { break }
            }
            return params
        }

        /// K's range for decay α: 2% to 3× the largest adstock (beyond it the Hill curve degenerates into a power
        /// law whose K and β run off together).
        func kRange(_ c: Int, _ alpha: Double) -> (Double, Double) {
            let top = MarketingMix.adstock(spend[c], alpha).max() ?? 1
            return (0.02 * top, 3 * top)
        }

        /// Nelder–Mead over (logit(α/0.95), logit of log K within `kRange`, logit of n within [0.25, maxShape]) of
        /// every channel.
        func polish(_ start: [ChannelParams], evaluations: Int) -> [ChannelParams] {
            let nSpan = max(options.maxShape, 0.5) - 0.25
            func logit(_ x: Double) -> Double { let y = min(max(x, 0.001), 0.999); return log(y / (1 - y)) }
            func sigmoid(_ v: Double) -> Double { 1 / (1 + exp(-v)) }
            func encode(_ ps: [ChannelParams]) -> [Double] {
                ps.enumerated().flatMap { c, p -> [Double] in
                    let (lo, hi) = kRange(c, p.alpha)
                    return [logit(p.alpha / 0.95), logit((log(p.k) - log(lo)) / (log(hi) - log(lo))),
                            logit((p.n - 0.25) / nSpan)]
                }
            }
            func decode(_ v: [Double]) -> [ChannelParams] {
                stride(from: 0, to: v.count, by: 3).map { i in
                    let alpha = 0.95 * sigmoid(v[i])
                    let (lo, hi) = kRange(i / 3, alpha)
                    return ChannelParams(alpha: alpha, k: exp(log(lo) + (log(hi) - log(lo)) * sigmoid(v[i + 1])),
                                         n: 0.25 + nSpan * sigmoid(v[i + 2]))
                }
            }
            let startSSE = sse(start)
            let x0 = encode(start)
            let (x, f) = nelderMead(x0, step: 0.3, evaluations: evaluations) { sse(decode($0)) }
            return f < startSSE ? decode(x) : start
        }
    }

    // MARK: allocation

    /// Splits `budget` over the model's channels for a campaign of `periods` periods to maximise the expected media
    /// response (see the type's comment for the objective and the search). `limits` are keyed by channel name;
    /// a channel without one may take 0 to the whole budget. `minimumMarginalReturn` is the return per unit of spend
    /// below which money is better left unspent (0: spend everything that helps at all).
    /// Throws `invalidInput` when the limits are infeasible (Σ minimum > budget, minimum > maximum, a negative
    /// value) or name an unknown channel.
    public static func allocate(model: Model, budget: Double, periods: Int, limits: [String: SpendLimit] = [:],
                                minimumMarginalReturn: Double = 0, steps: Int = 400) throws -> Allocation {
        let curves = model.channels
        let (lo, hi) = try checkLimits(curves.map(\.name), budget: budget, periods: periods, limits: limits)
        let theta = max(0, minimumMarginalReturn)
        let nc = curves.count
        let free = budget - lo.reduce(0, +)
        let tol = 1e-9 * max(budget, 1)
        func value(_ s: [Double]) -> Double {
            var v = theta * (budget - s.reduce(0, +))
            for c in 0..<nc { v += curves[c].campaignResponse(total: s[c], periods: periods) }
            return v
        }

        var candidates: [[Double]] = []
        if free > tol {
            // (1) greedy with lookahead jumps
            let delta = free / Double(max(steps, 1))
            var s = lo
            var remaining = free
            var response = (0..<nc).map { curves[$0].campaignResponse(total: s[$0], periods: periods) }
            while remaining > tol {
                var best: (c: Int, amount: Double, avg: Double)? = nil
                for c in 0..<nc {
                    let room = min(hi[c] - s[c], remaining)
                    guard room > tol else { continue }
                    var amounts: [Double] = []
                    var k = 1.0
                    while k * delta < room { amounts.append(k * delta); k *= 2 }
                    amounts.append(room)
                    for a in amounts {
                        let gain = curves[c].campaignResponse(total: s[c] + a, periods: periods) - response[c]
                        let avg = gain / a
                        if best == nil || avg > best!.avg + 1e-15 { best = (c, a, avg) }
                    }
                }
                guard let b = best, b.avg > theta else { break }
                s[b.c] += b.amount
                remaining -= b.amount
                response[b.c] = curves[b.c].campaignResponse(total: s[b.c], periods: periods)
            }
            candidates.append(s)
            // (3) other starts: the even split, and each channel filled first
            candidates.append(waterFill(lo: lo, hi: hi, budget: budget))
            if nc > 1 {
                for c in 0..<nc {
                    var t = lo
                    t[c] = min(hi[c], lo[c] + free)
                    // What channel c cannot take is split evenly over the others (c keeps at least its fill).
                    if budget - t.reduce(0, +) > tol { t = waterFill(lo: t, hi: hi, budget: budget) }
                    candidates.append(t)
                }
            }
        } else {
            candidates.append(lo)
        }
        // (2) pairwise exchange from every start; the best end point wins
        var bestS = candidates[0]
        var bestV = -Double.infinity
        for start in candidates {
            let s = exchange(start, lo: lo, hi: hi, budget: budget, free: free, steps: steps, tol: tol, value: value)
            let v = value(s)
            if v > bestV + 1e-12 * abs(v) { bestV = v; bestS = s }
        }

        let spent = bestS.reduce(0, +)
        let unspent = max(0, budget - spent)
        var plans: [ChannelPlan] = []
        for c in 0..<nc {
            let s = bestS[c]
            let per = s / Double(periods)
            let hmax = model.historicMaxPerPeriod.indices.contains(c) ? model.historicMaxPerPeriod[c] : .greatestFiniteMagnitude
            plans.append(ChannelPlan(
                name: curves[c].name, spend: s, spendPerPeriod: per,
                expectedKPI: curves[c].campaignResponse(total: s, periods: periods),
                marginalReturn: curves[c].campaignMarginal(total: s, periods: periods),
                binding: binding(s, lo[c], hi[c], tol),
                extrapolated: per > hmax * (1 + 1e-9),
                historicMaxPerPeriod: hmax < .greatestFiniteMagnitude ? hmax : nil))
        }
        let reason: UnspentReason
        if unspent <= tol {
            reason = .none
        } else if (0..<nc).allSatisfy({ bestS[$0] >= hi[$0] - tol }) {
            reason = .allChannelsAtMaximum
        } else {
            reason = .marginalReturnBelowThreshold
        }
        let total = plans.reduce(0) { $0 + ($1.expectedKPI ?? 0) }
        var interval: Interval? = nil
        if !model.replicates.isEmpty {
            let values = model.replicates.map { rep in
                rep.indices.reduce(0.0) { $0 + rep[$1].campaignResponse(total: bestS[$1], periods: periods) }
            }
            interval = percentileInterval(values, level: model.intervalLevel)
        }
        return Allocation(channels: plans, budget: budget, periods: periods, spent: spent, unspent: unspent,
                          unspentReason: reason, budgetBinds: unspent <= tol, expectedKPI: total,
                          expectedKPIInterval: interval,
                          baselineKPI: model.periods > 0 ? model.baselinePerPeriod * Double(periods) : nil,
                          method: "response-curves")
    }

    /// The fallback when there is no history: the budget split evenly over `channels`, raised to each minimum and
    /// capped at each maximum (what a capped channel cannot take goes evenly to the others). With a `model`, the
    /// plan also carries the expected KPI, marginal returns and extrapolation flags of that split.
    public static func evenSplit(channels: [String], budget: Double, periods: Int,
                                 limits: [String: SpendLimit] = [:], model: Model? = nil) throws -> Allocation {
        let (lo, hi) = try checkLimits(channels, budget: budget, periods: periods, limits: limits)
        let s = waterFill(lo: lo, hi: hi, budget: budget)
        let tol = 1e-9 * max(budget, 1)
        var plans: [ChannelPlan] = []
        var chosen: [Double] = []
        var repCurves: [[Curve]] = []
        var total: Double? = model == nil ? nil : 0
        for (c, name) in channels.enumerated() {
            let idx = model?.channels.firstIndex { $0.name == name }
            let curve = idx.map { model!.channels[$0] }
            let hmax = idx.flatMap { i in model!.historicMaxPerPeriod.indices.contains(i) ? model!.historicMaxPerPeriod[i] : nil }
            let per = s[c] / Double(periods)
            let r = curve?.campaignResponse(total: s[c], periods: periods)
            if let r, total != nil { total! += r }
            plans.append(ChannelPlan(
                name: name, spend: s[c], spendPerPeriod: per, expectedKPI: r,
                marginalReturn: curve?.campaignMarginal(total: s[c], periods: periods),
                binding: binding(s[c], lo[c], hi[c], tol),
                extrapolated: hmax.map { per > $0 * (1 + 1e-9) } ?? false,
                historicMaxPerPeriod: hmax.flatMap { $0 < .greatestFiniteMagnitude ? $0 : nil }))
            if let idx { chosen.append(s[c]); repCurves.append(model!.replicates.map { $0[idx] }) }
        }
        var interval: Interval? = nil
        if let model, !model.replicates.isEmpty, !repCurves.isEmpty {
            let values = model.replicates.indices.map { r in
                repCurves.indices.reduce(0.0) { $0 + repCurves[$1][r].campaignResponse(total: chosen[$1], periods: periods) }
            }
            interval = percentileInterval(values, level: model.intervalLevel)
        }
        let spent = s.reduce(0, +)
        let unspent = max(0, budget - spent)
        return Allocation(channels: plans, budget: budget, periods: periods, spent: spent, unspent: unspent,
                          unspentReason: unspent <= tol ? .none : .allChannelsAtMaximum, budgetBinds: unspent <= tol,
                          expectedKPI: total, expectedKPIInterval: interval,
                          baselineKPI: model.flatMap { $0.periods > 0 ? $0.baselinePerPeriod * Double(periods) : nil },
                          method: "even-split")
    }

    static func binding(_ s: Double, _ lo: Double, _ hi: Double, _ tol: Double) -> Binding {
        if s >= hi - tol, hi.isFinite { return .maximum }
        if s <= lo + tol { return .minimum }
        return .none
    }

    static func checkLimits(_ names: [String], budget: Double, periods: Int,
                            limits: [String: SpendLimit]) throws -> ([Double], [Double]) {
        guard !names.isEmpty else { throw ChorusError(.invalidInput, "no channels to allocate to") }
        guard budget.isFinite, budget >= 0 else { throw ChorusError(.invalidInput, "the budget must be finite and ≥ 0") }
        guard periods > 0 else { throw ChorusError(.invalidInput, "a campaign needs at least one period") }
        for key in limits.keys where !names.contains(key) {
            throw ChorusError(.invalidInput, "a limit names \(key), which is not a channel",
                              hint: "channels: \(names.joined(separator: ", "))")
        }
        var lo: [Double] = [], hi: [Double] = []
        for name in names {
            let l = limits[name] ?? SpendLimit()
            let mx = l.maximum ?? budget
            guard l.minimum.isFinite, l.minimum >= 0, mx >= 0, !mx.isNaN else {
                throw ChorusError(.invalidInput, "channel \(name): limits must be ≥ 0")
            }
            guard l.minimum <= mx else {
                throw ChorusError(.invalidInput, "channel \(name): minimum \(l.minimum) is above maximum \(mx)")
            }
            lo.append(l.minimum)
            hi.append(min(mx, budget))
        }
        let need = lo.reduce(0, +)
        guard need <= budget * (1 + 1e-12) else {
            throw ChorusError(.invalidInput, "infeasible: the channel minimums add up to \(need), above the budget \(budget)",
                              hint: "raise the budget or lower the minimums")
        }
        return (lo, hi)
    }

    /// Even split with floors and caps: every channel gets the same level L clamped to [lo, hi], L chosen so the
    /// total is the budget (or every channel is at its cap).
    static func waterFill(lo: [Double], hi: [Double], budget: Double) -> [Double] {
        func total(_ level: Double) -> Double { zip(lo, hi).reduce(0) { $0 + min(max(level, $1.0), $1.1) } }
        if total(hi.max() ?? 0) <= budget { return hi }
        var a = 0.0, b = hi.max() ?? 0
        for _ in 0..<200 {
            let m = (a + b) / 2
            if total(m) < budget { a = m } else { b = m }
        }
        // Channels strictly between their limits at that level share what the clamped ones leave, exactly.
        var s = zip(lo, hi).map { min(max(a, $0.0), $0.1) }
        let open = s.indices.filter { lo[$0] < s[$0] && s[$0] < hi[$0] }
        if !open.isEmpty {
            let fixed = s.indices.filter { !open.contains($0) }.reduce(0) { $0 + s[$1] }
            let share = (budget - fixed) / Double(open.count)
            for i in open { s[i] = min(max(share, lo[i]), hi[i]) }
        }
        return s
    }

    /// Pairwise exchange: move Δ from one channel (or the unspent pool) to another while that raises the value;
    /// Δ halves from free/4 to a quarter step.
    static func exchange(_ start: [Double], lo: [Double], hi: [Double], budget: Double, free: Double, steps: Int,
                         tol: Double, value: ([Double]) -> Double) -> [Double] {
        var s = start
        var v = value(s)
        let nc = s.count
        guard free > tol else { return s }
        var delta = free / 4
        let smallest = free / Double(max(steps, 1)) / 4
        let pool = nc  // index of "unspent"
        while delta >= smallest {
            var improved = true
            var rounds = 0
            while improved && rounds < 200 {
                improved = false
                rounds += 1
                for i in 0...nc {
                    for j in 0...nc where i != j {
                        let unspent = budget - s.reduce(0, +)
                        let give = i == pool ? unspent : s[i] - lo[i]
                        let take = j == pool ? Double.infinity : hi[j] - s[j]
                        let amount = min(delta, give, take)
                        guard amount > tol else { continue }
                        var t = s
                        if i != pool { t[i] -= amount }
                        if j != pool { t[j] += amount }
                        let w = value(t)
                        if w > v + 1e-12 * max(abs(v), 1) {
                            s = t
                            v = w
                            improved = true
                        }
                    }
                }
            }
            delta /= 2
        }
        return s
    }
}

// MARK: numerics

@inline(__always) private func dot(_ a: [Double], _ b: [Double]) -> Double {
    var s = 0.0
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            for i in 0..<pa.count { s += pa[i] * pb[i] }
        }
    }
    return s
}

/// Solves G x = b for symmetric positive (semi)definite G by Cholesky, with a small ridge when G is singular.
private func solveSPD(_ g: [[Double]], _ b: [Double]) -> [Double] {
    let p = b.count
    if p == 0 { return [] }
    let scale = (0..<p).map { g[$0][$0] }.max() ?? 1
    var ridge = 0.0
    for _ in 0..<8 {
        var l = [Double](repeating: 0, count: p * p)
        var ok = true
        for i in 0..<p {
            for j in 0...i {
                var s = g[i][j] + (i == j ? ridge : 0)
                for k in 0..<j { s -= l[i * p + k] * l[j * p + k] }
                if i == j {
                    if s <= 1e-13 * max(scale, 1e-300) { ok = false; break }
                    l[i * p + i] = s.squareRoot()
                } else {
                    l[i * p + j] = s / l[j * p + j]
                }
            }
            if !ok { break }
        }
        if ok {
            var z = [Double](repeating: 0, count: p)
            for i in 0..<p {
                var s = b[i]
                for k in 0..<i { s -= l[i * p + k] * z[k] }
                z[i] = s / l[i * p + i]
            }
            var x = [Double](repeating: 0, count: p)
            for i in stride(from: p - 1, through: 0, by: -1) {
                var s = z[i]
                for k in (i + 1)..<p { s -= l[k * p + i] * x[k] }
                x[i] = s / l[i * p + i]
            }
            return x
        }
        ridge = ridge == 0 ? 1e-10 * max(scale, 1e-300) : ridge * 100
    }
    return [Double](repeating: 0, count: p)
}

/// Lawson–Hanson non-negative least squares on the normal equations: minimises xᵀGx − 2bᵀx with x[i] ≥ 0 for
/// i ≥ `constrainedFrom` and the first variables free.
private func nnls(_ g: [[Double]], _ b: [Double], constrainedFrom: Int) -> [Double] {
    let p = b.count
    var x = [Double](repeating: 0, count: p)
    var passive = [Bool](repeating: false, count: p)
    for i in 0..<min(constrainedFrom, p) { passive[i] = true }
    func solvePassive() -> [Double] {
        let idx = (0..<p).filter { passive[$0] }
        let sub = idx.map { i in idx.map { j in g[i][j] } }
        let z = solveSPD(sub, idx.map { b[$0] })
        var full = [Double](repeating: 0, count: p)
        for (k, i) in idx.enumerated() { full[i] = z[k] }
        return full
    }
    if constrainedFrom > 0 { x = solvePassive() }
    let tol = 1e-12 * max(b.map(abs).max() ?? 1, 1e-300)
    for _ in 0..<(3 * p + 3) {
        var w = b
        for i in 0..<p { for j in 0..<p where x[j] != 0 { w[i] -= g[i][j] * x[j] } }
        var pick = -1
        var most = tol
        for i in constrainedFrom..<p where !passive[i] && w[i] > most { most = w[i]; pick = i }
        if pick < 0 { break }
        passive[pick] = true
        var inner = 0
        while inner < 3 * p + 3 {
            inner += 1
            let z = solvePassive()
            let bad = (constrainedFrom..<p).filter { passive[$0] && z[$0] <= 0 }
            if bad.isEmpty { x = z; break }
            var step = 1.0
            for i in bad { let d = x[i] - z[i]; if d > 0 { step = min(step, x[i] / d) } }
            for i in 0..<p { x[i] += step * (z[i] - x[i]) }
            for i in constrainedFrom..<p where passive[i] && x[i] <= 1e-14 * max(abs(x[i]), 1) {
                passive[i] = false
                x[i] = 0
            }
        }
    }
    return x
}

/// Nelder–Mead minimisation (reflection 1, expansion 2, contraction ½, shrink ½) from `x0` with an axis-aligned
/// start simplex of side `step`; stops after `evaluations` or when the simplex's values agree to 1e-10.
private func nelderMead(_ x0: [Double], step: Double, evaluations: Int,
                        _ f: ([Double]) -> Double) -> ([Double], Double) {
    let d = x0.count
    var pts = [x0]
    for i in 0..<d { var p = x0; p[i] += step; pts.append(p) }
    var vals = pts.map(f)
    var used = d + 1
    while used < evaluations {
        let order = vals.indices.sorted { vals[$0] < vals[$1] }
        pts = order.map { pts[$0] }
        vals = order.map { vals[$0] }
        if abs(vals[d] - vals[0]) <= 1e-10 * max(abs(vals[0]), 1e-300) { break }
        var centroid = [Double](repeating: 0, count: d)
        for p in pts.dropLast() { for i in 0..<d { centroid[i] += p[i] / Double(d) } }
        func along(_ t: Double) -> [Double] { (0..<d).map { centroid[$0] + t * (pts[d][$0] - centroid[$0]) } }
        let xr = along(-1)
        let fr = f(xr); used += 1
        if fr < vals[0] {
            let xe = along(-2)
            let fe = f(xe); used += 1
            if fe < fr { pts[d] = xe; vals[d] = fe } else { pts[d] = xr; vals[d] = fr }
        } else if fr < vals[d - 1] {
            pts[d] = xr; vals[d] = fr
        } else {
            let xc = fr < vals[d] ? along(-0.5) : along(0.5)
            let fc = f(xc); used += 1
            if fc < min(fr, vals[d]) {
                pts[d] = xc; vals[d] = fc
            } else {
                for k in 1...d {
                    pts[k] = (0..<d).map { pts[0][$0] + 0.5 * (pts[k][$0] - pts[0][$0]) }
                    vals[k] = f(pts[k]); used += 1
                }
            }
        }
    }
    let best = vals.indices.min { vals[$0] < vals[$1] } ?? 0
    return (pts[best], vals[best])
}
