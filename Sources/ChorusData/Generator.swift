import ChorusModel
import Foundation

extension SplitMix64 {
    /// Standard normal (Box-Muller) with the platform's libm: the generator's files were defined with it.
    public mutating func normal() -> Double {
        let u1 = max(unit(), 1e-12), u2 = unit()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}

/// The files `chorus generate` writes.
public enum GeneratedFile: String, CaseIterable, Sendable {
    case users = "users.jsonl"
    case content = "content.jsonl"
    case interactions = "interactions.jsonl"
    case follows = "follows.jsonl"
    case commentSentiment = "truth/comment_sentiment.csv"
    case userTastes = "truth/user_tastes.csv"
    case incidents = "truth/incidents.csv"
    /// Only with hidden segments (`--segments K`): each user's segment and persona.
    case userSegments = "truth/user_segments.csv"
    /// Only with hidden segments: the planted drivers of conversion and the sign of each.
    case conversionDrivers = "truth/conversion_drivers.csv"
    /// Only with content effects (`--content-effects`): the planted effect of the posting slot, per channel.
    case slotEffects = "truth/slot_effects.csv"
    /// Only with content effects: the planted effects of the content's attributes on its engagement rate.
    case contentEffects = "truth/content_effects.csv"
    /// Only with a spend history (`--spend-history`): weekly spend and outcomes per channel (`SpendHistory`).
    case spend = "spend.jsonl"
    /// Only with a spend history: the planted response curve of each channel.
    case spendCurves = "truth/spend_curves.csv"

    /// The files a network writes: the segment truth only with hidden segments, the effect truth only with
    /// content effects, the spend files only with a spend history (written by `SpendHistory`, not by
    /// `SyntheticNetwork.generate`).
    public static func written(segments: Int, contentEffects: Bool = false, spendHistory: Bool = false) -> [GeneratedFile] {
        allCases.filter { f in
            switch f {
            case .userSegments, .conversionDrivers: return segments > 0
            case .slotEffects, .contentEffects: return contentEffects
            case .spend, .spendCurves: return spendHistory
            default: return true
            }
        }
    }
}

/// Deterministic synthetic social network. Same `users` and `seed` give byte-identical files on any machine.
///
/// Users live on several channels and have hidden topic tastes; interactions are driven by those tastes, with
/// daily and weekly seasonality; comments carry a known sentiment (kept in `truth/`). Output is streamed through
/// `sink` in chunks, so memory stays flat at any size (only the content catalog, users/5 items, is held).
public struct SyntheticNetwork: Sendable {
    public struct Counts: Sendable, Codable, Equatable {
        public var users = 0, content = 0, interactions = 0, follows = 0, comments = 0
    }

    public static let channels = ["weibo", "wechat", "x", "instagram", "tiktok"]
    static let channelWeights = [0.25, 0.2, 0.2, 0.2, 0.15]
    public static let topics = ["sports", "music", "fashion", "food", "travel", "tech", "gaming", "beauty", "fitness",
                                "movies", "finance", "parenting", "pets", "cars", "books", "art", "health", "education",
                                "comedy", "news"]
    static let westernCountries = ["US", "GB", "BR", "IN", "ID", "JP", "DE", "FR", "MX", "NG"]
    static let ageBands = ["13-17", "18-24", "25-34", "35-44", "45+"]
    static let mediaTypes = ["text", "image", "video", "live"]
    /// Hour-of-day weights (UTC): low at night, peaks at lunch and in the evening.
    static let hourWeights: [Double] = [3, 2, 1.2, 0.8, 0.6, 0.7, 1.2, 2.5, 3.5, 3.8, 4, 4.5,
                                        5.5, 5, 4.2, 4, 4.3, 5, 6, 7, 8, 8.5, 7, 5]
    /// The hour-of-day weights of users without a segment (UTC), for checks of the planted daily season.
    public static var globalHourWeights: [Double] { hourWeights }
    /// Weekday weights, Monday first: weekends busier.
    static let weekdayWeights: [Double] = [1, 0.95, 0.95, 1, 1.1, 1.35, 1.3]

