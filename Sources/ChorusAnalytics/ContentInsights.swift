import ChorusModel
import Synchronization

/// A ridge-regularized Poisson regression with a log link and an exposure (offset), fitted by Newton's method
/// (IRLS) on sparse rows: E[y] = exposure · exp(x·β). For a post, y is its engagements and the exposure its
/// views, so exp(β_j) is the ratio of engagement rates (engagements per view) between a post with feature j and
/// one without, all else equal (docs/forecasting.md, "What makes content engage").
///
/// The objective is Σ wᵢ (μᵢ − yᵢ·xᵢβ) + λ/2 Σ_{j penalized} β_j² (w: a row's multiplicity, e.g. in a bootstrap
/// resample). The intercept (column 0) is never penalized.
public enum PoissonRegression {
    /// One observation: the columns and values of its non-zero features (the intercept, column 0, is implicit),
    /// the count and the exposure.
    public struct Row: Sendable, Equatable {
        public var columns: [Int32]
        public var values: [Double]
        public var count: Double
        public var exposure: Double
        public init(columns: [Int32], values: [Double], count: Double, exposure: Double) {
            self.columns = columns; self.values = values; self.count = count; self.exposure = exposure
        }
    }

    public struct Fit: Sendable {
        /// β: the intercept first, then one coefficient per feature column.
        public var beta: [Double]
        public var iterations: Int
        public var converged: Bool
    }

    /// Fits β for `dimension` columns (intercept included). `weights` (nil: all 1) multiplies each row;
    /// `start` is a warm start. Newton steps with step halving; stops when the largest change of β is below
    /// `tolerance` or after `maxIterations`. Deterministic: rows are added in their order.
    public static func fit(_ rows: [Row], dimension p: Int, lambda: Double, weights: [Double]? = nil,
                           start: [Double]? = nil, maxIterations: Int = 50, tolerance: Double = 1e-8) -> Fit {
        var beta = start ?? [Double](repeating: 0, count: p)
        if start == nil {
            var y = 0.0, e = 0.0
            for (i, r) in rows.enumerated() {
                let w = weights?[i] ?? 1
                y += w * r.count; e += w * r.exposure
            }
            beta[0] = y > 0 && e > 0 ? PortableMath.log(y / e) : 0
        }
        var current = objective(rows, beta, lambda: lambda, weights: weights)
        var g = [Double](repeating: 0, count: p)
        var h = [Double](repeating: 0, count: p * p)
        for it in 1...max(1, maxIterations) {
            for j in 0..<p { g[j] = 0 }
            for j in 0..<(p * p) { h[j] = 0 }
            for (i, r) in rows.enumerated() {
                let w = weights?[i] ?? 1
                if w == 0 { continue }
                let mu = r.exposure * PortableMath.exp(eta(r, beta))
                let resid = w * (mu - r.count), curv = w * mu
                g[0] += resid
                h[0] += curv
                for (a, ca) in r.columns.enumerated() {
                    let ja = Int(ca), va = r.values[a]
                    g[ja] += resid * va
                    h[ja] += curv * va           // row 0, column ja (upper triangle)
                    for b in a..<r.columns.count {
                        let jb = Int(r.columns[b])
                        let (lo, hi) = ja <= jb ? (ja, jb) : (jb, ja)
                        h[lo * p + hi] += curv * va * r.values[b]
                    }
                }
            }
            for j in 1..<p { g[j] += lambda * beta[j]; h[j * p + j] += lambda }
            // A tiny ridge keeps the Newton system solvable when a column is all zero in a resample.
            for j in 0..<p { h[j * p + j] += 1e-9 * max(1, h[j * p + j]) }
            for a in 0..<p { for b in (a + 1)..<max(a + 1, p) { h[b * p + a] = h[a * p + b] } }
            var step = g
            var hm = h
            guard Cholesky.solve(&hm, &step, n: p) else { return Fit(beta: beta, iterations: it, converged: false) }
            var t = 1.0
            var next = beta
            var value = current
            for _ in 0..<30 {
                for j in 0..<p { next[j] = beta[j] - t * step[j] }
                value = objective(rows, next, lambda: lambda, weights: weights)
                if value <= current + 1e-12 * abs(current) { break }
                t /= 2
            }
            var change = 0.0
            for j in 0..<p { change = max(change, abs(next[j] - beta[j])) }
            beta = next
            current = value
            if change < tolerance { return Fit(beta: beta, iterations: it, converged: true) }
        }
        return Fit(beta: beta, iterations: maxIterations, converged: false)
    }

