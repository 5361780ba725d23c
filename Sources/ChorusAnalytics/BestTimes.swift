import Foundation

/// Best time to post: the expected engagement per post published in each hour of the week, with shrinkage and
/// intervals, and the rule that recommends slots (docs/forecasting.md "Best time to post").
///
/// A post's expected engagement = its exposure (views) × its engagement per view. The two factors are estimated
/// separately on the log scale, because views per post are heavy-tailed (a post's engagement count is mostly its
/// reach) while engagement per view is much less noisy:
///
/// - per slot, engagement per view is the ratio estimator Σ engagements / Σ views over the slot's posts; its
///   log-variance is 1 / Σ e + φ · Σ x_i² / (Σ x)²: Poisson, plus a multiplicative per-post effect of variance φ
///   pooled over the channel's slots (so a slot whose engagement rests on one big post is uncertain, and a slot
///   with few posts does not get a small variance by chance);
/// - views per post is the same ratio with the post as denominator (Σ x_i / n), modelled as day + hour only (its
///   heavy tail makes a slot's own mean of a few posts too noisy);
/// - each is shrunk by empirical Bayes (normal on the log scale): the 24 hours and the 7 days toward the channel
///   mean, then each of the 168 slots toward the additive day + hour profile; the spread τ² of each level is the
///   Paule–Mandel estimate (Σ (y − μ)² / (σ² + w + τ²) = K), 0 when the deviations are no larger than their noise,
///   so thin or flat data fall back to the profile, and a flat profile to the channel mean.
/// - a segment's slots are shrunk toward the channel's slot estimates, shifted by the segment's overall level.
///
/// The data may have no views at all (exports with only likes and shares): then the exposure of a post is the
/// post itself, and the score is engagements per post.
public enum BestTimes {
    public static let slotCount = 168

    /// Day of week (0 = Monday … 6 = Sunday) and hour (UTC) of a unix time.
    public static func dayHour(_ ts: Int64) -> (day: Int, hour: Int) {
        let days = ts >= 0 ? ts / 86400 : (ts - 86399) / 86400
        let secs = ts - days * 86400
        // 1970-01-01 was a Thursday (3 with Monday = 0).
        let day = Int(((days + 3) % 7 + 7) % 7)
        return (day, Int(secs / 3600))
    }

    public static func slot(_ ts: Int64) -> Int { let (d, h) = dayHour(ts); return d * 24 + h }

    public static let dayNames = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

    public static func slotName(_ s: Int) -> String { dayNames[s / 24] + " " + String(format: "%02d:00", s % 24) }

    /// Sufficient statistics over posts: n posts, Σ engagements e, Σ exposure x, and the second moments. Exact
    /// integer sums, so the merge order never changes a result.
    public struct Moments: Sendable, Equatable, Codable {
        public var n: UInt64 = 0
        public var e: UInt64 = 0
        public var x: UInt64 = 0
        public var ee: UInt64 = 0
        public var xx: UInt64 = 0
        public var ex: UInt64 = 0
        public init() {}
        public init(n: UInt64, e: UInt64, x: UInt64, ee: UInt64, xx: UInt64, ex: UInt64) {
            self.n = n; self.e = e; self.x = x; self.ee = ee; self.xx = xx; self.ex = ex
        }
        /// One post with `engagements` and `exposure`.
        public mutating func add(engagements: UInt64, exposure: UInt64) {
            n += 1; e += engagements; x += exposure
            ee += engagements * engagements; xx += exposure * exposure; ex += engagements * exposure
        }
        public mutating func merge(_ o: Moments) {
            n += o.n; e += o.e; x += o.x; ee += o.ee; xx += o.xx; ex += o.ex
        }
        /// `posts` posts without engagements, each with `exposure` (a segment's posts it did not reach).
        public mutating func addEmpty(_ posts: UInt64, exposure: UInt64 = 0) {
            n += posts; x += posts * exposure; xx += posts * exposure * exposure
        }
    }

    /// A group's log ratio y = log(Σ num / Σ den), and the parts of its variance: a Poisson part 1 / Σ num and a
    /// spread part Σ den_i² / (Σ den)², which the channel's dispersion multiplies (`variance(phi:)`).
    struct Obs {
        var y: Double?
        var poisson: Double
        var spread: Double
        /// Σ (num_i − r·den_i)², the squared residuals of the group's own ratio r, and Σ num, r²·Σ den_i²: the
        /// channel's dispersion is pooled from them.
        var residual: Double
        var num: Double
        var scale: Double
        func variance(_ phi: Double) -> Double { y == nil ? .infinity : poisson + phi * spread }
    }

