import Foundation

/// Engagement forecasting (docs/forecasting.md "Forecasts"): a few seasonal models fitted to one series, one
/// chosen by AICc, point forecasts with 80% and 95% prediction intervals, and a rolling-origin backtest against
/// seasonal naive. Pure: no I/O, no clock, deterministic for the same input.
///
/// A series is equally spaced (`Calendar.step` seconds) and may have missing values (NaN), which the models skip.
/// The calendar's `periods` are its seasonal periods in steps, shortest first: [24, 168] for hourly (day, week),
/// [7] for daily (week); `phase` is the position of element 0 within the longest period (for hourly data the
/// hour of the week of the first value, Monday 00:00 = 0), so the models know which hour and weekday each value is.
public enum Forecasting {
    public struct Calendar: Sendable, Equatable, Codable {
        public var periods: [Int]
        public var phase: Int
        public init(periods: [Int], phase: Int) {
            precondition(!periods.isEmpty && periods.allSatisfy { $0 >= 1 })
            self.periods = periods.sorted()
            self.phase = phase
        }
        public var shortest: Int { periods[0] }
        public var longest: Int { periods[periods.count - 1] }
        /// Hourly data whose first value is at hour-of-week `phase`.
        public static func hourly(phase: Int) -> Calendar { Calendar(periods: [24, 168], phase: phase) }
        /// Daily data whose first value is weekday `phase` (0 = Monday).
        public static func daily(phase: Int) -> Calendar { Calendar(periods: [7], phase: phase) }
        func season(_ t: Int, _ p: Int) -> Int { ((phase + t) % p + p) % p }
    }

    /// Variance-stabilizing transforms of non-negative series. The models are fitted to f(y); the likelihood
    /// that AICc compares is that of y (the Jacobian of f is added), so transforms compete on equal terms.
    public enum Transform: String, Sendable, CaseIterable, Codable {
        /// y itself.
        case none
        /// Anscombe's square root, sqrt(y + 3/8): for counts.
        case sqrt
        /// log(1 + y): for skewed, multiplicative series.
        case log

        public func apply(_ y: Double) -> Double {
            switch self {
            case .none: return y
            case .sqrt: return (Swift.max(y, 0) + 0.375).squareRoot()
            case .log: return Foundation.log1p(Swift.max(y, 0))
            }
        }
        public func invert(_ z: Double) -> Double {
            switch self {
            case .none: return z
            case .sqrt: return Swift.max(0, Swift.max(z, 0) * Swift.max(z, 0) - 0.375)
            case .log: return Swift.max(0, Foundation.expm1(z))
            }
        }
        /// log |f'(y)|.
        func logJacobian(_ y: Double) -> Double {
            switch self {
            case .none: return 0
            case .sqrt: return -Foundation.log(2 * (Swift.max(y, 0) + 0.375).squareRoot())
            case .log: return -Foundation.log1p(Swift.max(y, 0))
            }
        }
    }

    /// One model's fit: what it is, its AICc, and enough state to forecast from the end of the data.
    public struct Fit: Sendable {
        public let model: String
        public let transform: Transform
        public let aicc: Double
        /// Parameters, for people and the job summary (smoothing weights, AR coefficient).
        public let parameters: [String: Double]
        let state: State
        let n: Int
        let calendar: Calendar

        enum State: Sendable {
            /// Seasonal regression with AR(1) errors; `lastResidual` is the last value's residual.
            case regression(design: Design, beta: [Double], covariance: [Double], phi: Double, lastResidual: Double,
                            innovationVariance: Double, residualVariance: Double)
            case ets(period: Int, alpha: Double, gamma: Double, level: Double, seasonal: [Double], variance: Double)
        }

        /// Mean and variance of f(y) at 1...h steps past the data.
        func predictive(_ h: Int) -> [(mean: Double, variance: Double)] {
            (1...Swift.max(h, 1)).map { k in
                let t = n + k - 1
                switch state {
                case let .regression(design, beta, cov, phi, last, s2e, s2r):
                    let x = design.row(t, n: n)
                    var mean = 0.0
                    for j in 0..<x.count { mean += x[j] * beta[j] }
                    // AR(1) errors: the last residual decays; the error variance after k steps.
                    var phik = 1.0
                    for _ in 0..<k { phik *= phi }
                    mean += phik * last
                    let ar = abs(phi) < 1e-12 ? s2e : s2e * (1 - phik * phik) / (1 - phi * phi)
                    var q = 0.0
                    let p = x.count
                    for a in 0..<p where x[a] != 0 {
                        for b in 0..<p where x[b] != 0 { q += x[a] * cov[a * p + b] * x[b] }
                    }
                    return (mean, ar + Swift.max(q, 0) * s2r)
                case let .ets(m, alpha, gamma, level, seasonal, s2):
                    let s = m > 1 ? seasonal[calendar.season(t, m)] : 0
                    let seasons = m > 1 ? Double((k - 1) / m) : 0
                    let v = s2 * (1 + Double(k - 1) * alpha * alpha + seasons * gamma * (2 * alpha + gamma))
                    return (level + s, v)
                }
            }
        }