    @inline(__always) static func eta(_ r: Row, _ beta: [Double]) -> Double {
        var s = beta[0]
        for (a, c) in r.columns.enumerated() { s += beta[Int(c)] * r.values[a] }
        return s
    }

    /// The penalized negative log-likelihood (without the constant log y! terms).
    public static func objective(_ rows: [Row], _ beta: [Double], lambda: Double, weights: [Double]? = nil) -> Double {
        var s = 0.0
        for (i, r) in rows.enumerated() {
            let w = weights?[i] ?? 1
            if w == 0 { continue }
            let e = eta(r, beta)
            s += w * (r.exposure * PortableMath.exp(e) - r.count * (e + PortableMath.log(max(r.exposure, 1e-300))))
        }
        var pen = 0.0
        for j in 1..<beta.count { pen += beta[j] * beta[j] }
        return s + lambda / 2 * pen
    }

    /// Mean Poisson deviance of `rows` under β: 2/n Σ [y log(y/μ) − (y − μ)] (the dev-split score for λ).
    public static func meanDeviance(_ rows: [Row], _ beta: [Double]) -> Double {
        guard !rows.isEmpty else { return 0 }
        var s = 0.0
        for r in rows {
            let mu = r.exposure * PortableMath.exp(eta(r, beta))
            s += (r.count > 0 ? r.count * PortableMath.log(r.count / mu) : 0) - (r.count - mu)
        }
        return 2 * s / Double(rows.count)
    }

    /// Bootstrap resample `b` of `n` rows as multiplicities (n draws with replacement), from a seed: the same
    /// resample for the same (seed, b, n) on every machine.
    public static func resampleWeights(n: Int, seed: UInt64, index b: Int) -> [Double] {
        var g = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(b) &* 0xD1B5_4A32_D192_ED03 &+ 1)
        var w = [Double](repeating: 0, count: n)
        for _ in 0..<n { w[g.below(n)] += 1 }
        return w
    }

    /// The `q` quantile (0...1) of `values` by linear interpolation between order statistics.
    public static func quantile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let s = values.sorted()
        let pos = q * Double(s.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, s.count - 1)
        return s[lo] + (pos - Double(lo)) * (s[hi] - s[lo])
    }
}

/// What `content-insights` knows about one post (gathered from its partition, and from its author's).
public struct PostAttributes: Sendable, Equatable {
    public var id: String
    public var channel: String
    /// The post's first topic ("" when it has none).
    public var topic: String
    public var hashtags: [String]
    public var mediaType: String
    /// Hour (0–23, UTC) and day of week (0 = Monday … 6 = Sunday) of `created_at`.
    public var hour: Int
    public var day: Int
    /// Characters of the text (grapheme clusters); nil when the post has no text.
    public var textLength: Int?
    /// The post's own sentiment label ("positive", "neutral", "negative") from a `sentiment` job; nil without one.
    public var sentiment: String?
    /// Whether the author is in the top 10% by PageRank (from an `influence` job); nil without one.
    public var topAuthor: Bool?
    public var views: Double
    public var engagements: Double

    public init(id: String, channel: String, topic: String, hashtags: [String], mediaType: String, hour: Int, day: Int,
                textLength: Int?, sentiment: String? = nil, topAuthor: Bool? = nil, views: Double, engagements: Double) {
        self.id = id; self.channel = channel; self.topic = topic; self.hashtags = hashtags; self.mediaType = mediaType
        self.hour = hour; self.day = day; self.textLength = textLength; self.sentiment = sentiment
        self.topAuthor = topAuthor; self.views = views; self.engagements = engagements
    }

    /// Day of week (0 = Monday) and hour (UTC) of a Unix time in seconds.
    public static func slot(of t: Int64) -> (day: Int, hour: Int) {
        let days = t >= 0 ? t / 86400 : (t - 86399) / 86400
        let hour = Int((t - days * 86400) / 3600)
        // 1970-01-01 was a Thursday (3 with Monday = 0).
        let day = Int(((days + 3) % 7 + 7) % 7)
        return (day, hour)
    }