    /// log(Σnum / Σden) with half a pseudo-count at the reference ratio `ref` (an empty group stays finite).
    static func logRatio(n: Double, num: Double, den: Double, numSq: Double, denSq: Double, cross: Double,
                         ref: Double) -> Obs {
        guard den > 0, n > 0 else { return Obs(y: nil, poisson: .infinity, spread: 0, residual: 0, num: 0, scale: 0) }
        let r = num / den
        let y = log((num + 0.5) / (den + 0.5 / max(ref, 1e-12)))
        let residual = max(0, numSq - 2 * r * cross + r * r * denSq)
        return Obs(y: y, poisson: 1 / (num + 0.5), spread: denSq / (den * den), residual: residual, num: num,
                   scale: r * r * denSq)
    }

    /// The dispersion between posts, pooled over groups: a post's numerator has variance μ_i + φ·μ_i² (Poisson, and
    /// a multiplicative per-post effect of variance φ), so φ = (Σ residuals − Σ num) / Σ r²·den_i², at least 0.
    static func dispersion(_ obs: [Obs]) -> Double {
        let scale = obs.reduce(0) { $0 + $1.scale }
        guard scale > 0 else { return 0 }
        return max(0, (obs.reduce(0) { $0 + $1.residual } - obs.reduce(0) { $0 + $1.num }) / scale)
    }

    /// Engagement per exposure of a group of posts.
    static func rateObs(_ m: Moments, ref: Double) -> Obs {
        logRatio(n: Double(m.n), num: Double(m.e), den: Double(m.x), numSq: Double(m.ee), denSq: Double(m.xx),
                 cross: Double(m.ex), ref: ref)
    }

    /// Exposure per post of a group of posts.
    static func viewsObs(_ m: Moments, ref: Double) -> Obs {
        logRatio(n: Double(m.n), num: Double(m.x), den: Double(m.n), numSq: Double(m.xx), denSq: Double(m.n),
                 cross: Double(m.x), ref: ref)
    }

    /// Empirical-Bayes shrinkage of observations toward prior means `mu` (with their own variance `w`): the
    /// Paule–Mandel τ², then each posterior mean and variance (no observation: the prior with variance τ² + w).
    public static func shrink(y: [Double?], s2: [Double], mu: [Double], w: [Double]) -> (theta: [Double], v: [Double], tau2: Double) {
        let idx = y.indices.filter { y[$0] != nil && s2[$0].isFinite }
        func q(_ t: Double) -> Double {
            idx.reduce(0) { acc, i in let d = y[i]! - mu[i]; return acc + d * d / (s2[i] + w[i] + t) }
        }
        var tau2 = 0.0
        let k = Double(idx.count)
        if idx.count >= 2, q(0) > k {
            var lo = 0.0, hi = 1.0
            while q(hi) > k, hi < 1e6 { hi *= 2 }
            for _ in 0..<100 { let mid = (lo + hi) / 2; if q(mid) > k { lo = mid } else { hi = mid } }
            tau2 = (lo + hi) / 2
        }
        var theta = mu, v = [Double](repeating: 0, count: y.count)
        for i in y.indices {
            let p = tau2 + w[i]
            guard let yi = y[i], s2[i].isFinite else { v[i] = p; continue }
            if p <= 0 { theta[i] = mu[i]; v[i] = 0; continue }
            let prec = 1 / s2[i] + 1 / p
            theta[i] = (yi / s2[i] + mu[i] / p) / prec
            v[i] = 1 / prec
        }
        return (theta, v, tau2)
    }

    /// One factor (rate or views) of one group, at every level of the hierarchy.
    public struct Factor: Sendable, Equatable, Codable {
        /// Log of the pooled value, and its variance.
        public var mean: Double
        public var meanVariance: Double
        public var hour: [Double], hourVariance: [Double]
        public var day: [Double], dayVariance: [Double]
        public var slot: [Double], slotVariance: [Double]
        public var tau2Hour: Double, tau2Day: Double, tau2Slot: Double
        /// The dispersion between posts (variance of the per-post multiplicative effect), pooled over the slots.
        public var dispersion: Double
        /// The raw per-slot log value (nil: no data).
        public var raw: [Double?]

        /// A factor that is exactly 1 (log 0) with no uncertainty: the views factor when exposure is the post.
        static let one = Factor(mean: 0, meanVariance: 0, hour: .init(repeating: 0, count: 24), hourVariance: .init(repeating: 0, count: 24),
                                day: .init(repeating: 0, count: 7), dayVariance: .init(repeating: 0, count: 7),
                                slot: .init(repeating: 0, count: 168), slotVariance: .init(repeating: 0, count: 168),
                                tau2Hour: 0, tau2Day: 0, tau2Slot: 0, dispersion: 0, raw: .init(repeating: 0, count: 168))
    }