    static let posEN = ["love this", "absolutely amazing", "great job", "so happy with it", "best thing ever",
                        "really good", "awesome", "brilliant work", "highly recommend", "beautiful"]
    static let negEN = ["hate this", "terrible", "so disappointed", "worst ever", "really bad", "awful quality",
                        "waste of money", "broken again", "not good at all", "annoying"]
    static let neuEN = ["ok", "saw this today", "what time is it on", "is this new", "tagging a friend",
                        "first time here", "interesting", "how much is it", "where is this", "noted"]
    static let posZH = ["太棒了", "非常喜欢", "好看", "真不错", "支持", "赞", "很满意", "推荐", "厉害", "开心"]
    static let negZH = ["太差了", "很失望", "垃圾", "不好用", "后悔", "难看", "质量差", "生气", "退货", "糟糕"]
    static let neuZH = ["一般", "看看", "什么时候", "多少钱", "在哪里", "路过", "收到", "了解", "今天", "请问"]

    static let incidentEN = ["my nova battery exploded while charging", "nova phone overheats, terrible battery",
                             "battery died after one day, so disappointed with nova", "nova battery swelling, awful quality",
                             "returning my nova, the battery is dangerous"]
    static let incidentZH = ["nova电池爆了，太差了", "nova手机发烫，电池很失望", "nova电池一天就坏了，退货"]

    public let users: Int
    public let seed: UInt64
    /// Hidden audience segments (0: none, the network of earlier releases byte for byte). With K > 0 every user
    /// belongs to one of the first K `personas`, which sets the user's channel (85%), main tastes, active hours,
    /// engagement, activity and purchase intent; users also carry a latent intent and some lapse (stop being
    /// active) before the end. The truth goes to truth/user_segments.csv and truth/conversion_drivers.csv.
    public let segments: Int
    /// Planted effects of the posting slot and of content attributes on engagement (off: the network of earlier
    /// releases byte for byte). With them the catalog has users/2 posts, each post gets a caption (short or long),
    /// a posting hour drawn half uniformly and half from the audience's hours, and a multiplier on the chance that
    /// a view of it turns into a like, comment, share or click: exp(slot effect of its channel + its attribute
    /// effects) × 0.4 (so the probabilities stay below their caps). The truth goes to truth/slot_effects.csv and
    /// truth/content_effects.csv (docs/forecasting.md).
    public let contentEffects: Bool
    public let startTime: Int64 = 1_756_684_800  // 2025-09-01T00:00:00Z, a Monday
    /// Length of the network's history in days (28 unless set; starts on a Monday).
    public let days: Int
    public let meanSessions = 12.0

    public init(users: Int, seed: UInt64, segments: Int = 0, contentEffects: Bool = false, days: Int = 28) {
        self.users = max(users, 2)
        self.seed = seed
        self.segments = min(max(segments, 0), Self.personas.count)
        self.contentEffects = contentEffects
        self.days = min(max(days, 7), 366)
    }

    /// With content effects: each channel's planted best posting slot (day 0 = Monday, hour in UTC), by channel
    /// index (weibo, wechat, x, instagram, tiktok).
    public static let plantedBestSlots: [(day: Int, hour: Int)] = [(2, 20), (0, 8), (1, 12), (5, 18), (4, 22)]
    /// With content effects: the planted effects of content attributes, as the log of the engagement-rate ratio
    /// against the reference level. A caption is "long" at 140 characters or more; short ones are under 80.
    public static let plantedContentEffects: [(attribute: String, level: String, reference: String, logEffect: Double)] = [
        ("media_type", "video", "image", 0.35),
        ("media_type", "live", "image", 0.2),
        ("media_type", "text", "image", -0.3),
        ("hashtag", "#Trending", "none", 0.25),
        ("text_length", "long", "short", -0.2),
    ]
    /// The planted log effect of posting in (day, hour) on channel `channel`: a daily bump (σ 2 h) around the best
    /// slot's hour, +0.25 on its day, and +0.3 more on the best slot itself.
    public static func slotLogEffect(channel: Int, day: Int, hour: Int) -> Double {
        let best = plantedBestSlots[channel % plantedBestSlots.count]
        let d = Double(min(abs(hour - best.hour), 24 - abs(hour - best.hour)))
        return 0.5 * exp(-d * d / 8) + (day == best.day ? 0.25 : 0) + (day == best.day && hour == best.hour ? 0.3 : 0)
    }