    /// The text-length bucket: "short" under 80 characters, "medium" 80–139, "long" 140 or more; "none" without text.
    public static func lengthBucket(_ n: Int?) -> String {
        guard let n else { return "none" }
        return n < 80 ? "short" : (n < 140 ? "medium" : "long")
    }
}

/// The design of the content regression: which features exist, their reference levels, and the sparse rows.
public struct ContentDesign: Sendable {
    public struct Feature: Sendable, Equatable {
        /// channel, topic, hashtag, media_type, text_length, sentiment, author_influence, hour, day.
        public var group: String
        public var level: String
        public var reference: String
        /// For hour and day: the channel the slot is on ("" for the other groups).
        public var channel: String
        public init(group: String, level: String, reference: String, channel: String) {
            self.group = group; self.level = level; self.reference = reference; self.channel = channel
        }
    }

    /// Column 0 is the intercept; feature j is column j + 1.
    public var features: [Feature]
    public var rows: [PoissonRegression.Row]
    /// The post of each row (posts without views are left out).
    public var postIDs: [String]
    public var dimension: Int { features.count + 1 }

    public static let dayNames = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

    /// Builds the design. Categorical groups get one indicator per level except the reference; a level with fewer
    /// than `minPosts` posts is pooled with the reference. References: image (media type), short (text length),
    /// neutral (sentiment), without the hashtag, not a top author, Monday (day), and the most frequent level for
    /// channel, topic and hour (ties: the smallest name). Hour and day are common to the posts fitted (a channel's
    /// own slots come from the fit on that channel alone). The `topHashtags` most frequent hashtags (by posts, at least `minPosts`) get an indicator each.
    public static func build(_ posts: [PostAttributes], topHashtags: Int, minPosts: Int) -> ContentDesign {
        let used = posts.filter { $0.views > 0 }.sorted { $0.id < $1.id }
        var features: [Feature] = []
        var index: [String: Int] = [:]  // "group\u{0}channel\u{0}level" → column
        func key(_ g: String, _ c: String, _ l: String) -> String { g + "\u{0}" + c + "\u{0}" + l }

        func counts(_ values: [String]) -> [(String, Int)] {
            var c: [String: Int] = [:]
            for v in values { c[v, default: 0] += 1 }
            return c.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        }
        func categorical(_ group: String, channel: String = "", _ values: [String], reference fixed: String?) {
            let c = counts(values)
            guard c.count > 1 else { return }
            let ref = fixed.flatMap { f in c.contains { $0.0 == f } ? f : nil } ?? c[0].0
            for (level, n) in c.sorted(by: { $0.0 < $1.0 }) where level != ref && n >= minPosts {
                index[key(group, channel, level)] = features.count + 1
                features.append(Feature(group: group, level: level, reference: ref, channel: channel))
            }
        }
        categorical("channel", used.map(\.channel), reference: nil)
        categorical("topic", used.map(\.topic), reference: nil)
        categorical("media_type", used.map(\.mediaType), reference: "image")
        categorical("text_length", used.map { PostAttributes.lengthBucket($0.textLength) }, reference: "short")
        if used.contains(where: { $0.sentiment != nil }) {
            categorical("sentiment", used.map { $0.sentiment ?? "unscored" }, reference: "neutral")
        }
        if used.contains(where: { $0.topAuthor != nil }) {
            categorical("author_influence", used.map { $0.topAuthor == true ? "top 10%" : "rest" }, reference: "rest")
        }
        var tagPosts: [String: Int] = [:]
        for p in used { for t in Set(p.hashtags) { tagPosts[t, default: 0] += 1 } }
        let tags = tagPosts.filter { $0.value >= minPosts && $0.value < used.count }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(max(0, topHashtags)).map(\.key).sorted()
        for t in tags {
            index[key("hashtag", "", t)] = features.count + 1
            features.append(Feature(group: "hashtag", level: t, reference: "without it", channel: ""))
        }
        categorical("hour", used.map { String(format2: $0.hour) }, reference: nil)
        categorical("day", used.map { dayNames[$0.day] }, reference: "Monday")

        var rows: [PoissonRegression.Row] = []
        rows.reserveCapacity(used.count)
        for p in used {
            var cols: [Int32] = []
            func add(_ g: String, _ c: String, _ l: String) { if let j = index[key(g, c, l)] { cols.append(Int32(j)) } }
            add("channel", "", p.channel)
            add("topic", "", p.topic)
            add("media_type", "", p.mediaType)
            add("text_length", "", PostAttributes.lengthBucket(p.textLength))
            add("sentiment", "", p.sentiment ?? "unscored")
            if let a = p.topAuthor { add("author_influence", "", a ? "top 10%" : "rest") }
            for t in Set(p.hashtags).sorted() { add("hashtag", "", t) }
            add("hour", "", String(format2: p.hour))
            add("day", "", dayNames[p.day])
            cols.sort()
            rows.append(.init(columns: cols, values: [Double](repeating: 1, count: cols.count),
                              count: p.engagements, exposure: p.views))
        }
        return ContentDesign(features: features, rows: rows, postIDs: used.map(\.id))
    }
}

