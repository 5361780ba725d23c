import ChorusModel

/// A named weight, e.g. a topic and the interest a user showed in it.
public struct WeightedTerm: Codable, Sendable, Equatable {
    public var name: String
    public var weight: Double
    public init(name: String, weight: Double) { self.name = name; self.weight = weight }
}

/// Small dimension tables every worker holds during a features job (broadcast join).
public struct FeatureCatalog: Sendable {
    public struct UserInfo: Sendable, Equatable {
        public var channel: String, country: String
        public init(channel: String, country: String) { self.channel = channel; self.country = country }
    }
    public struct ContentInfo: Sendable, Equatable {
        public var topics: [String], hashtags: [String]
        public init(topics: [String], hashtags: [String]) { self.topics = topics; self.hashtags = hashtags }
    }
    public var users: [String: UserInfo] = [:]
    public var contents: [String: ContentInfo] = [:]
    public init() {}
}

/// Per-user features: the core of the global user profile. Definitions are in docs/architecture.md.
public struct UserFeatures: Codable, Sendable, Equatable {
    public var userId: String
    public var channel: String
    public var country: String
    public var language: String
    public var ageBand: String
    /// False when interactions or follows name this user but no user record was ingested.
    public var knownUser: Bool
    public var interactions: Int
    public var countsByType: [String: Int]
    public var countsByChannel: [String: Int]
    public var engagements: Int
    /// engagements / views (0 when the user has no views).
    public var engagementRate: Double
    /// Interactions per UTC hour of day, 24 bins.
    public var activeHours: [Int]
    /// Interactions per UTC weekday, 7 bins, Monday first.
    public var weekdays: [Int]
    public var firstTs: Int64
    public var lastTs: Int64
    /// Days from the last interaction to the job's as-of time (0 when the user never interacted).
    public var recencyDays: Double
    /// Distinct UTC days with at least one interaction.
    public var activeDays: Int
    /// Interactions per active day.
    public var frequency: Double
    public var topTopics: [WeightedTerm]
    public var topHashtags: [WeightedTerm]
    public var followers: Int
    public var following: Int
    public var asOf: Int64

    enum CodingKeys: String, CodingKey {
        case userId = "user_id", channel, country, language, ageBand = "age_band", knownUser = "known_user"
        case interactions, countsByType = "counts_by_type", countsByChannel = "counts_by_channel", engagements
        case engagementRate = "engagement_rate", activeHours = "active_hours", weekdays, firstTs = "first_ts"
        case lastTs = "last_ts", recencyDays = "recency_days", activeDays = "active_days", frequency
        case topTopics = "top_topics", topHashtags = "top_hashtags", followers, following, asOf = "as_of"
    }
}

/// Per-content features.
public struct ContentFeatures: Codable, Sendable, Equatable {
    public var contentId: String
    public var authorId: String
    public var channel: String
    public var mediaType: String
    public var knownContent: Bool
    /// Number of view interactions.
    public var impressions: Int
    public var countsByType: [String: Int]
    public var engagements: Int
    /// engagements / impressions (0 when there are no impressions).
    public var engagementRate: Double
    /// Distinct users who interacted.
    public var uniqueUsers: Int
    /// Distinct users by their channel and by their country ("unknown" when the user record is missing).
    public var audienceByChannel: [String: Int]
    public var audienceByCountry: [String: Int]

    enum CodingKeys: String, CodingKey {
        case contentId = "content_id", authorId = "author_id", channel, mediaType = "media_type"
        case knownContent = "known_content", impressions, countsByType = "counts_by_type", engagements
        case engagementRate = "engagement_rate", uniqueUsers = "unique_users"
        case audienceByChannel = "audience_by_channel", audienceByCountry = "audience_by_country"
    }
}

public enum FeatureMath {
    public static let topN = 10

    /// UTC hour (0-23) of unix seconds.
    @inlinable public static func hour(_ t: Int64) -> Int { Int(((t % 86400) + 86400) % 86400 / 3600) }
    /// UTC day number since 1970-01-01.
    @inlinable public static func day(_ t: Int64) -> Int64 { t >= 0 ? t / 86400 : (t - 86399) / 86400 }
    /// UTC weekday, Monday = 0 (1970-01-01 was a Thursday).
    @inlinable public static func weekday(_ t: Int64) -> Int { Int(((day(t) + 3) % 7 + 7) % 7) }

