/// A campaign brief (docs/campaigns.md "The brief"): what a marketer asks the `campaign-plan` job for. The file is
/// YAML or JSON (ChorusData.CampaignBriefFile reads it); the job receives this struct as canonical JSON and checks
/// it again with the same `problems()`, so a brief refused by the CLI is refused by the cluster too.
public struct CampaignBrief: Codable, Sendable, Equatable {
    public enum Objective: String, Codable, Sendable, CaseIterable {
        case awareness, engagement, conversions

        /// The KPIs each objective can be measured by, the first being the default.
        public var kpis: [String] {
            switch self {
            case .awareness: return ["impressions", "reach"]
            case .engagement: return ["engagements", "clicks"]
            case .conversions: return ["conversions", "revenue"]
            }
        }
    }

    public struct Target: Codable, Sendable, Equatable {
        public var segments: [Int] = []
        public var countries: [String] = []
        public var languages: [String] = []
        public var topics: [String] = []
        public init() {}
        public var isEmpty: Bool { segments.isEmpty && countries.isEmpty && languages.isEmpty && topics.isEmpty }
    }

    public struct ContentPool: Codable, Sendable, Equatable {
        /// "recommend" (every post on the brief's channels, ranked), "ids" or "tags" (hashtags or topics).
        public var pool: String = "recommend"
        public var ids: [String] = []
        public var tags: [String] = []
        /// Items per target segment in the plan.
        public var perSegment: Int = 5
        public init() {}
        enum CodingKeys: String, CodingKey { case pool, ids, tags, perSegment = "per_segment" }
    }

    public struct SpendLimit: Codable, Sendable, Equatable {
        public var min: Double?
        public var max: Double?
        public init(min: Double? = nil, max: Double? = nil) { self.min = min; self.max = max }
    }

    public struct FrequencyCap: Codable, Sendable, Equatable {
        /// At most this many scheduled posts reach a target segment's users ...
        public var impressions: Int
        /// ... in any window of this many days.
        public var days: Int
        public init(impressions: Int, days: Int) { self.impressions = impressions; self.days = days }
    }

    public struct Constraints: Codable, Sendable, Equatable {
        /// Total spend limits over the campaign per channel.
        public var spend: [String: SpendLimit] = [:]
        public var postsPerDay: Int = 4
        public var postsPerChannelPerDay: Int = 2
        public var minSpacingHours: Double = 2
        public var frequencyCap: FrequencyCap?
        /// Audiences never targeted: "segment:3", "country:DE", "language:fr", "user:u123".
        public var exclude: [String] = []
        /// Brand, topic or hashtag keys whose alerts are risks of this campaign: "brand:nova", "topic:tech".
        public var watch: [String] = []
        public init() {}
        enum CodingKeys: String, CodingKey {
            case spend, postsPerDay = "posts_per_day", postsPerChannelPerDay = "posts_per_channel_per_day"
            case minSpacingHours = "min_spacing_hours", frequencyCap = "frequency_cap", exclude, watch
        }
    }

    public struct Measurement: Codable, Sendable, Equatable {
        /// nil: chosen per segment as the smallest share that detects `targetLift`.
        public var holdoutShare: Double?
        public var alpha: Double = 0.05
        public var power: Double = 0.8
        /// The relative lift the design should be able to detect (0.1 = +10% over the base rate).
        public var targetLift: Double = 0.1
        /// The assignment key (default: derived from the brief, so the same brief assigns the same users).
        public var key: String?
        public init() {}
        enum CodingKeys: String, CodingKey {
            case holdoutShare = "holdout_share", alpha, power, targetLift = "target_lift", key
        }
    }

    public var name: String
    public var objective: Objective
    public var kpi: String
    public var budget: Double
    public var currency: String
    /// ISO dates (YYYY-MM-DD), both inclusive, UTC.
    public var start: String
    public var end: String
    public var channels: [String]
    public var target = Target()
    public var content = ContentPool()
    public var constraints = Constraints()
    public var measurement = Measurement()

    public init(name: String, objective: Objective, kpi: String? = nil, budget: Double, currency: String,
                start: String, end: String, channels: [String]) {
        self.name = name; self.objective = objective; self.kpi = kpi ?? objective.kpis[0]; self.budget = budget
        self.currency = currency; self.start = start; self.end = end; self.channels = channels
    }