extension String {
    /// Two digits ("07").
    init(format2 n: Int) { self = n < 10 ? "0\(n)" : String(n) }
}

/// The content regression end to end: λ chosen on a dev split, the fit on all posts, bootstrap intervals.
public enum ContentInsights {
    public struct Effect: Sendable {
        public var feature: ContentDesign.Feature
        /// Log rate ratio and its percentile-bootstrap interval.
        public var estimate: Double
        public var low: Double
        public var high: Double
        public var posts: Int
        public var words: String
    }

    public struct Result: Sendable {
        public var effects: [Effect]
        public var intercept: Double
        /// The λ of the reported fit, and the dev-split λ (nil without dev posts).
        public var lambda: Double
        public var devLambda: Double?
        /// (λ, mean dev deviance) for each λ tried.
        public var grid: [(lambda: Double, devDeviance: Double)]
        public var posts: Int
        public var views: Double
        public var engagements: Double
        public var bootstrap: Int
        public var converged: Bool
    }

    public static let lambdaGrid: [Double] = [0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000]

    /// Whether a post is in the dev split (20% of posts, by a hash of its id: the same split on every run).
    public static func isDev(_ id: String) -> Bool {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h % 5 == 0
    }

    /// The dev-split λ: the grid value with the lowest mean Poisson deviance on the dev posts of a fit on the
    /// others (ties: the larger λ), always computed and reported. The effects are fitted at `lambda`, or at the
    /// dev-split λ when `chooseLambda` (a prediction-tuned λ shrinks the well-measured effects toward 0, so its
    /// intervals cover the shrunk value, not the effect: docs/forecasting.md). Then `bootstrap` resamples of the
    /// posts (percentile intervals at `level`). `parallel` runs fits concurrently (each has its own seeded resample
    /// and its own slot in the output, so the result does not depend on the scheduling).
    public static func run(_ design: ContentDesign, lambda fixed: Double, chooseLambda: Bool, bootstrap: Int,
                           level: Double, seed: UInt64,
                           parallel: (Int, @escaping @Sendable (Int) -> Void) -> Void = { n, body in for i in 0..<n { body(i) } })
        -> Result {
        let p = design.dimension
        var grid: [(lambda: Double, devDeviance: Double)] = []
        var devLambda: Double?
        let dev = design.postIDs.map(isDev)
        let train = zip(design.rows, dev).filter { !$0.1 }.map(\.0)
        let test = zip(design.rows, dev).filter { $0.1 }.map(\.0)
        if !train.isEmpty, !test.isEmpty {
            var best = Double.infinity
            let box = UnsafeBox([Double](repeating: .infinity, count: lambdaGrid.count))
            parallel(lambdaGrid.count) { i in
                let f = PoissonRegression.fit(train, dimension: p, lambda: lambdaGrid[i])
                box.set(i, PoissonRegression.meanDeviance(test, f.beta))
            }
            let results = box.values
            for (i, l) in lambdaGrid.enumerated() {
                grid.append((l, results[i]))
                if results[i] <= best { best = results[i]; devLambda = l }
            }
        }
        let lambda = chooseLambda ? (devLambda ?? fixed) : fixed
        let chosen = lambda
        let full = PoissonRegression.fit(design.rows, dimension: p, lambda: chosen)
        let n = design.rows.count
        let rows = design.rows, start = full.beta
        let box = UnsafeBox([[Double]](repeating: [], count: bootstrap))
        parallel(bootstrap) { b in
            let w = PoissonRegression.resampleWeights(n: n, seed: seed, index: b)
            box.set(b, PoissonRegression.fit(rows, dimension: p, lambda: chosen, weights: w, start: start).beta)
        }
        let draws = box.values
        var postsPer = [Int](repeating: 0, count: p)
        for r in design.rows { for c in r.columns { postsPer[Int(c)] += 1 } }
        let alpha = (1 - level) / 2
        var effects: [Effect] = []
        for (j, f) in design.features.enumerated() {
            let col = j + 1
            let samples = draws.compactMap { $0.count == p ? $0[col] : nil }
            let lo = samples.isEmpty ? Double.nan : PoissonRegression.quantile(samples, alpha)
            let hi = samples.isEmpty ? Double.nan : PoissonRegression.quantile(samples, 1 - alpha)
            effects.append(Effect(feature: f, estimate: full.beta[col], low: lo, high: hi, posts: postsPer[col],
                                  words: describe(f, full.beta[col], lo, hi)))
        }
        return Result(effects: effects, intercept: full.beta[0], lambda: lambda, devLambda: devLambda, grid: grid, posts: n,
                      views: design.rows.reduce(0) { $0 + $1.exposure },
                      engagements: design.rows.reduce(0) { $0 + $1.count }, bootstrap: bootstrap,
                      converged: full.converged)
    }