    static let captionEN = ["new post about TOPIC", "check this out", "our latest TOPIC update", "behind the scenes",
                            "what do you think", "a few thoughts on TOPIC", "weekend plans", "tips for beginners",
                            "the TOPIC story of the week", "made with friends"]
    static let captionZH = ["关于TOPIC的新内容", "快来看看", "最新TOPIC动态", "幕后花絮", "你怎么看", "TOPIC小技巧",
                            "周末计划", "和朋友一起", "本周TOPIC故事", "新手必看"]

    /// A caption for a post of `topic`: 1–2 phrases (under 80 characters) or, when `long`, phrases until it has
    /// at least 140 characters.
    static func caption(topic: String, zh: Bool, long: Bool, _ g: inout SplitMix64) -> String {
        let pool = zh ? captionZH : captionEN
        func phrase() -> String { pool[g.below(pool.count)].replacingOccurrences(of: "TOPIC", with: topic) }
        var text = phrase()
        if long {
            while text.count < 140 { text += (zh ? "，" : ". ") + phrase() }
        } else if g.unit() < 0.5 {
            text += (zh ? "，" : ". ") + phrase()
        }
        return text
    }

    /// A hidden audience segment's behaviour (`segments` > 0).
    public struct Persona: Sendable {
        public let name: String
        let channel: Int
        let topics: [Int]
        /// Peak of the active hours (UTC).
        let peakHour: Int
        /// Multiplies the like, comment, share and click probabilities.
        let engagement: Double
        /// Multiplies the sessions.
        let activity: Double
        /// Multiplies the probability that a click converts.
        let intent: Double
    }

    static func topic(_ name: String) -> Int { topics.firstIndex(of: name)! }
    /// The personas of `--segments K` (the first K). Channels: weibo 0, wechat 1, x 2, instagram 3, tiktok 4.
    public static let personas: [Persona] = [
        Persona(name: "night-gamers", channel: 4, topics: [topic("gaming"), topic("comedy")], peakHour: 23,
                engagement: 1.6, activity: 1.6, intent: 0.5),
        Persona(name: "lunchtime-foodies", channel: 3, topics: [topic("food"), topic("travel")], peakHour: 12,
                engagement: 1.0, activity: 1.0, intent: 1.2),
        Persona(name: "morning-news-readers", channel: 2, topics: [topic("news"), topic("finance")], peakHour: 7,
                engagement: 0.5, activity: 1.3, intent: 0.8),
        Persona(name: "fashion-fans", channel: 0, topics: [topic("fashion"), topic("beauty")], peakHour: 20,
                engagement: 2.4, activity: 0.9, intent: 2.0),
        Persona(name: "sports-and-fitness", channel: 1, topics: [topic("sports"), topic("fitness")], peakHour: 18,
                engagement: 1.2, activity: 0.8, intent: 1.0),
        Persona(name: "tech-enthusiasts", channel: 2, topics: [topic("tech"), topic("cars")], peakHour: 15,
                engagement: 0.9, activity: 0.7, intent: 2.6),
        Persona(name: "parents", channel: 1, topics: [topic("parenting"), topic("education")], peakHour: 9,
                engagement: 0.8, activity: 0.6, intent: 1.5),
        Persona(name: "music-and-movies", channel: 3, topics: [topic("music"), topic("movies")], peakHour: 21,
                engagement: 1.5, activity: 1.2, intent: 0.6),
    ]

    /// The planted drivers of conversion with `segments` > 0 (truth/conversion_drivers.csv), as profile features.
    public static let conversionDrivers: [(feature: String, sign: Int, mechanism: String)] = [
        ("click_rate", 1, "a conversion only follows a click"),
        ("conversions", 1, "a latent per-user intent drives conversions before and after any cutoff"),
        ("recency_days", -1, "a quarter of users lapse (stop all activity) at a random day"),
    ]