    /// One thing wrong with a brief: the field (a path such as `constraints.spend.tiktok.max`), why, and what to do.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public var field: String
        public var reason: String
        public var fix: String
        public init(_ field: String, _ reason: String, _ fix: String) { self.field = field; self.reason = reason; self.fix = fix }
        public var description: String { "\(field): \(reason) (\(fix))" }
    }

    /// Days of the campaign window (start and end inclusive), nil when a date does not parse.
    public var days: Int? {
        guard let s = Self.dayNumber(start), let e = Self.dayNumber(end) else { return nil }
        return e - s + 1
    }

    /// Unix seconds of the window's first instant (start 00:00 UTC).
    public var startSeconds: Int64? { Self.dayNumber(start).map { Int64($0) * 86_400 } }

    public static let maxDays = 366
    public static let maxChannels = 32

    /// Everything wrong with the brief, in field order; empty when it is valid.
    public func problems() -> [Problem] {
        var out: [Problem] = []
        func bad(_ f: String, _ r: String, _ fix: String) { out.append(Problem(f, r, fix)) }
        if name.allSatisfy({ $0.isWhitespace }) || name.utf8.count > 200 {
            bad("name", name.isEmpty ? "missing" : "longer than 200 bytes", "give the campaign a short name")
        }
        if !objective.kpis.contains(kpi) {
            bad("kpi", "'\(kpi)' does not measure \(objective.rawValue)", "use one of: \(objective.kpis.joined(separator: ", "))")
        }
        if !budget.isFinite || budget <= 0 { bad("budget.total", "\(budget) is not a positive amount", "give the total budget as a number, e.g. 50000") }
        if currency.count != 3 || !currency.allSatisfy({ $0.isASCII && $0.isUppercase }) {
            bad("budget.currency", "'\(currency)' is not an ISO 4217 code", "use three capital letters, e.g. USD or EUR")
        }
        let s = Self.dayNumber(start), e = Self.dayNumber(end)
        if s == nil { bad("window.start", "'\(start)' is not a date", "write it as YYYY-MM-DD") }
        if e == nil { bad("window.end", "'\(end)' is not a date", "write it as YYYY-MM-DD") }
        if let s, let e {
            if e < s { bad("window.end", "\(end) is before the start \(start)", "swap the dates or fix the end") }
            else if e - s + 1 > Self.maxDays { bad("window", "\(e - s + 1) days is longer than \(Self.maxDays)", "plan at most a year at a time") }
        }
        if channels.isEmpty { bad("channels", "no channel allowed", "list the channels the campaign may use, e.g. [weibo, tiktok]") }
        if channels.count > Self.maxChannels { bad("channels", "\(channels.count) channels, more than \(Self.maxChannels)", "list fewer channels") }
        var seen = Set<String>()
        for (i, c) in channels.enumerated() {
            if c.isEmpty || c.utf8.count > 64 || c.contains(where: { $0.isWhitespace || $0 == "/" }) {
                bad("channels[\(i)]", "'\(c)' is not a channel name", "use the channel names of the data (`chorus cluster status` counts them)")
            } else if !seen.insert(c).inserted { bad("channels[\(i)]", "'\(c)' is listed twice", "list each channel once") }
        }
        for (i, g) in target.segments.enumerated() where g < 0 {
            bad("target.segments[\(i)]", "\(g) is not a segment id", "use the ids of `chorus segments list`")
        }
        switch content.pool {
        case "recommend": break
        case "ids": if content.ids.isEmpty { bad("content.ids", "the pool is 'ids' but no id is given", "list content ids, or use pool: recommend") }
        case "tags": if content.tags.isEmpty { bad("content.tags", "the pool is 'tags' but no tag is given", "list hashtags or topics, or use pool: recommend") }
        default: bad("content.pool", "'\(content.pool)' is not a pool", "use recommend, or give ids: [...] or tags: [...]")
        }
        if !(1...50).contains(content.perSegment) { bad("content.per_segment", "\(content.perSegment) is outside 1...50", "choose how many items per segment, e.g. 5") }
        var minSum = 0.0
        for (ch, l) in constraints.spend.sorted(by: { $0.key < $1.key }) {
            let f = "constraints.spend.\(ch)"
            if !channels.contains(ch) { bad(f, "'\(ch)' is not one of the brief's channels", "add it to channels or remove its limits") }
            if let m = l.min, !m.isFinite || m < 0 { bad(f + ".min", "\(m) is not an amount ≥ 0", "give the least total spend on \(ch)") }
            if let m = l.max, !m.isFinite || m < 0 { bad(f + ".max", "\(m) is not an amount ≥ 0", "give the most total spend on \(ch)") }
            if let a = l.min, let b = l.max, a > b { bad(f, "min \(a) is above max \(b)", "make min ≤ max") }
            minSum += l.min ?? 0
        }
        if minSum > budget, budget > 0 {
            bad("constraints.spend", "the channel minimums add up to \(minSum), more than the budget \(budget)", "lower the minimums or raise the budget")
        }
        if !(1...96).contains(constraints.postsPerDay) { bad("constraints.posts_per_day", "\(constraints.postsPerDay) is outside 1...96", "give the most posts per day in all") }
        if !(1...48).contains(constraints.postsPerChannelPerDay) {
            bad("constraints.posts_per_channel_per_day", "\(constraints.postsPerChannelPerDay) is outside 1...48", "give the most posts per day on one channel")
        }
        if !constraints.minSpacingHours.isFinite || constraints.minSpacingHours < 0 || constraints.minSpacingHours > 24 {
            bad("constraints.min_spacing_hours", "\(constraints.minSpacingHours) is outside 0...24", "give the least hours between two posts on a channel")
        }
        if let c = constraints.frequencyCap {
            if c.impressions < 1 { bad("constraints.frequency_cap.impressions", "\(c.impressions) is below 1", "allow at least one post per user in the window") }
            if !(1...90).contains(c.days) { bad("constraints.frequency_cap.days", "\(c.days) is outside 1...90", "give the window in days, e.g. 7") }
        }
        for (i, x) in constraints.exclude.enumerated() where Self.audienceRule(x) == nil {
            bad("constraints.exclude[\(i)]", "'\(x)' is not an audience", "write segment:ID, country:CC, language:LL or user:ID")
        }
        for (i, x) in constraints.watch.enumerated() {
            let parts = x.split(separator: ":", maxSplits: 1)
            if parts.count != 2 || !["brand", "topic", "hashtag"].contains(String(parts[0])) || parts[1].isEmpty {
                bad("constraints.watch[\(i)]", "'\(x)' is not a key", "write brand:NAME, topic:NAME or hashtag:TAG (as `chorus sentiment keys` shows them)")
            }
        }
        if let h = measurement.holdoutShare, !(h > 0 && h <= 0.5) {
            bad("measurement.holdout_share", "\(h) is outside (0, 0.5]", "hold out a share such as 0.1, or leave it out to choose it per segment")
        }
        if !(measurement.alpha > 0 && measurement.alpha < 0.5) { bad("measurement.alpha", "\(measurement.alpha) is outside (0, 0.5)", "use e.g. 0.05") }
        if !(measurement.power > 0.5 && measurement.power < 1) { bad("measurement.power", "\(measurement.power) is outside (0.5, 1)", "use e.g. 0.8") }
        if !(measurement.targetLift > 0 && measurement.targetLift <= 10) {
            bad("measurement.target_lift", "\(measurement.targetLift) is outside (0, 10]", "give the relative lift to detect, e.g. 0.1 for +10%")
        }
        return out
    }

    /// An exclusion or audience rule: (kind, value), nil when it is not one.
    public static func audienceRule(_ s: String) -> (kind: String, value: String)? {
        let parts = s.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, ["segment", "country", "language", "user"].contains(parts[0]), !parts[1].isEmpty else { return nil }
        if parts[0] == "segment", Int(parts[1]) == nil { return nil }
        return (parts[0], parts[1])
    }

    /// Days since 1970-01-01 of an ISO date "YYYY-MM-DD" (proleptic Gregorian), nil when it is not one.
    public static func dayNumber(_ s: String) -> Int? { CivilDate.parse(s, years: 1970...9999) }

    /// The ISO date of a day number.
    public static func date(dayNumber z0: Int) -> String { CivilDate.iso(days: z0) }
}
