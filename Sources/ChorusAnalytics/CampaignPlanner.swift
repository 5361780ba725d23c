import ChorusModel
import Foundation

/// The parts of a campaign plan that are pure decisions (docs/campaigns.md "How a plan is made"): which segments to
/// target, which content each gets, and the posting calendar. The `campaign-plan` job gathers the inputs from the
/// cluster (segment sizes and rates, ALS scores, content drivers, best times, alerts) and stores what these return;
/// every decision carries its reason in words.
public enum CampaignPlanner {
    // MARK: audience

    /// One segment as the cluster measured it, after the brief's filters (segment −1: users without a segment).
    public struct SegmentInput: Sendable, Equatable {
        public var id: Int
        public var name: String
        public var users: Int
        /// Users of the segment the brief's filters or exclusions left out.
        public var filteredOut: Int
        /// Mean conversion propensity of its scored users (the `propensity` job), nil without that job.
        public var propensity: Double?
        /// Mean engagements per user in the profile features, nil without the `features` job.
        public var engagementPerUser: Double?
        /// Conversions per user in the profile features (the history's base rate), nil without features.
        public var conversionsPerUser: Double?
        /// Eligible users by home channel.
        public var channelUsers: [String: Int]
        public init(id: Int, name: String, users: Int, filteredOut: Int = 0, propensity: Double? = nil,
                    engagementPerUser: Double? = nil, conversionsPerUser: Double? = nil, channelUsers: [String: Int] = [:]) {
            self.id = id; self.name = name; self.users = users; self.filteredOut = filteredOut; self.propensity = propensity
            self.engagementPerUser = engagementPerUser; self.conversionsPerUser = conversionsPerUser; self.channelUsers = channelUsers
        }
    }

    public struct AudienceChoice: Sendable, Equatable, Codable {
        public var segment: Int
        public var name: String
        public var users: Int
        public var chosen: Bool
        /// The expected KPI per user that ranks the segments (its unit is the objective's: conversions, engagements,
        /// or reach).
        public var perUser: Double
        /// users × perUser.
        public var expectedOutcome: Double
        public var propensity: Double?
        public var engagementIndex: Double?
        public var reason: String
        enum CodingKeys: String, CodingKey {
            case segment, name, users, chosen, perUser = "per_user", expectedOutcome = "expected_outcome", propensity
            case engagementIndex = "engagement_index", reason
        }
    }

    /// The rule `chooseAudience` applies, for the plan's text.
    public static let audienceRule = "a segment is chosen when the brief allows it, it has at least the minimum users, and its expected "
        + "outcome per user is at least half the best segment's; with target.segments in the brief, exactly those are chosen; "
        + "awareness campaigns choose every allowed segment (reach)"