    /// The hidden segment of user `i` (nil without segments).
    public func segment(of i: Int) -> Int? {
        guard segments > 0 else { return nil }
        var g = rng(10, i)
        return g.below(segments)
    }

    public var contentCount: Int { max(10, contentEffects ? users / 2 : users / 5) }

    public static func userId(_ i: Int) -> String { "u" + pad(i, 7) }
    public static func contentId(_ i: Int) -> String { "c" + pad(i, 7) }
    static func pad(_ i: Int, _ w: Int) -> String {
        let s = String(i)
        return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
    }

    struct UserTraits {
        var channel: Int, country: String, language: String, ageBand: String
        var tastes: [(topic: Int, weight: Double)]
        var sessions: Int
        var follows: Int
        /// With segments: the persona, its hour weights, the user's latent intent and lapse day (activity stops).
        var persona: Persona? = nil
        var hourWeights: [Double] = SyntheticNetwork.hourWeights
        var intent: Double = 1
        var lapseDay: Int? = nil
    }

    func rng(_ stream: UInt64, _ index: Int) -> SplitMix64 {
        var g = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ stream &* 0xD1B5_4A32_D192_ED03 ^ UInt64(index))
        _ = g.next()
        return g
    }

    static func pick(_ weights: [Double], _ g: inout SplitMix64) -> Int {
        let total = weights.reduce(0, +)
        var r = g.unit() * total
        for (i, w) in weights.enumerated() {
            r -= w
            if r < 0 { return i }
        }
        return weights.count - 1
    }

    /// Country, language and age band for a user of channel `ch` (weibo and wechat are Chinese), in this draw order.
    static func demographics(channel ch: Int, _ g: inout SplitMix64) -> (country: String, language: String, age: String) {
        let chinese = ch <= 1
        let country = chinese ? (g.unit() < 0.9 ? "CN" : "SG") : westernCountries[g.below(westernCountries.count)]
        let language = chinese ? "zh" : (country == "JP" ? "ja" : "en")
        let age = ageBands[pick([0.1, 0.3, 0.3, 0.18, 0.12], &g)]
        return (country, language, age)
    }

    /// How many accounts a user follows: heavy-tailed, 1 to 300.
    func followCount(_ g: inout SplitMix64) -> Int {
        min(users - 1, max(1, Int(3.0 / pow(max(g.unit(), 1e-6), 0.7))), 300)
    }

    func traits(_ i: Int) -> UserTraits {
        if let s = segment(of: i) { return personaTraits(i, Self.personas[s]) }
        var g = rng(1, i)
        let ch = Self.pick(Self.channelWeights, &g)
        let (country, language, age) = Self.demographics(channel: ch, &g)
        let n = 2 + g.below(2)
        var tastes: [(Int, Double)] = []
        var used = Set<Int>()
        for k in 0..<n {
            var t = g.below(Self.topics.count)
            while used.contains(t) { t = (t + 1) % Self.topics.count }
            used.insert(t)
            tastes.append((t, k == 0 ? 0.5 + g.unit() * 0.3 : 0.1 + g.unit() * 0.3))
        }
        let total = tastes.reduce(0) { $0 + $1.1 }
        tastes = tastes.map { ($0.0, $0.1 / total) }
        let sessions = max(1, Int((exp(g.normal() * 0.8) * meanSessions / 1.377).rounded()))
        let follows = followCount(&g)
        return UserTraits(channel: ch, country: country, language: language, ageBand: age,
                          tastes: tastes, sessions: sessions, follows: follows)
    }