    /// The `n` heaviest terms: weight descending, then name ascending (deterministic).
    public static func top(_ weights: [String: Double], _ n: Int = topN) -> [WeightedTerm] {
        weights.map { WeightedTerm(name: $0.key, weight: $0.value) }
            .sorted { $0.weight != $1.weight ? $0.weight > $1.weight : $0.name < $1.name }
            .prefix(n).map { $0 }
    }

    static func typeCountDictionary(_ counts: [Int]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: InteractionKind.allCases.map { ($0.name, counts[$0.rawValue]) })
    }

    /// Computes one user's features from the user's record (if any), all the user's interactions and follow counts.
    public static func userFeatures(userId: String, user: UserRecord?, interactions: [InteractionRecord],
                                    followers: Int, following: Int, catalog: FeatureCatalog,
                                    asOf: Int64) -> UserFeatures {
        var typeCounts = [Int](repeating: 0, count: InteractionKind.allCases.count + 1)  // by raw value
        var byChannel: [String: Int] = [:]
        var hours = [Int](repeating: 0, count: 24)
        var weekdays = [Int](repeating: 0, count: 7)
        var days = Set<Int64>()
        var topics: [String: Double] = [:]
        var tags: [String: Double] = [:]
        var first = Int64.max, last = Int64.min
        var engagements = 0
        for it in interactions {
            typeCounts[it.kind.rawValue] += 1
            byChannel[it.channel, default: 0] += 1
            if it.kind.isEngagement { engagements += 1 }
            hours[hour(it.ts)] += 1
            weekdays[weekday(it.ts)] += 1
            days.insert(day(it.ts))
            first = min(first, it.ts)
            last = max(last, it.ts)
            if let c = catalog.contents[it.contentId] {
                let w = it.kind.interestWeight
                for t in c.topics { topics[t, default: 0] += w }
                for h in c.hashtags { tags[h, default: 0] += w }
            }
        }
        let views = typeCounts[InteractionKind.view.rawValue]
        let byType = typeCountDictionary(typeCounts)
        let n = interactions.count
        return UserFeatures(
            userId: userId, channel: user?.channel ?? "", country: user?.country ?? "",
            language: user?.language ?? "", ageBand: user?.ageBand ?? "", knownUser: user != nil,
            interactions: n, countsByType: byType, countsByChannel: byChannel, engagements: engagements,
            engagementRate: views > 0 ? Double(engagements) / Double(views) : 0,
            activeHours: hours, weekdays: weekdays,
            firstTs: n > 0 ? first : 0, lastTs: n > 0 ? last : 0,
            recencyDays: n > 0 ? Double(asOf - last) / 86400 : 0,
            activeDays: days.count, frequency: days.isEmpty ? 0 : Double(n) / Double(days.count),
            topTopics: top(topics), topHashtags: top(tags), followers: followers, following: following, asOf: asOf)
    }

    /// Computes one content item's features from its record (if any) and all its interactions.
    public static func contentFeatures(contentId: String, content: ContentRecord?, interactions: [InteractionRecord],
                                       catalog: FeatureCatalog) -> ContentFeatures {
        var typeCounts = [Int](repeating: 0, count: InteractionKind.allCases.count + 1)
        var engagements = 0
        var audience = Set<String>()
        for it in interactions {
            typeCounts[it.kind.rawValue] += 1
            if it.kind.isEngagement { engagements += 1 }
            audience.insert(it.userId)
        }
        var byChannel: [String: Int] = [:], byCountry: [String: Int] = [:]
        for u in audience {
            let info = catalog.users[u]
            byChannel[info?.channel ?? "unknown", default: 0] += 1
            let country = info?.country ?? ""
            byCountry[country.isEmpty ? "unknown" : country, default: 0] += 1
        }
        let views = typeCounts[InteractionKind.view.rawValue]
        let byType = typeCountDictionary(typeCounts)
        return ContentFeatures(
            contentId: contentId, authorId: content?.authorId ?? "", channel: content?.channel ?? "",
            mediaType: content?.mediaType ?? "", knownContent: content != nil, impressions: views,
            countsByType: byType, engagements: engagements,
            engagementRate: views > 0 ? Double(engagements) / Double(views) : 0,
            uniqueUsers: audience.count, audienceByChannel: byChannel, audienceByCountry: byCountry)
    }
}

/// Cluster-wide totals merged at the coordinator from every partition's partial.
public struct GlobalSummary: Codable, Sendable, Equatable {
    public var users = 0
    public var contents = 0
    public var interactions = 0
    public var follows = 0
    public var usersByChannel: [String: Int] = [:]
    public var interactionsByChannel: [String: Int] = [:]
    public var interactionsByType: [String: Int] = [:]
    public var topicWeights: [String: Double] = [:]
    public var hashtagWeights: [String: Double] = [:]
    public var activeHours = [Int](repeating: 0, count: 24)