        /// Point forecasts and intervals for the next `h` steps. The point is the median of the predictive
        /// distribution (f⁻¹ of the mean of f(y)), the forecast that minimizes absolute error.
        public func forecast(_ h: Int) -> Forecast {
            var out = Forecast()
            for (m, v) in predictive(h) {
                let sd = v.squareRoot()
                func at(_ z: Double) -> Double { transform.invert(m + z * sd) }
                out.point.append(transform.invert(m))
                out.lo80.append(at(-z80)); out.hi80.append(at(z80))
                out.lo95.append(at(-z95)); out.hi95.append(at(z95))
            }
            return out
        }
    }

    static let z80 = 1.2815515655446004
    static let z95 = 1.959963984540054

    /// Point forecasts with 80% and 95% prediction intervals, one value per step.
    public struct Forecast: Sendable, Equatable, Codable {
        public var point: [Double] = []
        public var lo80: [Double] = [], hi80: [Double] = []
        public var lo95: [Double] = [], hi95: [Double] = []
        public init() {}
        /// The forecast scaled by `f` (a child series that falls back to its parent's shape).
        public func scaled(_ f: Double) -> Forecast {
            var o = Forecast()
            o.point = point.map { $0 * f }
            o.lo80 = lo80.map { $0 * f }; o.hi80 = hi80.map { $0 * f }
            o.lo95 = lo95.map { $0 * f }; o.hi95 = hi95.map { $0 * f }
            return o
        }
    }

    /// The regression designs: seasonal dummies of the calendar, with or without a linear trend; or one mean per
    /// position of the longest period (a weekly profile of 168 hours).
    struct Design: Sendable {
        enum Kind: Sendable { case additive(trend: Bool), profile }
        let kind: Kind
        let calendar: Calendar
        var width: Int {
            switch kind {
            case let .additive(trend): return 1 + additiveLevels.reduce(0) { $0 + $1 - 1 } + (trend ? 1 : 0)
            case .profile: return calendar.longest
            }
        }
        /// Level counts of the additive factors: the shortest period, and (with two periods) the position of the
        /// shortest within the longest (for hourly data: hour of day, then weekday).
        var additiveLevels: [Int] {
            let c = calendar
            return c.periods.count >= 2 && c.longest % c.shortest == 0 ? [c.shortest, c.longest / c.shortest] : [c.shortest]
        }
        func row(_ t: Int, n: Int) -> [Double] {
            var x = [Double](repeating: 0, count: width)
            switch kind {
            case .profile:
                x[calendar.season(t, calendar.longest)] = 1
            case let .additive(trend):
                x[0] = 1
                let levels = additiveLevels
                var offset = 1
                let p1 = calendar.shortest
                let a = calendar.season(t, p1)
                if a > 0 { x[offset + a - 1] = 1 }
                offset += p1 - 1
                if levels.count == 2 {
                    let b = calendar.season(t, calendar.longest) / p1
                    if b > 0 { x[offset + b - 1] = 1 }
                    offset += levels[1] - 1
                }
                // The trend in units of the series' length, so the coefficients stay of one scale.
                if trend { x[offset] = Double(t) / Double(Swift.max(n, 1)) }
            }
            return x
        }
    }

    /// The candidate models for a series of length `n` with this calendar (each with every transform).
    static func candidates(_ c: Calendar, n: Int) -> [String] {
        var out = ["regression", "regression+trend"]
        if c.periods.count >= 2, n >= 2 * c.longest { out.append("weekly-profile") }
        out.append("ets-ana-\(c.shortest)")
        if c.periods.count >= 2, n >= 3 * c.longest { out.append("ets-ana-\(c.longest)") }
        out.append("ses")
        return out
    }