    /// A user of a hidden segment: the persona's channel (85%), its two topics as the main tastes plus one other,
    /// hours around its peak, its activity; a latent intent (log-normal) and, for a quarter of users, a lapse day.
    func personaTraits(_ i: Int, _ p: Persona) -> UserTraits {
        var g = rng(11, i)
        let ch = g.unit() < 0.85 ? p.channel : Self.pick(Self.channelWeights, &g)
        let (country, language, age) = Self.demographics(channel: ch, &g)
        var other = g.below(Self.topics.count)
        while p.topics.contains(other) { other = (other + 1) % Self.topics.count }
        var tastes: [(Int, Double)] = [(p.topics[0], 0.45 + g.unit() * 0.2), (p.topics[1], 0.2 + g.unit() * 0.15),
                                       (other, 0.05 + g.unit() * 0.1)]
        let total = tastes.reduce(0) { $0 + $1.1 }
        tastes = tastes.map { ($0.0, $0.1 / total) }
        let sessions = max(1, Int((exp(g.normal() * 0.5) * meanSessions * p.activity / 1.133).rounded()))
        let follows = followCount(&g)
        // Hours: a bump (σ 2 h, wrapping around midnight) around the peak, over a floor of the global shape.
        let hours = (0..<24).map { h -> Double in
            let d = Double(min(abs(h - p.peakHour), 24 - abs(h - p.peakHour)))
            return 0.15 * Self.hourWeights[h] / 8.5 + exp(-d * d / 8)
        }
        let intent = p.intent * exp(g.normal() * 0.6 - 0.18)
        let lapse: Int? = g.unit() < 0.25 ? 7 + g.below(days - 7) : nil
        var t = UserTraits(channel: ch, country: country, language: language, ageBand: age,
                           tastes: tastes, sessions: sessions, follows: follows)
        t.persona = p
        t.hourWeights = hours
        t.intent = intent
        t.lapseDay = lapse
        return t
    }