    /// "+38%" for a log rate ratio of log(1.38).
    public static func percent(_ logRatio: Double) -> String {
        guard logRatio.isFinite else { return "?" }
        let v = 100 * (PortableMath.exp(logRatio) - 1)
        let r = (v * 1).rounded()
        return (r > 0 ? "+" : (r < 0 ? "−" : "")) + String(Int(abs(r))) + "%"
    }

    /// A driver in words: "video posts: +38% engagement rate [+29%, +47%] vs image".
    public static func describe(_ f: ContentDesign.Feature, _ b: Double, _ lo: Double, _ hi: Double) -> String {
        let subject: String, versus: String
        switch f.group {
        case "media_type": subject = "\(f.level) posts"; versus = f.reference
        case "hashtag": subject = "posts with \(f.level)"; versus = "posts without it"
        case "text_length":
            func span(_ l: String) -> String {
                switch l {
                case "short": return "short text (under 80 characters)"
                case "medium": return "medium text (80–139 characters)"
                case "long": return "long text (140+ characters)"
                default: return "no text"
                }
            }
            subject = "posts with " + span(f.level); versus = span(f.reference)
        case "topic": subject = "\(f.level) posts"; versus = f.reference
        case "channel": subject = "posts on \(f.level)"; versus = f.reference
        case "sentiment": subject = "\(f.level) posts"; versus = f.reference
        case "author_influence": subject = "posts by top-10% authors (PageRank)"; versus = "the other authors"
        case "hour": subject = "posts at \(f.level):00 UTC"; versus = "\(f.reference):00"
        case "day": subject = "posts on \(f.level)"; versus = f.reference
        default: subject = "\(f.group)=\(f.level)"; versus = f.reference
        }
        return "\(subject): \(percent(b)) engagement rate [\(percent(lo)), \(percent(hi))] vs \(versus)"
    }

    /// The top `n` positive and negative drivers: effects whose interval excludes 0, largest first.
    public static func drivers(_ effects: [Effect], n: Int) -> (positive: [Effect], negative: [Effect]) {
        let pos = effects.filter { $0.low > 0 }.sorted { $0.estimate != $1.estimate ? $0.estimate > $1.estimate : $0.words < $1.words }
        let neg = effects.filter { $0.high < 0 }.sorted { $0.estimate != $1.estimate ? $0.estimate < $1.estimate : $0.words < $1.words }
        return (Array(pos.prefix(n)), Array(neg.prefix(n)))
    }
}

/// Results written from concurrent iterations, one slot each.
final class UnsafeBox<T: Sendable>: Sendable {
    private let storage: Mutex<[T]>
    init(_ v: [T]) { storage = Mutex(v) }
    func set(_ i: Int, _ v: T) { storage.withLock { $0[i] = v } }
    var values: [T] { storage.withLock { $0 } }
}