    /// Fits every candidate model under every transform and returns the one with the lowest AICc (the
    /// likelihood of y over the same observations: all but the first shortest season). Nil: too little data
    /// (fewer than two shortest seasons of values).
    public static func select(_ y: [Double], _ calendar: Calendar) -> Fit? {
        let observed = y.filter { !$0.isNaN }
        guard observed.count >= 2 * calendar.shortest + 2 else { return nil }
        let transforms: [Transform] = observed.allSatisfy({ $0 >= 0 }) ? Transform.allCases : [.none]
        var best: Fit?
        for tr in transforms {
            let z = y.map { $0.isNaN ? Double.nan : tr.apply($0) }
            for name in candidates(calendar, n: y.count) {
                guard let f = fit(name, y: y, z: z, transform: tr, calendar) else { continue }
                if best == nil || f.aicc < best!.aicc - 1e-9 { best = f }
            }
        }
        return best
    }

    /// The first index of the likelihood window, and the log-likelihood of y given the one-step errors of f(y)
    /// over it (with the Jacobian of the transform), and the number of values it counted.
    static func likelihood(y: [Double], errors: [Double], transform: Transform, burn: Int) -> (ll: Double, n: Int, sse: Double) {
        var sse = 0.0, jac = 0.0, n = 0
        for t in burn..<errors.count where !errors[t].isNaN && !y[t].isNaN {
            sse += errors[t] * errors[t]
            jac += transform.logJacobian(y[t])
            n += 1
        }
        guard n > 0 else { return (-.infinity, 0, 0) }
        let s2 = Swift.max(sse / Double(n), 1e-12)
        return (-0.5 * Double(n) * (Foundation.log(2 * Double.pi * s2) + 1) + jac, n, sse)
    }

    static func aicc(ll: Double, k: Int, n: Int) -> Double {
        guard n - k - 1 > 0, ll.isFinite else { return .infinity }
        return -2 * ll + 2 * Double(k) + 2 * Double(k * (k + 1)) / Double(n - k - 1)
    }

    static func fit(_ name: String, y: [Double], z: [Double], transform: Transform, _ c: Calendar) -> Fit? {
        let burn = c.shortest
        switch name {
        case "regression", "regression+trend", "weekly-profile":
            let design = Design(kind: name == "weekly-profile" ? .profile : .additive(trend: name == "regression+trend"),
                                calendar: c)
            return regression(design, name: name, y: y, z: z, transform: transform, burn: burn)
        case "ses":
            return ets(period: 1, name: name, y: y, z: z, transform: transform, burn: burn, c)
        default:
            let m = Int(name.split(separator: "-").last ?? "") ?? c.shortest
            return ets(period: m, name: name, y: y, z: z, transform: transform, burn: burn, c)
        }
    }

    // MARK: seasonal regression with AR(1) errors