    /// Writes the whole network through `sink(file, bytes)` and returns the record counts.
    public func generate(_ sink: (GeneratedFile, [UInt8]) throws -> Void) throws -> Counts {
        var counts = Counts()
        var buffers: [GeneratedFile: [UInt8]] = [:]
        func emit(_ f: GeneratedFile, _ line: String) throws {
            buffers[f, default: []].append(contentsOf: line.utf8)
            buffers[f, default: []].append(0x0A)
            if buffers[f]!.count >= 1 << 20 {
                try sink(f, buffers[f]!)
                buffers[f]!.removeAll(keepingCapacity: true)
            }
        }
        try emit(.commentSentiment, "interaction_id,label,language")
        try emit(.userTastes, "user_id,topic,weight")
        if segments > 0 {
            try emit(.userSegments, "user_id,segment,persona")
            try emit(.conversionDrivers, "feature,sign,mechanism")
            for d in Self.conversionDrivers { try emit(.conversionDrivers, "\(d.feature),\(d.sign > 0 ? "+" : "-"),\(d.mechanism)") }
        }
        if contentEffects {
            try emit(.slotEffects, "channel,day,hour,log_effect,best")
            for (ch, name) in Self.channels.enumerated() {
                for day in 0..<7 {
                    for hour in 0..<24 {
                        let best = Self.plantedBestSlots[ch].day == day && Self.plantedBestSlots[ch].hour == hour
                        let e = Self.slotLogEffect(channel: ch, day: day, hour: hour)
                        try emit(.slotEffects, "\(name),\(day),\(hour),\(String(format3: e)),\(best ? 1 : 0)")
                    }
                }
            }
            try emit(.contentEffects, "attribute,level,reference,log_effect")
            for e in Self.plantedContentEffects {
                try emit(.contentEffects, "\(e.attribute),\(e.level),\(e.reference),\(e.logEffect)")
            }
        }

        // Users.
        for i in 0..<users {
            let t = traits(i)
            counts.users += 1
            var cg = rng(2, i)
            let created = startTime - Int64(86400 * (30 + cg.below(700)))
            try emit(.users, "{\"user_id\":\"\(Self.userId(i))\",\"channel\":\"\(Self.channels[t.channel])\","
                     + "\"country\":\"\(t.country)\",\"language\":\"\(t.language)\",\"age_band\":\"\(t.ageBand)\","
                     + "\"created_at\":\"\(Timestamp.iso(created))\"}")
            for (topic, w) in t.tastes {
                try emit(.userTastes, "\(Self.userId(i)),\(Self.topics[topic]),\(String(format3: w))")
            }
            if let s = segment(of: i) { try emit(.userSegments, "\(Self.userId(i)),\(s),\(Self.personas[s].name)") }
        }

        // Content, grouped by primary topic for taste-driven sampling.
        var byTopic = [[Int]](repeating: [], count: Self.topics.count)
        var contentTopics: [Int] = []
        contentTopics.reserveCapacity(contentCount)
        // With content effects: each post's multiplier on its engagement probabilities.
        var multipliers: [Double] = []
        for c in 0..<contentCount {
            var g = rng(3, c)
            let topic = g.below(Self.topics.count)
            byTopic[topic].append(c)
            contentTopics.append(topic)
            var topics = [Self.topics[topic]]
            if g.unit() < 0.3 {
                let second = (topic + 1 + g.below(Self.topics.count - 1)) % Self.topics.count
                topics.append(Self.topics[second])
            }
            let tagBase = Self.topics[topic].capitalized1
            var tags = ["#\(tagBase)\(["Daily", "Life", "Fans"][g.below(3)])"]
            if g.unit() < 0.5 { tags.append("#\(tagBase)") }
            if g.unit() < 0.1 { tags.append("#Trending") }
            // Heavy-tailed authorship: low user indices create more.
            let author = Int(Double(users) * pow(g.unit(), 3))
            let at = traits(author)
            let created = startTime + Int64(g.below(days * 86400))
            let media = Self.mediaTypes[Self.pick([0.2, 0.35, 0.4, 0.05], &g)]
            let topicsJSON = topics.map { "\"\($0)\"" }.joined(separator: ",")
            let tagsJSON = tags.map { "\"\($0)\"" }.joined(separator: ",")
            var posted = created, captionJSON = ""
            if contentEffects {
                // The posting time: a day, then an hour half uniform and half like the audience's hours.
                let day = g.below(days)
                let hour = g.unit() < 0.5 ? g.below(24) : Self.pick(Self.hourWeights, &g)
                posted = startTime + Int64(day * 86400 + hour * 3600 + g.below(3600))
                let long = g.unit() < 0.25
                let text = Self.caption(topic: Self.topics[topic], zh: at.language == "zh", long: long, &g)
                captionJSON = ",\"text\":" + JSONText.quote(text)
                var e = Self.slotLogEffect(channel: at.channel, day: day % 7, hour: hour)
                for p in Self.plantedContentEffects {
                    switch p.attribute {
                    case "media_type" where p.level == media: e += p.logEffect
                    case "hashtag" where tags.contains(p.level): e += p.logEffect
                    case "text_length" where long: e += p.logEffect
                    default: break
                    }
                }
                multipliers.append(0.4 * exp(e))
            }
            try emit(.content, "{\"content_id\":\"\(Self.contentId(c))\",\"author_id\":\"\(Self.userId(author))\","
                     + "\"channel\":\"\(Self.channels[at.channel])\",\"media_type\":\"\(media)\","
                     + "\"topics\":[\(topicsJSON)],\"hashtags\":[\(tagsJSON)],"
                     + "\"created_at\":\"\(Timestamp.iso(posted))\"\(captionJSON)}")
            counts.content += 1
        }
        for t in 0..<byTopic.count where byTopic[t].isEmpty { byTopic[t] = [t % contentCount] }

        // Follows and interactions, one user at a time.
        var iid = 0
        for i in 0..<users {
            let t = traits(i)
            var g = rng(4, i)
            var followees = Set<Int>()
            var attempts = 0
            while followees.count < t.follows, attempts < t.follows * 4 {
                attempts += 1
                let f = Int(Double(users) * pow(g.unit(), 2.5))
                if f != i { followees.insert(f) }
            }
            for f in followees.sorted() {
                let ts = startTime - Int64(g.below(365 * 86400))
                try emit(.follows, "{\"follower_id\":\"\(Self.userId(i))\",\"followee_id\":\"\(Self.userId(f))\","
                         + "\"channel\":\"\(Self.channels[t.channel])\",\"ts\":\(ts)}")
                counts.follows += 1
            }
            let channel = Self.channels[t.channel]
            let uid = Self.userId(i)
            for _ in 0..<t.sessions {
                let topic = t.tastes[Self.pick(t.tastes.map(\.weight), &g)].topic
                let list = byTopic[topic]
                let c = list[Int(Double(list.count) * pow(g.unit(), 2))]
                let dayCount = t.lapseDay ?? days
                let day = Self.pick((0..<dayCount).map { Self.weekdayWeights[$0 % 7] }, &g)
                let hour = Self.pick(t.hourWeights, &g)
                let ts = startTime + Int64(day * 86400 + hour * 3600 + g.below(3600))
                let affinity = t.tastes.first { $0.topic == contentTopics[c] }?.weight ?? 0.05
                var events: [(InteractionKind, Int64)] = [(.view, ts)]
                // With segments the persona scales engagement and the user's intent scales conversion.
                let e = (t.persona?.engagement ?? 1) * (contentEffects ? multipliers[c] : 1)
                if g.unit() < e * (0.05 + 0.5 * affinity) { events.append((.like, ts + 1 + Int64(g.below(300)))) }
                if g.unit() < e * (0.02 + 0.2 * affinity) { events.append((.comment, ts + 5 + Int64(g.below(600)))) }
                if g.unit() < e * (0.01 + 0.1 * affinity) { events.append((.share, ts + 5 + Int64(g.below(600)))) }
                if g.unit() < e * (0.05 + 0.2 * affinity) {
                    events.append((.click, ts + 1 + Int64(g.below(120))))
                    if g.unit() < min(0.9, 0.1 * t.intent) { events.append((.conversion, ts + 200 + Int64(g.below(3000)))) }
                }
                for (kind, ets) in events {
                    iid += 1
                    let id = "i" + Self.pad(iid, 9)
                    var line = "{\"interaction_id\":\"\(id)\",\"user_id\":\"\(uid)\",\"content_id\":\"\(Self.contentId(c))\","
                        + "\"type\":\"\(kind.name)\",\"channel\":\"\(channel)\",\"ts\":\"\(Timestamp.iso(ets))\""
                    if kind == .comment {
                        let pPos = 0.25 + 0.6 * affinity
                        let r = g.unit()
                        let label = r < pPos ? "positive" : (r < pPos + 0.25 ? "neutral" : "negative")
                        let zh = t.language == "zh"
                        var text = Self.commentText(label: label, zh: zh, &g)
                        if label == "positive", g.unit() < 0.3 { text += zh ? "！" : "!" }
                        line += ",\"text\":" + JSONText.quote(text)
                        try emit(.commentSentiment, "\(id),\(label),\(t.language)")
                        counts.comments += 1
                    }
                    if kind == .conversion { line += ",\"value\":\(10 + g.below(190))" }
                    line += "}"
                    try emit(.interactions, line)
                    counts.interactions += 1
                }
            }
        }
        // One planted brand incident, so that monitoring has something to find: on day 20 at 14:00 UTC a burst of
        // angry comments about the (fictional) "Nova" phone's battery lands on the first tech post within an hour.
        // Recorded in truth/incidents.csv; its comments are in truth/comment_sentiment.csv like all others.
        try emit(.incidents, "key,start,end,comments")
        let techIndex = Self.topics.firstIndex(of: "tech")!
        if let c = byTopic[techIndex].first ?? byTopic.first(where: { !$0.isEmpty })?.first {
            let n = max(25, users / 40)
            let start = startTime + 20 * 86400 + 14 * 3600
            var g = rng(9, 0)
            for k in 0..<n {
                let u = (k * 7919) % users
                iid += 1
                let id = "i" + Self.pad(iid, 9)
                let zh = traits(u).language == "zh"
                let text = zh ? Self.incidentZH[g.below(Self.incidentZH.count)] : Self.incidentEN[g.below(Self.incidentEN.count)]
                try emit(.interactions, "{\"interaction_id\":\"\(id)\",\"user_id\":\"\(Self.userId(u))\","
                         + "\"content_id\":\"\(Self.contentId(c))\",\"type\":\"comment\","
                         + "\"channel\":\"\(Self.channels[traits(u).channel])\",\"ts\":\"\(Timestamp.iso(start + Int64(k * 3600 / n)))\","
                         + "\"text\":" + JSONText.quote(text) + "}")
                try emit(.commentSentiment, "\(id),negative,\(zh ? "zh" : "en")")
                counts.interactions += 1
                counts.comments += 1
            }
            try emit(.incidents, "topic:tech,\(Timestamp.iso(start)),\(Timestamp.iso(start + 3600)),\(n)")
            try emit(.incidents, "brand:nova,\(Timestamp.iso(start)),\(Timestamp.iso(start + 3600)),\(n)")
        }
        for f in GeneratedFile.written(segments: segments, contentEffects: contentEffects) {
            if let b = buffers[f], !b.isEmpty { try sink(f, b) }
        }
        return counts
    }
}

