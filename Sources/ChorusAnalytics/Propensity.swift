import ChorusModel

// Conversion propensity (pure): the features of a user as of a cutoff, binary logistic regression with L2 whose
// loss and gradient are sums (so a cluster adds per-partition parts in a fixed order), Platt scaling, and the
// evaluation metrics of docs/audience.md ("Conversion propensity"). No I/O; deterministic.
//
// The features of a user as of a cutoff c, with a look-back window W (seconds), read only events with ts <= c:
//   active_days                             distinct UTC days with an event in (c − W, c]
//   frequency                               events in the window per active day (0 without any)
//   recency_days                            days from the last event at or before c to c, capped at W (in days)
//   click_rate                              clicks / views in the window (0 without views)
//   engagement_rate                         (likes + comments + shares) / views in the window (0 without views)
//   likes, comments, shares                 log(1 + count) of that type in the window
//   conversions                             log(1 + conversions in the window)
//   conversion_value                        mean value of the window's conversions (0 without any)
//   followers                               log(1 + followers)
//   channel=NAME                            1 when the user's channel is NAME (one per channel of the plan)
// Views and clicks enter only through the activity features and click_rate: their counts are nearly collinear
// with those, and collinear columns share (and can flip) the weight a driver gets. A user with no event at or
// before c has no features then ("insufficient data"). The label of a row is whether the user has a conversion
// in (c, c + H].

/// One event of a user, as propensity reads it.
public struct PropensityEvent: Sendable, Equatable {
    public var ts: Int64
    public var kind: InteractionKind
    public var value: Double
    public init(ts: Int64, kind: InteractionKind, value: Double = 0) { self.ts = ts; self.kind = kind; self.value = value }
}

public enum PropensityFeatures {
    /// The features every model has, in order; `channel=NAME` columns follow (see `names(channels:)`).
    public static let base = ["active_days", "frequency", "recency_days", "click_rate",
                              "likes", "comments", "shares", "conversions", "conversion_value", "followers"]

    public static func names(channels: [String]) -> [String] { base + channels.map { "channel=" + $0 } }

    /// The feature row of a user as of `cutoff` (nil: no event at or before it). `events` in any order; events
    /// after the cutoff are never read.
    public static func row(events: [PropensityEvent], followers: Int, channel: String, channels: [String],
                           cutoff: Int64, window: Int64) -> [Double]? {
        var last = Int64.min
        var counts = [Int](repeating: 0, count: InteractionKind.allCases.count + 1)
        var inWindow = 0, conversions = 0
        var valueSum = 0.0
        var days = Set<Int64>()
        for e in events where e.ts <= cutoff {
            last = max(last, e.ts)
            guard e.ts > cutoff - window else { continue }
            inWindow += 1
            counts[e.kind.rawValue] += 1
            if e.kind == .conversion { conversions += 1; valueSum += e.value.isFinite ? e.value : 0 }
            days.insert(FeatureMath.day(e.ts))
        }
        guard last != Int64.min else { return nil }
        func l(_ k: InteractionKind) -> Double { PortableMath.log(1 + Double(counts[k.rawValue])) }
        let views = Double(counts[InteractionKind.view.rawValue])
        let clicks = Double(counts[InteractionKind.click.rawValue])
        var r: [Double] = [
            Double(days.count),
            days.isEmpty ? 0 : Double(inWindow) / Double(days.count),
            min(Double(window), Double(cutoff - last)) / 86400,
            views > 0 ? clicks / views : 0,
            l(.like), l(.comment), l(.share),
            PortableMath.log(1 + Double(conversions)),
            conversions > 0 ? valueSum / Double(conversions) : 0,
            PortableMath.log(1 + Double(max(0, followers))),
        ]
        for c in channels { r.append(c == channel ? 1 : 0) }
        return r
    }

    /// Whether the user converts in (cutoff, cutoff + horizon].
    public static func label(events: [PropensityEvent], cutoff: Int64, horizon: Int64) -> Bool {
        events.contains { $0.kind == .conversion && $0.ts > cutoff && $0.ts <= cutoff + horizon }
    }

    /// The slice of the training period a user falls in, by a stable hash of the id: 60% fit, 20% dev (choosing
    /// λ), 20% calibration (Platt scaling).
    public enum Slice: Int, Sendable { case fit = 0, dev = 1, calibration = 2 }
    public static func slice(of userId: String) -> Slice {
        let b = StableHash.mixed64("propensity/" + userId) % 10
        return b < 6 ? .fit : (b < 8 ? .dev : .calibration)
    }
}