    enum CodingKeys: String, CodingKey {
        case users, contents, interactions, follows, usersByChannel = "users_by_channel"
        case interactionsByChannel = "interactions_by_channel", interactionsByType = "interactions_by_type"
        case topicWeights = "topic_weights", hashtagWeights = "hashtag_weights", activeHours = "active_hours"
    }

    public init() {}

    /// Adds one user's contribution.
    public mutating func add(_ f: UserFeatures) {
        users += 1
        if f.knownUser { usersByChannel[f.channel.isEmpty ? "unknown" : f.channel, default: 0] += 1 }
        interactions += f.interactions
        follows += f.following
        for (k, v) in f.countsByChannel { interactionsByChannel[k, default: 0] += v }
        for (k, v) in f.countsByType where v > 0 { interactionsByType[k, default: 0] += v }
        for h in 0..<24 { activeHours[h] += f.activeHours[h] }
    }

    /// Adds the interest weights of one interaction (all topics/hashtags, not only a user's top N).
    public mutating func addInterest(_ kind: InteractionKind, _ content: FeatureCatalog.ContentInfo) {
        addInterest(weight: kind.interestWeight, topics: content.topics, hashtags: content.hashtags)
    }

    /// Adds `weight` (the summed interest weights of all interactions with one content item) to its terms.
    public mutating func addInterest(weight: Double, topics: [String], hashtags: [String]) {
        guard weight > 0 else { return }
        for t in topics { topicWeights[t, default: 0] += weight }
        for h in hashtags { hashtagWeights[h, default: 0] += weight }
    }

    /// A partial summary arrives in a worker's reply (remote input): 24 hours, counts in 0...2^40 and finite
    /// weights, so `merge` can neither index past the hours nor overflow a sum (65,536 partitions × 2^40 < 2^63).
    public var isWellFormed: Bool {
        let limit = 1 << 40
        let counts = [users, contents, interactions, follows] + activeHours + Array(usersByChannel.values)
            + Array(interactionsByChannel.values) + Array(interactionsByType.values)
        return activeHours.count == 24 && counts.allSatisfy { (0...limit).contains($0) }
            && topicWeights.values.allSatisfy { $0.isFinite && abs($0) <= 1e15 }
            && hashtagWeights.values.allSatisfy { $0.isFinite && abs($0) <= 1e15 }
    }

    public mutating func merge(_ o: GlobalSummary) {
        users += o.users; contents += o.contents; interactions += o.interactions; follows += o.follows
        for (k, v) in o.usersByChannel { usersByChannel[k, default: 0] += v }
        for (k, v) in o.interactionsByChannel { interactionsByChannel[k, default: 0] += v }
        for (k, v) in o.interactionsByType { interactionsByType[k, default: 0] += v }
        for (k, v) in o.topicWeights { topicWeights[k, default: 0] += v }
        for (k, v) in o.hashtagWeights { hashtagWeights[k, default: 0] += v }
        for h in 0..<24 { activeHours[h] += o.activeHours[h] }
    }

    /// The report shown by `chorus job status`: totals, top 20 topics and hashtags, and the hour curve.
    public var report: SummaryReport {
        SummaryReport(users: users, contents: contents, interactions: interactions, follows: follows,
                      usersByChannel: usersByChannel, interactionsByChannel: interactionsByChannel,
                      interactionsByType: interactionsByType,
                      topTopics: FeatureMath.top(topicWeights, 20), topHashtags: FeatureMath.top(hashtagWeights, 20),
                      activeHours: activeHours)
    }
}

/// The merged, human-facing form of `GlobalSummary` (JSON keys documented in docs/cli.md).
public struct SummaryReport: Codable, Sendable, Equatable {
    public var users: Int, contents: Int, interactions: Int, follows: Int
    public var usersByChannel: [String: Int]
    public var interactionsByChannel: [String: Int]
    public var interactionsByType: [String: Int]
    public var topTopics: [WeightedTerm]
    public var topHashtags: [WeightedTerm]
    public var activeHours: [Int]

    enum CodingKeys: String, CodingKey {
        case users, contents, interactions, follows, usersByChannel = "users_by_channel"
        case interactionsByChannel = "interactions_by_channel", interactionsByType = "interactions_by_type"
        case topTopics = "top_topics", topHashtags = "top_hashtags", activeHours = "active_hours"
    }
}