extension SyntheticNetwork {
    /// A comment of the given hidden label: one phrase of the label's pool, and a second one 40% of the time.
    static func commentText(label: String, zh: Bool, _ g: inout SplitMix64) -> String {
        let pool: [String]
        switch (label, zh) {
        case ("positive", false): pool = posEN
        case ("negative", false): pool = negEN
        case ("neutral", false): pool = neuEN
        case ("positive", true): pool = posZH
        case ("negative", true): pool = negZH
        default: pool = neuZH
        }
        var text = pool[g.below(pool.count)]
        if g.unit() < 0.4 { text += (zh ? "，" : ", ") + pool[g.below(pool.count)] }
        return text
    }

    /// `count` extra comments over this network's users and content, for sentiment benchmarks at scale: each one
    /// by a random user on a random post at a time drawn with the network's daily and weekly seasonality, English or
    /// Chinese by the user's language, with a hidden label (55% positive, 25% neutral, 20% negative) written to
    /// `truth` as "interaction_id,label,language". Deterministic for the same users, seed and count.
    public func comments(count: Int, _ sink: (_ interactions: [UInt8], _ truth: [UInt8]) throws -> Void) throws {
        var lines: [UInt8] = [], truth: [UInt8] = []
        let dayWeights = (0..<days).map { Self.weekdayWeights[$0 % 7] }
        var languageOf: [Int: (String, Bool)] = [:]
        for k in 0..<count {
            var g = rng(10, k)
            let u = g.below(users)
            let (channel, zh): (String, Bool)
            if let c = languageOf[u] { (channel, zh) = c } else {
                let t = traits(u)
                (channel, zh) = (Self.channels[t.channel], t.language == "zh")
                if languageOf.count < 1_000_000 { languageOf[u] = (channel, zh) }
            }
            let c = g.below(contentCount)
            let day = Self.pick(dayWeights, &g)
            let hour = Self.pick(Self.hourWeights, &g)
            let ts = startTime + Int64(day * 86400 + hour * 3600 + g.below(3600))
            let r = g.unit()
            let label = r < 0.55 ? "positive" : (r < 0.8 ? "neutral" : "negative")
            let text = Self.commentText(label: label, zh: zh, &g)
            let id = "k" + Self.pad(k, 10)
            lines.append(contentsOf: ("{\"interaction_id\":\"\(id)\",\"user_id\":\"\(Self.userId(u))\",\"content_id\":\"\(Self.contentId(c))\","
                + "\"type\":\"comment\",\"channel\":\"\(channel)\",\"ts\":\(ts),\"text\":" + JSONText.quote(text) + "}\n").utf8)
            truth.append(contentsOf: "\(id),\(label),\(zh ? "zh" : "en")\n".utf8)
            if lines.count >= 1 << 20 {
                try sink(lines, truth)
                lines.removeAll(keepingCapacity: true)
                truth.removeAll(keepingCapacity: true)
            }
        }
        if !lines.isEmpty { try sink(lines, truth) }
    }
}

extension String {
    init(format3 v: Double) {
        let scaled = Int((v * 1000).rounded())
        self = "\(scaled / 1000).\(SyntheticNetwork.pad(scaled % 1000, 3))"
    }
    var capitalized1: String { prefix(1).uppercased() + dropFirst() }
}