/// Per-feature means and standard deviations (population, ddof 0) from summed parts.
public struct Standardizer: Sendable, Equatable {
    public var mean: [Double]
    /// The standard deviation, or 1 for a constant feature (its standardized value is then 0).
    public var scale: [Double]
    public init(mean: [Double], scale: [Double]) { self.mean = mean; self.scale = scale }

    /// From n, Σx and Σx² per feature.
    public init(count: Double, sum: [Double], sumSquares: [Double]) {
        let n = max(count, 1)
        mean = sum.map { $0 / n }
        scale = zip(sum, sumSquares).map { s, q in
            let m = s / n
            let v = max(0, q / n - m * m)
            let sd = v.squareRoot()
            return sd > 1e-12 * max(1, abs(m)) ? sd : 1
        }
    }

    public func apply(_ x: [Double]) -> [Double] {
        var z = x
        for j in z.indices { z[j] = (x[j] - mean[j]) / scale[j] }
        return z
    }
}

/// Binary logistic regression: logit = b + w·z. The objective is the mean log-loss + (λ/2)‖w‖² (b unregularised),
/// the same as scikit-learn's `LogisticRegression(C = 1 / (n·λ))`.
public enum LogisticRegression {
    @inline(__always) public static func sigmoid(_ s: Double) -> Double {
        s >= 0 ? 1 / (1 + PortableMath.exp(-s)) : { let e = PortableMath.exp(s); return e / (1 + e) }()
    }

    /// log(1 + e^s), without overflow.
    @inline(__always) static func softplus(_ s: Double) -> Double {
        s > 0 ? s + PortableMath.log(1 + PortableMath.exp(-s)) : PortableMath.log(1 + PortableMath.exp(s))
    }

    /// params = d weights then the bias.
    @inline(__always) public static func logit(_ params: [Double], _ z: [Double]) -> Double {
        var s = params[z.count]
        for j in z.indices { s += params[j] * z[j] }
        return s
    }

    /// Σ log-loss over the rows and its gradient added into `gradient` (d + 1). Not averaged, not regularised.
    public static func lossAndGradient(_ params: [Double], rows: [[Double]], labels: [Bool],
                                       into gradient: inout [Double]) -> Double {
        var loss = 0.0
        for (z, y) in zip(rows, labels) {
            let s = logit(params, z)
            loss += softplus(s) - (y ? s : 0)
            let g = sigmoid(s) - (y ? 1 : 0)
            for j in z.indices { gradient[j] += g * z[j] }
            gradient[z.count] += g
        }
        return loss
    }

    /// The full objective from summed parts.
    public static func objective(params: [Double], lossSum: Double, gradientSum: [Double], count: Double,
                                 lambda: Double) -> (Double, [Double]) {
        let n = max(count, 1)
        var g = gradientSum.map { $0 / n }
        var reg = 0.0
        for j in 0..<(params.count - 1) {
            reg += params[j] * params[j]
            g[j] += lambda * params[j]
        }
        return (lossSum / n + 0.5 * lambda * reg, g)
    }

    /// Fits in one process (the reference for the distributed job, and the tests).
    public static func fit(rows: [[Double]], labels: [Bool], lambda: Double, start: [Double]? = nil,
                           iterations: Int = 200, tolerance: Double = 1e-12) -> [Double] {
        let d = rows.first?.count ?? 0
        func evaluate(_ p: [Double]) -> (Double, [Double]) {
            var g = [Double](repeating: 0, count: d + 1)
            let l = lossAndGradient(p, rows: rows, labels: labels, into: &g)
            return objective(params: p, lossSum: l, gradientSum: g, count: Double(rows.count), lambda: lambda)
        }
        var opt = LBFGS(memory: 10)
        var x = start ?? [Double](repeating: 0, count: d + 1)
        var (f, g) = evaluate(x)
        for _ in 0..<iterations {
            guard let dec = opt.step(x: &x, f: &f, g: &g, evaluate: evaluate) else { break }
            if dec < tolerance { break }
        }
        return x
    }
}

/// Platt scaling: p = σ(a·s + b) on a model's logits s, fitted by Newton's method on a calibration slice.
public struct PlattScaling: Sendable, Equatable {
    public var a: Double
    public var b: Double
    public init(a: Double = 1, b: Double = 0) { self.a = a; self.b = b }

    public func probability(_ logit: Double) -> Double { LogisticRegression.sigmoid(a * logit + b) }

    /// The least slope a fit keeps: calibration must never reverse the model's ranking. When the calibration slice
    /// shows less (or an inverted) association, a = minSlope and b alone is fitted, so the probabilities shrink
    /// to about the slice's base rate while the order of users stays the model's.
    public static let minSlope = 0.01

