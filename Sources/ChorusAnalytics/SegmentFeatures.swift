import ChorusModel

/// The per-user raw features the `segments` job clusters on (docs/audience.md "Segments"), by group. Each feature
/// has a name ("type:share", "channel:tiktok", "hours:20-23", "topic:gaming", "als:3", "attitude:topic:tech");
/// the job standardizes them with moments over the whole audience and weights each group to the same total
/// variance. Pure: no I/O.
public enum SegmentFeatures {
    public enum Group: String, CaseIterable, Sendable {
        /// Engagement rate, activity by type, recency, frequency, volume.
        case behaviour
        /// Share of the user's interactions on each channel.
        case channels
        /// Share of the user's interactions in each 4-hour block of the UTC day.
        case hours
        /// Share of the user's interest weight per topic (the profile's top topics).
        case interests
        /// The ALS embedding (when an `als` job has run).
        case embedding
        /// Mean comment sentiment per topic (when a `sentiment` job has run).
        case attitudes

        /// Whether a user without the feature gets the audience mean (true: "unknown") or a raw 0 (false: "none").
        public var imputesMean: Bool { self == .embedding || self == .attitudes || self == .behaviour }

        public static func of(_ name: String) -> Group {
            if name.hasPrefix("channel:") { return .channels }
            if name.hasPrefix("hours:") { return .hours }
            if name.hasPrefix("topic:") { return .interests }
            if name.hasPrefix("als:") { return .embedding }
            if name.hasPrefix("attitude:") { return .attitudes }
            return .behaviour
        }
    }

    /// The hour blocks of the `hours` group.
    public static let hourBlocks: [String] = [
        "hours:00-03", "hours:04-07", "hours:08-11", "hours:12-15", "hours:16-19", "hours:20-23",
    ]

    public static let types = ["view", "like", "comment", "share", "click", "conversion", "rating"]

    /// The raw named features of one user in the chosen groups. `factors`: the ALS embedding (nil: none);
    /// `attitudes`: mean sentiment score per key ("topic:tech") with the comments behind it.
    public static func raw(_ f: UserFeatures, factors: [Float]?, attitudes: [String: (score: Double, comments: Int)],
                           groups: Set<Group>) -> [(String, Double)] {
        var out: [(String, Double)] = []
        let n = Double(max(f.interactions, 1))
        if groups.contains(.behaviour) {
            out.append(("engagement_rate", f.engagementRate))
            for t in types {
                let c = f.countsByType[t] ?? 0
                out.append(("type:" + t, Double(c) / n))
            }
            out.append(("log_interactions", PortableMath.log(1 + Double(f.interactions))))
            out.append(("recency_days", f.recencyDays))
            out.append(("frequency", f.frequency))
            out.append(("log_followers", PortableMath.log(1 + Double(f.followers))))
        }
        if groups.contains(.channels) {
            if f.interactions > 0 {
                for (ch, c) in f.countsByChannel where c > 0 { out.append(("channel:" + ch, Double(c) / n)) }
            } else if !f.channel.isEmpty {
                out.append(("channel:" + f.channel, 1))
            }
        }
        if groups.contains(.hours), f.activeHours.count == 24 {
            let total = Double(max(f.activeHours.reduce(0, +), 1))
            for (b, name) in hourBlocks.enumerated() {
                let c = f.activeHours[(b * 4)..<(b * 4 + 4)].reduce(0, +)
                out.append((name, Double(c) / total))
            }
        }
        if groups.contains(.interests) {
            let total = f.topTopics.reduce(0) { $0 + $1.weight }
            if total > 0 { for t in f.topTopics where t.weight > 0 { out.append(("topic:" + t.name, t.weight / total)) } }
        }
        if groups.contains(.embedding), let factors {
            for (i, v) in factors.enumerated() { out.append(("als:" + String(i), Double(v))) }
        }
        if groups.contains(.attitudes) {
            for (key, a) in attitudes where key.hasPrefix("topic:") && a.comments > 0 {
                out.append(("attitude:" + key, a.score))
            }
        }
        return out
    }

    /// Orders names for the vector's layout: by group (in `Group.allCases` order), then by name; the `als:` dims
    /// by number.
    public static func layoutOrder(_ a: String, _ b: String) -> Bool {
        let ga = Group.allCases.firstIndex(of: Group.of(a))!, gb = Group.allCases.firstIndex(of: Group.of(b))!
        if ga != gb { return ga < gb }
        if a.hasPrefix("als:"), b.hasPrefix("als:"), let x = Int(a.dropFirst(4)), let y = Int(b.dropFirst(4)) { return x < y }
        return a < b
    }
}

/// Moments of one raw feature over the audience.
public struct FeatureMoments: Sendable, Equatable {
    public var sum = 0.0, sumSquares = 0.0
    public var present = 0
    public init() {}
    public init(sum: Double, sumSquares: Double, present: Int) {
        self.sum = sum; self.sumSquares = sumSquares; self.present = present
    }
    public mutating func add(_ x: Double) { sum += x; sumSquares += x * x; present += 1 }
    public mutating func merge(_ o: FeatureMoments) { sum += o.sum; sumSquares += o.sumSquares; present += o.present }

    /// Mean and (population) standard deviation over `users`: a user without the feature counts as a raw 0
    /// unless `impute` (then only the users that have it count).
    public func meanAndStd(users: Int, impute: Bool) -> (mean: Double, std: Double) {
        let n = Double(impute ? present : users)
        guard n > 0 else { return (0, 0) }
        let mean = sum / n
        let variance = max(0, sumSquares / n - mean * mean)
        return (mean, variance.squareRoot())
    }
}