    static func regression(_ design: Design, name: String, y: [Double], z: [Double], transform: Transform, burn: Int) -> Fit? {
        let n = z.count, p = design.width
        var xtx = [Double](repeating: 0, count: p * p), xtz = [Double](repeating: 0, count: p)
        var rows = 0
        for t in 0..<n where !z[t].isNaN {
            let x = design.row(t, n: n)
            let nz = x.indices.filter { x[$0] != 0 }
            for a in nz {
                xtz[a] += x[a] * z[t]
                for b in nz { xtx[a * p + b] += x[a] * x[b] }
            }
            rows += 1
        }
        guard rows > p + 2 else { return nil }
        // A tiny ridge keeps levels that never occur (a weekday missing from a short series) solvable.
        for a in 0..<p { xtx[a * p + a] += 1e-8 * Swift.max(1, xtx[a * p + a]) }
        let inv: [Double]
        if case .profile = design.kind {
            // One dummy per position: XᵀX is diagonal.
            var d = [Double](repeating: 0, count: p * p)
            for a in 0..<p { d[a * p + a] = 1 / xtx[a * p + a] }
            inv = d
        } else {
            guard let i = invertSPD(xtx, p) else { return nil }
            inv = i
        }
        var beta = [Double](repeating: 0, count: p)
        for a in 0..<p { for b in 0..<p { beta[a] += inv[a * p + b] * xtz[b] } }
        var resid = [Double](repeating: .nan, count: n)
        for t in 0..<n where !z[t].isNaN {
            let x = design.row(t, n: n)
            var m = 0.0
            for j in 0..<p where x[j] != 0 { m += x[j] * beta[j] }
            resid[t] = z[t] - m
        }
        var rss = 0.0, rn = 0
        for r in resid where !r.isNaN { rss += r * r; rn += 1 }
        let s2r = rss / Double(Swift.max(rn - p, 1))
        // AR(1) on the residuals: φ from the lag-1 pairs, clipped to (-0.98, 0.98).
        var num = 0.0, den = 0.0
        for t in 1..<n where !resid[t].isNaN && !resid[t - 1].isNaN {
            num += resid[t] * resid[t - 1]
            den += resid[t - 1] * resid[t - 1]
        }
        let phi = den > 0 ? Swift.min(0.98, Swift.max(-0.98, num / den)) : 0
        var innov = [Double](repeating: .nan, count: n)
        for t in 0..<n where !resid[t].isNaN {
            innov[t] = t > 0 && !resid[t - 1].isNaN ? resid[t] - phi * resid[t - 1] : resid[t]
        }
        let lik = likelihood(y: y, errors: innov, transform: transform, burn: burn)
        guard lik.n > 0 else { return nil }
        let k = p + 2
        // The predictive variance uses the unbiased σ² (SSE / (n - k)); AICc the maximum-likelihood one.
        let s2e = lik.sse / Double(Swift.max(lik.n - k, 1))
        let last = resid.last { !$0.isNaN } ?? 0
        // The last residual carries over only if the last value is observed.
        let carry = resid[n - 1].isNaN ? 0 : last
        return Fit(model: name, transform: transform, aicc: aicc(ll: lik.ll, k: k, n: lik.n),
                   parameters: ["phi": phi],
                   state: .regression(design: design, beta: beta, covariance: inv, phi: phi, lastResidual: carry,
                                      innovationVariance: s2e, residualVariance: s2r),
                   n: n, calendar: design.calendar)
    }