    /// The maximum-likelihood (a, b) on (logit, label) pairs, a ≥ `minSlope`; identity when the slice has only one
    /// class.
    public static func fit(logits: [Double], labels: [Bool], iterations: Int = 100) -> PlattScaling {
        let pos = labels.filter { $0 }.count
        guard pos > 0, pos < labels.count else { return PlattScaling() }
        var a = 1.0, b = 0.0
        let ridge = 1e-9
        func nll(_ a: Double, _ b: Double) -> Double {
            var l = 0.0
            for (s, y) in zip(logits, labels) {
                let t = a * s + b
                l += LogisticRegression.softplus(t) - (y ? t : 0)
            }
            return l + 0.5 * ridge * a * a
        }
        var f = nll(a, b)
        for _ in 0..<iterations {
            var ga = ridge * a, gb = 0.0, haa = ridge, hab = 0.0, hbb = 0.0
            for (s, y) in zip(logits, labels) {
                let p = LogisticRegression.sigmoid(a * s + b)
                let r = p - (y ? 1 : 0), w = p * (1 - p)
                ga += r * s; gb += r
                haa += w * s * s; hab += w * s; hbb += w
            }
            let det = haa * hbb - hab * hab
            guard det > 1e-300 else { break }
            let da = -(hbb * ga - hab * gb) / det, db = -(haa * gb - hab * ga) / det
            var t = 1.0, moved = false
            for _ in 0..<30 {
                let fn = nll(a + t * da, b + t * db)
                if fn.isFinite && fn <= f { a += t * da; b += t * db; moved = f - fn > 1e-14 * max(1, abs(f)); f = fn; break }
                t *= 0.5
            }
            if !moved { break }
        }
        if !(a >= minSlope) {
            a = minSlope
            b = 0
            for _ in 0..<iterations {  // Newton on b alone
                var g = 0.0, h = 0.0
                for (s, y) in zip(logits, labels) {
                    let p = LogisticRegression.sigmoid(a * s + b)
                    g += p - (y ? 1 : 0); h += p * (1 - p)
                }
                guard h > 1e-300 else { break }
                let step = g / h
                b -= step
                if abs(step) < 1e-12 { break }
            }
        }
        return PlattScaling(a: a, b: b)
    }
}

/// Held-out metrics of probabilities against labels.
public enum PropensityMetrics {
    /// Area under the ROC curve (Mann–Whitney, ties get average ranks); nil without both classes.
    public static func auc(_ scores: [Double], _ labels: [Bool]) -> Double? {
        let pos = labels.filter { $0 }.count, neg = labels.count - pos
        guard pos > 0, neg > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let avg = Double(i + j) / 2 + 1
            for k in i...j where labels[order[k]] { rankSum += avg }
            i = j + 1
        }
        return (rankSum - Double(pos) * Double(pos + 1) / 2) / (Double(pos) * Double(neg))
    }

    /// Mean −[y log p + (1 − y) log(1 − p)], p clipped to [1e-15, 1 − 1e-15].
    public static func logLoss(_ p: [Double], _ labels: [Bool]) -> Double {
        guard !p.isEmpty else { return 0 }
        var l = 0.0
        for (q, y) in zip(p, labels) {
            let c = min(max(q, 1e-15), 1 - 1e-15)
            l -= y ? PortableMath.log(c) : PortableMath.log(1 - c)
        }
        return l / Double(p.count)
    }

    /// Expected calibration error: 10 equal-width bins of p over [0, 1] (bin ⌊10p⌋, p = 1 in the last), the sum
    /// over bins of (rows in bin / rows) × |mean label − mean p| in the bin.
    public static func ece(_ p: [Double], _ labels: [Bool], bins: Int = 10) -> Double {
        guard !p.isEmpty else { return 0 }
        var n = [Int](repeating: 0, count: bins), sp = [Double](repeating: 0, count: bins)
        var sy = [Double](repeating: 0, count: bins)
        for (q, y) in zip(p, labels) {
            let b = min(bins - 1, max(0, Int(q * Double(bins))))
            n[b] += 1; sp[b] += q; sy[b] += y ? 1 : 0
        }
        var e = 0.0
        for b in 0..<bins where n[b] > 0 { e += abs(sy[b] - sp[b]) / Double(p.count) }
        return e
    }

    /// The order of rows by score, highest first; ties keep the given order (stable).
    public static func ranking(_ scores: [Double]) -> [Int] {
        scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
    }

    /// Conversion rate among the top ⌈n/10⌉ rows by score, divided by the overall rate (nil without positives).
    public static func liftTopDecile(_ scores: [Double], _ labels: [Bool]) -> (lift: Double, rate: Double)? {
        let pos = labels.filter { $0 }.count
        guard pos > 0 else { return nil }
        let k = (labels.count + 9) / 10
        let top = ranking(scores).prefix(k)
        let rate = Double(top.filter { labels[$0] }.count) / Double(k)
        return (rate / (Double(pos) / Double(labels.count)), rate)
    }

    /// Cut points of deciles of `scores`: cut[k − 1] = the score at rank ⌈k·n/10⌉ (k = 1…9), highest first.
    /// A score ≥ cut[0] is in decile 1 (the top 10%); below cut[8], decile 10.
    public static func decileCuts(_ scores: [Double]) -> [Double] {
        guard !scores.isEmpty else { return [] }
        let s = scores.sorted(by: >)
        return (1...9).map { k in s[max(0, (k * s.count + 9) / 10 - 1)] }
    }

    public static func decile(_ p: Double, cuts: [Double]) -> Int {
        guard !cuts.isEmpty else { return 1 }
        return 1 + cuts.filter { p < $0 }.count
    }
}