    /// Fits one factor: channel mean → hours and days → slots (additive day + hour prior). `parent`: a segment's
    /// slots are shrunk toward the parent's slots shifted by the segment's own mean (then no hour/day level).
    /// `slotLevel` false: the slots are the additive profile only (no slot's own deviation).
    static func fit(_ slots: [Moments], obs: (Moments, Double) -> Obs, parent: Factor?, slotLevel: Bool = true) -> Factor? {
        var total = Moments()
        for m in slots { total.merge(m) }
        guard let pooled = obs(total, 1).y else { return nil }
        // The reference for the pseudo-count: the pooled ratio without it.
        let ref = exp(pooled)
        let raw = slots.map { obs($0, ref) }
        let phi = dispersion(raw)
        let t = obs(total, ref)
        let mean = t.y!, meanVar = t.variance(phi)
        if let parent {
            let shift = mean - parent.mean
            let shiftVar = meanVar + parent.meanVariance
            let mu = parent.slot.map { $0 + shift }
            let w = parent.slotVariance.map { $0 + shiftVar }
            let s = slotLevel ? shrink(y: raw.map(\.y), s2: raw.map { $0.variance(phi) }, mu: mu, w: w) : (theta: mu, v: w, tau2: 0)
            return Factor(mean: mean, meanVariance: meanVar, hour: parent.hour.map { $0 + shift }, hourVariance: parent.hourVariance,
                          day: parent.day.map { $0 + shift }, dayVariance: parent.dayVariance,
                          slot: s.theta, slotVariance: s.v, tau2Hour: parent.tau2Hour, tau2Day: parent.tau2Day, tau2Slot: s.tau2,
                          dispersion: phi, raw: raw.map(\.y))
        }
        var hours = [Moments](repeating: Moments(), count: 24), days = [Moments](repeating: Moments(), count: 7)
        for (s, m) in slots.enumerated() { hours[s % 24].merge(m); days[s / 24].merge(m) }
        let ho = hours.map { obs($0, ref) }, dob = days.map { obs($0, ref) }
        let h = shrink(y: ho.map(\.y), s2: ho.map { $0.variance(phi) }, mu: .init(repeating: mean, count: 24),
                       w: .init(repeating: meanVar, count: 24))
        let d = shrink(y: dob.map(\.y), s2: dob.map { $0.variance(phi) }, mu: .init(repeating: mean, count: 7),
                       w: .init(repeating: meanVar, count: 7))
        var mu = [Double](repeating: 0, count: slotCount), w = mu
        for s in 0..<slotCount {
            mu[s] = h.theta[s % 24] + d.theta[s / 24] - mean
            w[s] = h.v[s % 24] + d.v[s / 24]
        }
        let sl = slotLevel ? shrink(y: raw.map(\.y), s2: raw.map { $0.variance(phi) }, mu: mu, w: w) : (theta: mu, v: w, tau2: 0)
        return Factor(mean: mean, meanVariance: meanVar, hour: h.theta, hourVariance: h.v, day: d.theta, dayVariance: d.v,
                      slot: sl.theta, slotVariance: sl.v, tau2Hour: h.tau2, tau2Day: d.tau2, tau2Slot: sl.tau2,
                      dispersion: phi, raw: raw.map(\.y))
    }

    /// Both factors of one group (a channel, or a segment within a channel).
    public struct Fit: Sendable, Equatable, Codable {
        public var rate: Factor
        public var views: Factor
        /// Whether the exposure is views (false: every post is one exposure and the score is engagements per post).
        public var perView: Bool
    }

    /// Fits a channel (parent nil) or a segment of it. nil: no post has any exposure.
    public static func fit(_ slots: [Moments], perView: Bool, parent: Fit? = nil) -> Fit? {
        precondition(slots.count == slotCount)
        guard let rate = fit(slots, obs: rateObs, parent: parent?.rate) else { return nil }
        let views: Factor
        if perView {
            // Views per post are heavy-tailed: a slot's own mean of a few posts is too noisy to shrink by a normal
            // model (it inflates τ²), so reach is modelled as day + hour only.
            guard let v = fit(slots, obs: viewsObs, parent: parent?.views, slotLevel: false) else { return nil }
            views = v
        } else {
            views = .one
        }
        return Fit(rate: rate, views: views, perView: perView)
    }