    /// Ranks the segments by expected outcome per user for the objective, and chooses them by `audienceRule`.
    ///
    /// Per user: conversions = propensity (else the history's conversions per user) × engagement index;
    /// engagement = engagements per user; awareness = 1 (each user reached counts once). The engagement index is the
    /// segment's engagements per user over the audience's, so a conversions plan prefers segments that also engage.
    public static func chooseAudience(_ segments: [SegmentInput], objective: CampaignBrief.Objective, target: [Int],
                                      excluded: [Int], minUsers: Int) -> (choices: [AudienceChoice], notes: [String]) {
        var notes: [String] = []
        let totalUsers = segments.reduce(0) { $0 + $1.users }
        let engaged = segments.compactMap { s in s.engagementPerUser.map { ($0, s.users) } }
        let meanEngagement = engaged.isEmpty ? nil
            : engaged.reduce(0.0) { $0 + $1.0 * Double($1.1) } / Double(max(1, engaged.reduce(0) { $0 + $1.1 }))
        if meanEngagement == nil { notes.append("no profile features (run the `features` job): engagement is not used to rank segments") }
        let hasPropensity = segments.contains { $0.propensity != nil }
        if objective == .conversions && !hasPropensity {
            notes.append("no conversion propensity (run the `propensity` job): segments are ranked by their historic conversions per user")
        }
        var rows: [AudienceChoice] = segments.map { s in
            let index: Double? = meanEngagement.flatMap { m in s.engagementPerUser.map { m > 0 ? $0 / m : 1 } }
            let perUser: Double
            switch objective {
            case .awareness: perUser = 1
            case .engagement: perUser = s.engagementPerUser ?? 1
            case .conversions: perUser = (s.propensity ?? s.conversionsPerUser ?? 0) * (index ?? 1)
            }
            return AudienceChoice(segment: s.id, name: s.name, users: s.users, chosen: false, perUser: perUser,
                                  expectedOutcome: perUser * Double(s.users), propensity: s.propensity,
                                  engagementIndex: index, reason: "")
        }
        let unit = objective == .awareness ? "users reached" : objective == .engagement ? "engagements" : "conversions"
        func allowed(_ r: AudienceChoice) -> String? {
            if excluded.contains(r.segment) { return "excluded by the brief (segment:\(r.segment))" }
            if !target.isEmpty && !target.contains(r.segment) { return "not in the brief's target segments" }
            if r.users == 0 { return "no eligible user after the brief's filters (channels, countries, languages, topics)" }
            if r.users < minUsers { return "\(r.users) eligible users, fewer than \(minUsers): too small to reach or to measure" }
            return nil
        }
        let best = rows.filter { allowed($0) == nil }.map(\.perUser).max() ?? 0
        for i in rows.indices {
            let r = rows[i]
            let ratio = best > 0 ? r.perUser / best : 0
            let share = totalUsers > 0 ? Double(r.users) / Double(totalUsers) : 0
            let what = String(format: "%.4g %@ per user", r.perUser, unit)
            if let no = allowed(r) {
                rows[i].reason = no
            } else if !target.isEmpty || objective == .awareness {
                rows[i].chosen = true
                rows[i].reason = (target.isEmpty ? "awareness reaches every allowed segment" : "named in the brief's target")
                    + String(format: "; %d users (%.0f%% of the eligible audience), %@", r.users, share * 100, what)
            } else if ratio >= 0.5 {
                rows[i].chosen = true
                rows[i].reason = String(format: "%@, %.0f%% of the best segment's; %d users → %.4g expected %@",
                                        what, ratio * 100, r.users, r.expectedOutcome, unit)
            } else {
                rows[i].reason = String(format: "%@ is below half of the best segment's %.4g", what, best)
            }
        }
        rows.sort { $0.chosen != $1.chosen ? $0.chosen : ($0.expectedOutcome != $1.expectedOutcome ? $0.expectedOutcome > $1.expectedOutcome : $0.segment < $1.segment) }
        return (rows, notes)
    }

    // MARK: content