/// What a coefficient means, in words (drivers in the summary, reasons in a profile).
public enum PropensityWords {
    /// (what a user does more of, the feature's name for people).
    public static func phrase(_ feature: String) -> (more: String, name: String) {
        switch feature {
        case "views": return ("view more", "views")
        case "likes": return ("like more", "likes")
        case "comments": return ("comment more", "comments")
        case "shares": return ("share more", "shares")
        case "clicks": return ("click more", "clicks")
        case "click_rate": return ("click more", "click rate")
        case "engagement_rate": return ("engage more", "engagement rate")
        case "recency_days": return ("have been away longer", "days since last seen")
        case "active_days": return ("are active on more days", "active days")
        case "frequency": return ("do more per active day", "interactions per active day")
        case "conversions": return ("converted more before", "past conversions")
        case "conversion_value": return ("spent more per conversion", "mean conversion value")
        case "followers": return ("have more followers", "followers")
        default:
            if feature.hasPrefix("channel=") {
                let c = String(feature.dropFirst("channel=".count))
                return ("are on \(c)", "being on \(c)")
            }
            return ("have more \(feature)", feature)
        }
    }

    /// "users who click more convert more: +0.80 per s.d. of click rate".
    public static func driver(_ feature: String, coefficient w: Double) -> String {
        let p = phrase(feature)
        let sign = w >= 0 ? "+" : "−"
        return "users who \(p.more) convert \(w >= 0 ? "more" : "less"): \(sign)\(format2(abs(w))) per s.d. of \(p.name)"
    }

    /// "click rate 1.8 s.d. above average (+0.72 to the log-odds)".
    public static func reason(_ feature: String, z: Double, contribution: Double) -> String {
        let p = phrase(feature)
        let c = "(\(contribution >= 0 ? "+" : "−")\(format2(abs(contribution))) to the log-odds)"
        if feature.hasPrefix("channel=") {  // a one-hot column: on it or not
            return (z >= 0 ? p.name : "not " + p.name) + " " + c
        }
        let side = z >= 0 ? "above" : "below"
        return "\(p.name) \(format1(abs(z))) s.d. \(side) average (\(contribution >= 0 ? "+" : "−")\(format2(abs(contribution))) to the log-odds)"
    }

    /// A user's top reasons: the `n` largest positive contributions w_j·z_j to the log-odds (above 0.05).
    public static func reasons(names: [String], weights: [Double], z: [Double], n: Int = 3) -> [String] {
        var c: [(j: Int, v: Double)] = []
        for j in z.indices {
            let v = weights[j] * z[j]
            if v > 0.05 { c.append((j, v)) }
        }
        c.sort { $0.v != $1.v ? $0.v > $1.v : $0.j < $1.j }
        return c.prefix(n).map { reason(names[$0.j], z: z[$0.j], contribution: $0.v) }
    }

    static func format2(_ x: Double) -> String { fixed(x, 2) }
    static func format1(_ x: Double) -> String { fixed(x, 1) }

    /// x with `digits` decimals, without Foundation (this module has none).
    public static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "0" }
        var m = 1.0
        for _ in 0..<digits { m *= 10 }
        let neg = x < 0
        let v = (abs(x) * m).rounded()
        let whole = Int(v / m)
        let frac = Int(v - Double(whole) * m)
        var f = String(frac)
        while f.count < digits { f = "0" + f }
        return (neg && v > 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + f : "")
    }
}