    /// One slot's estimate: expected engagements per post, its interval, and what it was estimated from.
    public struct Slot: Sendable, Equatable {
        public var slot: Int
        public var posts: UInt64
        public var exposure: UInt64
        public var engagements: UInt64
        /// exp(log score): the expected engagements per post published in the slot.
        public var score: Double
        public var lower: Double
        public var upper: Double
        public var logScore: Double
        public var logVariance: Double
        /// Engagement per exposure (shrunk), and exposure per post (shrunk).
        public var rate: Double
        public var viewsPerPost: Double
        /// The raw engagements per post of the slot (nil: no posts).
        public var rawPerPost: Double?
    }

    /// The scored week of one group, the median slot and the recommendation.
    public struct Week: Sendable, Equatable {
        public var slots: [Slot]
        public var medianSlot: Int
        /// Recommended slots, best first (empty: no clear best time).
        public var recommended: [Int]
        /// Per recommended slot: the lower bound of its ratio to the median slot at the simultaneous level.
        public var liftLower: [Double]
        public var level: Double
        public var zInterval: Double
        public var zRule: Double
        public var posts: UInt64
    }

    /// Φ⁻¹(p) by bisection on erfc (|error| < 1e-12).
    public static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1)
        var lo = -40.0, hi = 40.0
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if 0.5 * erfc(-mid / 2.0.squareRoot()) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }

    /// The rule, in words (docs, summaries).
    public static func ruleText(level: Double) -> String {
        "a slot is recommended when the lower bound of its expected engagement per post over the median slot's is above 1 "
            + "at the simultaneous \(Int((level * 100).rounded()))% level (one-sided, Bonferroni over the 168 slots), and it has at least `min_posts` posts; at most `top`, best first"
    }

    /// Scores the 168 slots of a fit: `level`-intervals (two-sided, per slot), the median slot, and the slots
    /// whose score beats the median's beyond both uncertainties at the simultaneous level (Bonferroni over 168).
    public static func week(_ fit: Fit, slots m: [Moments], level: Double, top: Int, minPosts: Int = 5) -> Week {
        let z = normalQuantile(0.5 + level / 2)
        let zRule = normalQuantile(1 - (1 - level) / Double(slotCount))
        var out: [Slot] = []
        for s in 0..<slotCount {
            let ls = fit.rate.slot[s] + fit.views.slot[s]
            let v = fit.rate.slotVariance[s] + fit.views.slotVariance[s]
            let sd = v.squareRoot()
            out.append(Slot(slot: s, posts: m[s].n, exposure: m[s].x, engagements: m[s].e, score: exp(ls),
                            lower: exp(ls - z * sd), upper: exp(ls + z * sd), logScore: ls, logVariance: v,
                            rate: exp(fit.rate.slot[s]), viewsPerPost: exp(fit.views.slot[s]),
                            rawPerPost: m[s].n > 0 ? Double(m[s].e) / Double(m[s].n) : nil))
        }
        // The median slot: the lower median by score (ties by slot).
        let order = out.sorted { ($0.logScore, $1.slot) > ($1.logScore, $0.slot) }
        let median = order[slotCount / 2]
        var rec: [Int] = [], lifts: [Double] = []
        for s in order where rec.count < top && s.posts >= UInt64(minPosts) {
            let lower = s.logScore - median.logScore - zRule * (s.logVariance + median.logVariance).squareRoot()
            if lower > 0 { rec.append(s.slot); lifts.append(exp(lower)) }
        }
        return Week(slots: out, medianSlot: median.slot, recommended: rec, liftLower: lifts, level: level, zInterval: z,
                    zRule: zRule, posts: m.reduce(0) { $0 + $1.n })
    }

    // MARK: - per-user hours (profile section `timing`)

    /// A user's active hours (top `n` by all their interactions) and best hours (top `n` by their engagements,
    /// each hour's share shrunk toward the channel's engagement share with `strength` pseudo-engagements).
    public static func userHours(interactions: [UInt32], engagements: [UInt32], channelShare: [Double],
                                 strength: Double = 10, n: Int = 3) -> (active: [Int], best: [Int], bestShare: [Double]) {
        precondition(interactions.count == 24 && engagements.count == 24 && channelShare.count == 24)
        let active = (0..<24).filter { interactions[$0] > 0 }
            .sorted { (interactions[$0], $1) > (interactions[$1], $0) }.prefix(n)
        let total = Double(engagements.reduce(0) { $0 + Int($1) })
        let share = (0..<24).map { (Double(engagements[$0]) + strength * channelShare[$0]) / (total + strength) }
        let best = (0..<24).sorted { (share[$0], $1) > (share[$1], $0) }.prefix(n)
        return (Array(active), Array(best), best.map { share[$0] })
    }
}