    public struct ContentCandidate: Sendable, Equatable {
        public var id: String
        public var channel: String
        public var mediaType: String
        public var topics: [String]
        public var hashtags: [String]
        public init(id: String, channel: String, mediaType: String, topics: [String], hashtags: [String]) {
            self.id = id; self.channel = channel; self.mediaType = mediaType; self.topics = topics; self.hashtags = hashtags
        }
        /// The keys an alert can name for this item: topic:X, hashtag:X (lower-cased, without '#').
        public var alertKeys: [String] {
            topics.map { "topic:" + $0.lowercased() } + hashtags.map { "hashtag:" + $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "#")) }
        }
    }

    /// A content-insights driver: an attribute ("media_type=video", "hashtag=#trending", "topic=tech") and its
    /// multiplicative effect on the engagement rate (1.38 = +38%).
    public struct Driver: Sendable, Equatable {
        public var attribute: String
        public var multiplier: Double
        public init(attribute: String, multiplier: Double) { self.attribute = attribute; self.multiplier = multiplier }
    }

    public struct ContentPick: Sendable, Equatable, Codable {
        public var contentId: String
        public var channel: String
        public var score: Double
        public var alsScore: Double?
        public var driverMultiplier: Double
        public var reason: String
        public var flags: [String]
        enum CodingKeys: String, CodingKey {
            case contentId = "content_id", channel, score, alsScore = "als_score", driverMultiplier = "driver_multiplier", reason, flags
        }
    }

    /// The attributes of an item that drivers can name.
    static func attributes(_ c: ContentCandidate) -> [String] {
        ["media_type=" + c.mediaType.lowercased()] + c.topics.map { "topic=" + $0.lowercased() }
            + c.hashtags.map { "hashtag=#" + $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "#")) }
    }

    /// The best `n` items for one segment: by the segment's ALS score (its users' mean factor · the item's factor,
    /// which is the mean of its users' scores) times the content drivers' multiplier; without an ALS model, by the
    /// multiplier alone (an item the model lacks ranks after those it scores). Items with a negative alert are kept but flagged and ranked after the clean ones. Ties: id.
    public static func pickContent(_ items: [ContentCandidate], alsScore: (String) -> Double?, alsAvailable: Bool, drivers: [Driver],
                                   negativeKeys: [String: String], n: Int) -> [ContentPick] {
        let byAttribute = Dictionary(drivers.map { ($0.attribute.lowercased(), $0.multiplier) }, uniquingKeysWith: { a, _ in a })
        var picks: [ContentPick] = items.map { c in
            var mult = 1.0
            var named: [String] = []
            for a in attributes(c) {
                if let m = byAttribute[a], m.isFinite, m > 0 { mult *= m; named.append(String(format: "%@ %+.0f%%", a, (m - 1) * 100)) }
            }
            let als = alsScore(c.id)
            // ALS implicit scores are preferences near [0, 1]; negative ones are clipped so the multiplier cannot flip them.
            // With an ALS model, an item it does not know (no interactions in training) has no shown preference.
            let score = (als.map { max($0, 0) + 1e-6 } ?? (alsAvailable ? 1e-6 : 1)) * mult
            var why: [String] = []
            if let als { why.append(String(format: "ALS score %.3f for the segment's users", als)) }
            else if alsAvailable { why.append("not in the ALS model (no interactions in its training)") }
            why.append(named.isEmpty ? "no content driver applies" : "drivers " + named.joined(separator: ", "))
            let flags = c.alertKeys.compactMap { k in negativeKeys[k].map { "\(k): \($0)" } }
            return ContentPick(contentId: c.id, channel: c.channel, score: score, alsScore: als, driverMultiplier: mult,
                               reason: why.joined(separator: "; "), flags: flags)
        }
        picks.sort { a, b in
            if a.flags.isEmpty != b.flags.isEmpty { return a.flags.isEmpty }
            return a.score != b.score ? a.score > b.score : a.contentId < b.contentId
        }
        return Array(picks.prefix(n))
    }

    // MARK: schedule

    /// A channel's (or a segment's on a channel) slots of the week, best first: hour of the week (0 = Monday 00:00
    /// UTC) and the expected engagements per post there.
    public struct SlotRanking: Sendable, Equatable {
        public var slots: [(slot: Int, score: Double)]
        public var source: String
        public init(slots: [(slot: Int, score: Double)], source: String) { self.slots = slots; self.source = source }
        public static func == (a: SlotRanking, b: SlotRanking) -> Bool {
            a.source == b.source && a.slots.map(\.slot) == b.slots.map(\.slot) && a.slots.map(\.score) == b.slots.map(\.score)
        }
    }

    public struct Post: Sendable, Equatable, Codable {
        public var date: String
        /// Unix seconds of the post's hour.
        public var at: Int64
        public var hour: Int
        public var channel: String
        public var segment: Int
        public var contentId: String
        public var expectedEngagement: Double?
        public var why: String
        enum CodingKeys: String, CodingKey {
            case date, at, hour, channel, segment, contentId = "content_id", expectedEngagement = "expected_engagement", why
        }
    }

    public struct ScheduleRules: Sendable {
        public var postsPerDay: Int
        public var postsPerChannelPerDay: Int
        public var minSpacingHours: Double
        /// At most `impressions` posts per segment in any window of `days` days.
        public var frequencyCap: (impressions: Int, days: Int)?
        public init(postsPerDay: Int, postsPerChannelPerDay: Int, minSpacingHours: Double, frequencyCap: (impressions: Int, days: Int)?) {
            self.postsPerDay = postsPerDay; self.postsPerChannelPerDay = postsPerChannelPerDay
            self.minSpacingHours = minSpacingHours; self.frequencyCap = frequencyCap
        }
    }

    /// One (segment, channel) stream of the calendar: its weekly slot ranking, its content in order, and its weight
    /// (the segment's expected outcome on that channel) that decides who gets a contested slot.
    public struct Stream: Sendable {
        public var segment: Int
        public var channel: String
        public var ranking: SlotRanking
        public var content: [String]
        public var weight: Double
        public init(segment: Int, channel: String, ranking: SlotRanking, content: [String], weight: Double) {
            self.segment = segment; self.channel = channel; self.ranking = ranking; self.content = content; self.weight = weight
        }
    }

    /// The posting calendar over `days` days from `startDay` (days since 1970-01-01, UTC). Every (stream, day, slot)
    /// of the window is a candidate worth the stream's weight × the slot's score; candidates are taken best first
    /// (ties: earlier, then channel, segment), and one is skipped when it would break posts per day, posts per
    /// channel per day, the spacing on its channel, one post per stream and day, or the segment's frequency cap in
    /// any window of `cap.days` days. Content cycles through each stream's list in calendar order. Deterministic.
    public static func schedule(streams: [Stream], startDay: Int, days: Int, rules: ScheduleRules)
        -> (posts: [Post], skipped: [String: Int]) {
        struct Candidate { var stream: Int; var day: Int; var hour: Int; var value: Double; var score: Double }
        var candidates: [Candidate] = []
        for d in 0..<max(0, days) {
            let day = startDay + d
            let weekday = ((day % 7) + 7 + 3) % 7  // 1970-01-01 was a Thursday; Monday = 0
            for (i, s) in streams.enumerated() where !s.content.isEmpty {
                for (slot, score) in s.ranking.slots where slot / 24 == weekday {
                    candidates.append(Candidate(stream: i, day: day, hour: slot % 24, value: s.weight * max(score, 0), score: score))
                }
            }
        }
        candidates.sort { a, b in
            if a.value != b.value { return a.value > b.value }
            if a.day != b.day { return a.day < b.day }
            let sa = streams[a.stream], sb = streams[b.stream]
            if sa.channel != sb.channel { return sa.channel < sb.channel }
            if sa.segment != sb.segment { return sa.segment < sb.segment }
            return a.hour < b.hour
        }
        var skipped: [String: Int] = [:]
        var perDay: [Int: Int] = [:]
        var perChannelDay: [String: [Int]] = [:]       // "channel/day" → hours
        var streamDays = Set<Int>()                       // stream << 32 | day offset
        var segmentDays: [Int: [Int: Int]] = [:]          // segment → day → posts
        var chosen: [Candidate] = []
        for c in candidates {
            let s = streams[c.stream]
            if perDay[c.day, default: 0] >= rules.postsPerDay { skipped["posts_per_day", default: 0] += 1; continue }
            let ck = "\(s.channel)/\(c.day)"
            let hours = perChannelDay[ck] ?? []
            if hours.count >= rules.postsPerChannelPerDay { skipped["posts_per_channel_per_day", default: 0] += 1; continue }
            if hours.contains(where: { Double(abs($0 - c.hour)) < rules.minSpacingHours }) { skipped["min_spacing_hours", default: 0] += 1; continue }
            let sd = c.stream << 32 | (c.day - startDay)
            if streamDays.contains(sd) { continue }  // one post per stream and day: spread the content
            if let cap = rules.frequencyCap {
                let counts = segmentDays[s.segment] ?? [:]
                // Every window of cap.days days that holds this day must stay below the cap.
                var breaks = false
                for w in (c.day - cap.days + 1)...c.day {
                    var n = 0
                    for d in w..<(w + cap.days) { n += counts[d] ?? 0 }
                    if n >= cap.impressions { breaks = true; break }
                }
                if breaks { skipped["frequency_cap", default: 0] += 1; continue }
            }
            perDay[c.day, default: 0] += 1
            perChannelDay[ck, default: []].append(c.hour)
            streamDays.insert(sd)
            segmentDays[s.segment, default: [:]][c.day, default: 0] += 1
            chosen.append(c)
        }
        chosen.sort { a, b in
            if a.day != b.day { return a.day < b.day }
            if a.hour != b.hour { return a.hour < b.hour }
            let sa = streams[a.stream], sb = streams[b.stream]
            return sa.channel != sb.channel ? sa.channel < sb.channel : sa.segment < sb.segment
        }
        var nextContent = [Int](repeating: 0, count: streams.count)
        let posts: [Post] = chosen.map { c in
            let s = streams[c.stream]
            let content = s.content[nextContent[c.stream] % s.content.count]
            nextContent[c.stream] += 1
            return Post(date: CampaignBrief.date(dayNumber: c.day), at: Int64(c.day) * 86_400 + Int64(c.hour) * 3600,
                        hour: c.hour, channel: s.channel, segment: s.segment, contentId: content,
                        expectedEngagement: c.score, why: s.ranking.source)
        }
        return (posts, skipped)
    }
}