    /// The inverse of a symmetric positive definite p×p matrix (row-major) by Cholesky; nil when not SPD.
    static func invertSPD(_ a: [Double], _ p: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: p * p)
        for i in 0..<p {
            for j in 0...i {
                var s = a[i * p + j]
                for k in 0..<j { s -= l[i * p + k] * l[j * p + k] }
                if i == j {
                    guard s > 0 else { return nil }
                    l[i * p + i] = s.squareRoot()
                } else {
                    l[i * p + j] = s / l[j * p + j]
                }
            }
        }
        // inv(L), then inv(A) = inv(L)ᵀ inv(L).
        var li = [Double](repeating: 0, count: p * p)
        for i in 0..<p {
            li[i * p + i] = 1 / l[i * p + i]
            for j in 0..<i {
                var s = 0.0
                for k in j..<i { s -= l[i * p + k] * li[k * p + j] }
                li[i * p + j] = s / l[i * p + i]
            }
        }
        var inv = [Double](repeating: 0, count: p * p)
        for i in 0..<p {
            for j in 0...i {
                var s = 0.0
                for k in i..<p { s += li[k * p + i] * li[k * p + j] }
                inv[i * p + j] = s; inv[j * p + i] = s
            }
        }
        return inv
    }

    // MARK: exponential smoothing, additive error and season, no trend (ETS(A,N,A); period 1 = ETS(A,N,N))

    /// Runs the recursions and returns the one-step errors and the final states.
    static func etsRun(_ z: [Double], m: Int, alpha: Double, gamma: Double, level0: Double, season0: [Double],
                       _ c: Calendar) -> (errors: [Double], level: Double, seasonal: [Double]) {
        var level = level0, s = season0
        var errors = [Double](repeating: .nan, count: z.count)
        for t in 0..<z.count {
            let j = m > 1 ? c.season(t, m) : 0
            let yhat = level + (m > 1 ? s[j] : 0)
            guard !z[t].isNaN else { continue }
            let e = z[t] - yhat
            errors[t] = e
            level += alpha * e
            if m > 1 { s[j] += gamma * e }
        }
        return (errors, level, s)
    }

    static func ets(period m: Int, name: String, y: [Double], z: [Double], transform: Transform, burn: Int,
                    _ c: Calendar) -> Fit? {
        let n = z.count
        let window = Swift.min(n, Swift.max(2 * m, m + 1))
        guard n >= 2 * m + 2 else { return nil }
        // Initial states: the level is the mean of the first two seasons; each seasonal state the mean deviation
        // of its position from it.
        let head = (0..<window).compactMap { z[$0].isNaN ? nil : z[$0] }
        guard !head.isEmpty else { return nil }
        let level0 = head.reduce(0, +) / Double(head.count)
        var season0 = [Double](repeating: 0, count: Swift.max(m, 1))
        if m > 1 {
            var sum = [Double](repeating: 0, count: m), cnt = [Double](repeating: 0, count: m)
            for t in 0..<window where !z[t].isNaN {
                sum[c.season(t, m)] += z[t] - level0
                cnt[c.season(t, m)] += 1
            }
            for j in 0..<m { season0[j] = cnt[j] > 0 ? sum[j] / cnt[j] : 0 }
            let mean = season0.reduce(0, +) / Double(m)
            season0 = season0.map { $0 - mean }
        }
        func params(_ v: [Double]) -> (Double, Double) {
            let alpha = 0.001 + 0.998 / (1 + Foundation.exp(-v[0]))
            let gamma = m > 1 ? (1 - alpha) * 0.999 / (1 + Foundation.exp(-v[1])) : 0
            return (alpha, gamma)
        }
        func cost(_ v: [Double]) -> Double {
            let (a, g) = params(v)
            let r = etsRun(z, m: m, alpha: a, gamma: g, level0: level0, season0: season0, c)
            var sse = 0.0
            for t in burn..<n where !r.errors[t].isNaN { sse += r.errors[t] * r.errors[t] }
            return sse.isFinite ? sse : .infinity
        }
        // α starts at 0.1, γ at 0.05.
        let start = m > 1 ? [Foundation.log(0.1 / 0.9), Foundation.log(0.056 / 0.944)] : [Foundation.log(0.1 / 0.9)]
        let v = nelderMead(cost, start: start, step: 1.0, iterations: 80 * start.count)
        let (alpha, gamma) = params(v)
        let r = etsRun(z, m: m, alpha: alpha, gamma: gamma, level0: level0, season0: season0, c)
        let lik = likelihood(y: y, errors: r.errors, transform: transform, burn: burn)
        guard lik.n > 0 else { return nil }
        let k = m > 1 ? m + 3 : 3
        return Fit(model: name, transform: transform, aicc: aicc(ll: lik.ll, k: k, n: lik.n),
                   parameters: m > 1 ? ["alpha": alpha, "gamma": gamma] : ["alpha": alpha],
                   state: .ets(period: m, alpha: alpha, gamma: gamma, level: r.level, seasonal: r.seasonal,
                               variance: lik.sse / Double(Swift.max(lik.n - k, 1))),
                   n: n, calendar: c)
    }

    /// Nelder–Mead minimization (deterministic: fixed start, fixed iteration budget).
    static func nelderMead(_ f: ([Double]) -> Double, start: [Double], step: Double, iterations: Int) -> [Double] {
        let d = start.count
        var simplex = [start]
        for i in 0..<d {
            var p = start
            p[i] += step
            simplex.append(p)
        }
        var values = simplex.map(f)
        for _ in 0..<iterations {
            let order = values.indices.sorted { values[$0] < values[$1] }
            simplex = order.map { simplex[$0] }
            values = order.map { values[$0] }
            if abs(values[d] - values[0]) <= 1e-10 * (abs(values[0]) + 1e-12) { break }
            var centroid = [Double](repeating: 0, count: d)
            for p in simplex.dropLast() { for i in 0..<d { centroid[i] += p[i] / Double(d) } }
            func toward(_ t: Double) -> [Double] { (0..<d).map { centroid[$0] + t * (simplex[d][$0] - centroid[$0]) } }
            let reflected = toward(-1), fr = f(reflected)
            if fr < values[0] {
                let expanded = toward(-2), fe = f(expanded)
                if fe < fr { simplex[d] = expanded; values[d] = fe } else { simplex[d] = reflected; values[d] = fr }
            } else if fr < values[d - 1] {
                simplex[d] = reflected; values[d] = fr
            } else {
                let contracted = fr < values[d] ? toward(-0.5) : toward(0.5)
                let fc = f(contracted)
                if fc < Swift.min(fr, values[d]) {
                    simplex[d] = contracted; values[d] = fc
                } else {
                    for i in 1...d {
                        simplex[i] = (0..<d).map { simplex[0][$0] + 0.5 * (simplex[i][$0] - simplex[0][$0]) }
                        values[i] = f(simplex[i])
                    }
                }
            }
        }
        let best = values.indices.min { values[$0] < values[$1] }!
        return simplex[best]
    }

    // MARK: baseline and backtest

    /// Seasonal naive: the value one longest period earlier (for hourly data the same hour last week), repeated
    /// for horizons beyond one period; missing values reach further back.
    public static func seasonalNaive(_ y: [Double], period m: Int, horizon h: Int) -> [Double] {
        (0..<h).map { k in
            var t = y.count + k - m * (k / m + 1)
            while t >= 0, y[t].isNaN { t -= m }
            return t >= 0 ? y[t] : .nan
        }
    }

    /// The MASE scale of a training series: the mean absolute seasonal difference at lag `m`.
    public static func maseScale(_ y: [Double], period m: Int) -> Double {
        var s = 0.0, n = 0
        for t in m..<Swift.max(y.count, m) where !y[t].isNaN && !y[t - m].isNaN {
            s += abs(y[t] - y[t - m]); n += 1
        }
        return n > 0 ? s / Double(n) : .nan
    }

    /// A rolling-origin backtest's figures for one series.
    public struct Backtest: Sendable, Equatable, Codable {
        /// Forecast origins used (those with data to fit and to check).
        public var origins = 0
        /// Values checked.
        public var points = 0
        /// Mean over origins of the MASE (mean absolute error / the training series' seasonal-naive scale).
        public var mase = 0.0
        /// The same for seasonal naive itself.
        public var maseSeasonalNaive = 0.0
        /// Sum of absolute errors of the model and of seasonal naive over all checked values.
        public var absError = 0.0, absErrorSeasonalNaive = 0.0
        /// Checked values inside the 80% and 95% intervals.
        public var inside80 = 0, inside95 = 0
        public init() {}
        /// Model error relative to seasonal naive on the same values (below 1: better).
        public var relativeMAE: Double { absErrorSeasonalNaive > 0 ? absError / absErrorSeasonalNaive : .nan }
        public var coverage80: Double { points > 0 ? Double(inside80) / Double(points) : .nan }
        public var coverage95: Double { points > 0 ? Double(inside95) / Double(points) : .nan }
    }

    /// Rolling-origin backtest: for each origin o (an index into y), fit on y[..<o] (the model chosen afresh by
    /// AICc), forecast `horizon` steps and compare with y[o..<o+horizon]; seasonal naive (lag = the longest
    /// period) on the same values. Origins without two longest periods of history or without values to check are
    /// skipped. `onForecast` sees each origin's forecast (for benchmarks that score it elsewhere).
    public static func backtest(_ y: [Double], _ calendar: Calendar, origins: [Int], horizon: Int,
                                onForecast: ((Int, Fit, Forecast) -> Void)? = nil) -> Backtest {
        var b = Backtest()
        let m = calendar.longest
        var maseSum = 0.0, naiveSum = 0.0
        for o in origins where o >= 2 * m && o < y.count {
            let train = Array(y[..<o])
            let h = Swift.min(horizon, y.count - o)
            let scale = maseScale(train, period: m)
            guard scale > 0, let fit = select(train, Calendar(periods: calendar.periods, phase: calendar.phase)) else { continue }
            let f = fit.forecast(h)
            onForecast?(o, fit, f)
            let naive = seasonalNaive(train, period: m, horizon: h)
            var err = 0.0, nerr = 0.0, n = 0
            for k in 0..<h where !y[o + k].isNaN && !naive[k].isNaN {
                let v = y[o + k]
                err += abs(v - f.point[k]); nerr += abs(v - naive[k]); n += 1
                if v >= f.lo80[k] && v <= f.hi80[k] { b.inside80 += 1 }
                if v >= f.lo95[k] && v <= f.hi95[k] { b.inside95 += 1 }
            }
            guard n > 0 else { continue }
            b.origins += 1
            b.points += n
            b.absError += err
            b.absErrorSeasonalNaive += nerr
            maseSum += err / Double(n) / scale
            naiveSum += nerr / Double(n) / scale
        }
        if b.origins > 0 {
            b.mase = maseSum / Double(b.origins)
            b.maseSeasonalNaive = naiveSum / Double(b.origins)
        }
        return b
    }

    /// The backtest origins for a series of `n` values: every `step` values from `n - span` to `n - horizon`
    /// (the last origin leaves `horizon` values to check), oldest first.
    public static func origins(n: Int, span: Int, step: Int, horizon: Int) -> [Int] {
        let first = Swift.max(1, n - span), last = n - horizon
        guard step > 0, last >= first else { return [] }
        return Array(stride(from: first, through: last, by: step))
    }
}
