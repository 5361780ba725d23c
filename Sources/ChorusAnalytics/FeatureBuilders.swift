import ChorusModel

/// The features job's broadcast catalog with every id and term interned (`IdTable`): content → topic and hashtag
/// indices, user → audience channel and country indices. Built once per job on each worker.
///
/// `FeatureMath.userFeatures` / `contentFeatures` define the features; `UserFeatureBuilder` and
/// `ContentFeatureBuilder` compute the same values from raw record fields over this index, with no per-record
/// allocation and no lookup whose cost grows with the catalog beyond one hash probe. Tests hold them equal.
public struct FeatureIndex: Sendable {
    public private(set) var contents = IdTable()
    private var topicRange: [(start: Int32, end: Int32)] = []
    private var tagRange: [(start: Int32, end: Int32)] = []
    private var contentTopics: [Int32] = []
    private var contentTags: [Int32] = []
    public private(set) var topics = IdTable()
    public private(set) var tags = IdTable()
    public private(set) var topicNames: [String] = []
    public private(set) var tagNames: [String] = []

    public private(set) var users = IdTable()
    private var userChannel: [Int32] = []
    private var userCountry: [Int32] = []
    /// Keys of `ContentFeatures.audienceByChannel` / `audienceByCountry`.
    public private(set) var audienceChannels = IdTable()
    public private(set) var audienceCountries = IdTable()
    public private(set) var audienceChannelNames: [String] = []
    public private(set) var audienceCountryNames: [String] = []
    private(set) var unknownChannel: Int32 = 0
    private(set) var unknownCountry: Int32 = 0

    public init(users: Int = 16, contents: Int = 16) {
        self.users = IdTable(capacity: users)
        self.contents = IdTable(capacity: contents)
        userChannel.reserveCapacity(users); userCountry.reserveCapacity(users)
        topicRange.reserveCapacity(contents); tagRange.reserveCapacity(contents)
        unknownChannel = Int32(Self.intern("unknown", &audienceChannels, &audienceChannelNames))
        unknownCountry = Int32(Self.intern("unknown", &audienceCountries, &audienceCountryNames))
    }

    public init(_ catalog: FeatureCatalog) {
        self.init(users: catalog.users.count, contents: catalog.contents.count)
        for (id, u) in catalog.users { addUser(id: id, channel: u.channel, country: u.country) }
        for (id, c) in catalog.contents { addContent(id: id, topics: c.topics, hashtags: c.hashtags) }
    }

    private static func intern(_ s: String, _ table: inout IdTable, _ names: inout [String]) -> Int {
        let i = table.intern(s)
        if i == names.count { names.append(s) }
        return i
    }

    /// Adds a user (a later entry for the same id replaces the earlier, as in `FeatureCatalog`).
    public mutating func addUser(id: String, channel: String, country: String) {
        let ch = Int32(Self.intern(channel, &audienceChannels, &audienceChannelNames))
        let co = Int32(Self.intern(country.isEmpty ? "unknown" : country, &audienceCountries, &audienceCountryNames))
        let i = users.intern(id)
        if i == userChannel.count { userChannel.append(ch); userCountry.append(co) } else { userChannel[i] = ch; userCountry[i] = co }
    }

    /// Adds a content item (a later entry for the same id replaces the earlier).
    public mutating func addContent(id: String, topics t: [String], hashtags h: [String]) {
        let ts = Int32(contentTopics.count)
        for x in t { contentTopics.append(Int32(Self.intern(x, &topics, &topicNames))) }
        let hs = Int32(contentTags.count)
        for x in h { contentTags.append(Int32(Self.intern(x, &tags, &tagNames))) }
        let r1 = (ts, Int32(contentTopics.count)), r2 = (hs, Int32(contentTags.count))
        let i = contents.intern(id)
        if i == topicRange.count { topicRange.append(r1); tagRange.append(r2) } else { topicRange[i] = r1; tagRange[i] = r2 }
    }

    @inline(__always) func topicsOf(_ content: Int) -> ArraySlice<Int32> {
        let r = topicRange[content]
        return contentTopics[Int(r.start)..<Int(r.end)]
    }

    @inline(__always) func tagsOf(_ content: Int) -> ArraySlice<Int32> {
        let r = tagRange[content]
        return contentTags[Int(r.start)..<Int(r.end)]
    }

    @inline(__always) func audienceOf(_ user: Int) -> (channel: Int32, country: Int32) {
        user < userChannel.count ? (userChannel[user], userCountry[user]) : (unknownChannel, unknownCountry)
    }
}

/// Sparse weights over a dense term space: one slot per interned term, and the list of terms touched since the
/// last reset, so that clearing costs the number of terms used, not the size of the space.
struct TermWeights {
    private(set) var weights: [Double]
    private var stamp: [UInt32]
    private var generation: UInt32 = 1
    private(set) var touched: [Int32] = []

    init(count: Int) {
        weights = [Double](repeating: 0, count: count)
        stamp = [UInt32](repeating: 0, count: count)
    }

    @inline(__always) mutating func add(_ term: Int32, _ w: Double) {
        let t = Int(term)
        if stamp[t] != generation { stamp[t] = generation; weights[t] = 0; touched.append(term) }
        weights[t] += w
    }

    mutating func reset() {
        touched.removeAll(keepingCapacity: true)
        generation &+= 1
        if generation == 0 {  // wrapped: clear the stamps once every 2^32 resets
            for i in stamp.indices { stamp[i] = 0 }
            generation = 1
        }
    }

    /// The `n` heaviest touched terms, with `FeatureMath.top`'s order: weight descending, then name ascending.
    func top(_ names: [String], _ n: Int = FeatureMath.topN) -> [WeightedTerm] {
        touched.map { WeightedTerm(name: names[Int($0)], weight: weights[Int($0)]) }
            .sorted { $0.weight != $1.weight ? $0.weight > $1.weight : $0.name < $1.name }
            .prefix(n).map { $0 }
    }
}

/// Counts per interned key, with the touched list (as `TermWeights`, for small integer counts).
struct KeyCounts {
    private var counts: [Int] = []
    private(set) var touched: [Int32] = []

    @inline(__always) mutating func add(_ key: Int, _ n: Int = 1) {
        if key >= counts.count { counts.append(contentsOf: repeatElement(0, count: key + 1 - counts.count)) }
        if counts[key] == 0 { touched.append(Int32(key)) }
        counts[key] += n
    }

    func dictionary(_ names: [String]) -> [String: Int] {
        var out = [String: Int](minimumCapacity: touched.count)
        for k in touched { out[names[Int(k)]] = counts[Int(k)] }
        return out
    }

    mutating func reset() {
        for k in touched { counts[Int(k)] = 0 }
        touched.removeAll(keepingCapacity: true)
    }
}

/// Builds one user's `UserFeatures` from the user's interactions, one at a time, as `FeatureMath.userFeatures`
/// defines them. Reused across users: `finish` returns the features and resets the builder.
public struct UserFeatureBuilder {
    public let index: FeatureIndex
    private var channels = IdTable()
    private var channelNames: [String] = []
    private var byChannel = KeyCounts()
    private var typeCounts = [Int](repeating: 0, count: InteractionKind.allCases.count + 1)
    private var hours = [Int](repeating: 0, count: 24)
    private var weekdays = [Int](repeating: 0, count: 7)
    private var days: [Int64] = []
    private var topics: TermWeights
    private var tags: TermWeights
    private var first = Int64.max, last = Int64.min
    private var engagements = 0
    private var n = 0

    public init(index: FeatureIndex) {
        self.index = index
        topics = TermWeights(count: index.topics.count)
        tags = TermWeights(count: index.tags.count)
    }

    /// Adds one interaction: its kind, channel, time and content id (bytes of the stored record).
    @inline(__always)
    public mutating func add(kind: InteractionKind, channel: UnsafeRawBufferPointer, ts: Int64,
                             content: UnsafeRawBufferPointer) {
        n += 1
        typeCounts[kind.rawValue] += 1
        let ch = channels.intern(channel)
        if ch == channelNames.count { channelNames.append(String(decoding: channel, as: UTF8.self)) }
        byChannel.add(ch)
        if kind.isEngagement { engagements += 1 }
        hours[FeatureMath.hour(ts)] += 1
        weekdays[FeatureMath.weekday(ts)] += 1
        days.append(FeatureMath.day(ts))
        first = min(first, ts)
        last = max(last, ts)
        if let c = index.contents.index(of: content) {
            let w = kind.interestWeight
            for t in index.topicsOf(c) { topics.add(t, w) }
            for h in index.tagsOf(c) { tags.add(h, w) }
        }
    }

    /// The features of the interactions added since the last `finish`, and a reset.
    public mutating func finish(userId: String, user: UserRecord?, followers: Int, following: Int,
                                asOf: Int64) -> UserFeatures {
        days.sort()
        var distinctDays = 0
        var previous: Int64?
        for d in days where d != previous { distinctDays += 1; previous = d }
        let views = typeCounts[InteractionKind.view.rawValue]
        let f = UserFeatures(
            userId: userId, channel: user?.channel ?? "", country: user?.country ?? "",
            language: user?.language ?? "", ageBand: user?.ageBand ?? "", knownUser: user != nil,
            interactions: n, countsByType: FeatureMath.typeCountDictionary(typeCounts),
            countsByChannel: byChannel.dictionary(channelNames), engagements: engagements,
            engagementRate: views > 0 ? Double(engagements) / Double(views) : 0,
            activeHours: hours, weekdays: weekdays,
            firstTs: n > 0 ? first : 0, lastTs: n > 0 ? last : 0,
            recencyDays: n > 0 ? Double(asOf - last) / 86400 : 0,
            activeDays: distinctDays, frequency: distinctDays == 0 ? 0 : Double(n) / Double(distinctDays),
            topTopics: topics.top(index.topicNames), topHashtags: tags.top(index.tagNames),
            followers: followers, following: following, asOf: asOf)
        for i in typeCounts.indices { typeCounts[i] = 0 }
        for i in hours.indices { hours[i] = 0 }
        for i in weekdays.indices { weekdays[i] = 0 }
        byChannel.reset(); topics.reset(); tags.reset()
        days.removeAll(keepingCapacity: true)
        first = .max; last = .min; engagements = 0; n = 0
        return f
    }
}

/// Builds one content item's `ContentFeatures` from its interactions, one at a time, as
/// `FeatureMath.contentFeatures` defines them. Reused across items: `finish` resets it.
public struct ContentFeatureBuilder {
    public let index: FeatureIndex
    /// Users missing from the catalog, numbered after the catalog's users (distinct, but "unknown" audience).
    private var strangers = IdTable()
    private var audience: [Int] = []
    private var typeCounts = [Int](repeating: 0, count: InteractionKind.allCases.count + 1)
    private var byChannel = KeyCounts()
    private var byCountry = KeyCounts()
    private var engagements = 0
    /// Σ interest weights of the item's interactions, in their order (the global topic and hashtag totals).
    public private(set) var interestWeight: Double = 0

    public init(index: FeatureIndex) { self.index = index }

    @inline(__always)
    public mutating func add(kind: InteractionKind, user: UnsafeRawBufferPointer) {
        typeCounts[kind.rawValue] += 1
        if kind.isEngagement { engagements += 1 }
        interestWeight += kind.interestWeight
        if let u = index.users.index(of: user) {
            audience.append(u)
        } else {
            audience.append(index.users.count + strangers.intern(user))
        }
    }

    public mutating func finish(contentId: String, content: ContentRecord?) -> ContentFeatures {
        audience.sort()
        var unique = 0
        var previous = -1
        for u in audience where u != previous {
            unique += 1
            previous = u
            let a = index.audienceOf(u)
            byChannel.add(Int(a.channel))
            byCountry.add(Int(a.country))
        }
        let views = typeCounts[InteractionKind.view.rawValue]
        let f = ContentFeatures(
            contentId: contentId, authorId: content?.authorId ?? "", channel: content?.channel ?? "",
            mediaType: content?.mediaType ?? "", knownContent: content != nil, impressions: views,
            countsByType: FeatureMath.typeCountDictionary(typeCounts), engagements: engagements,
            engagementRate: views > 0 ? Double(engagements) / Double(views) : 0,
            uniqueUsers: unique, audienceByChannel: byChannel.dictionary(index.audienceChannelNames),
            audienceByCountry: byCountry.dictionary(index.audienceCountryNames))
        for i in typeCounts.indices { typeCounts[i] = 0 }
        byChannel.reset(); byCountry.reset()
        audience.removeAll(keepingCapacity: true)
        engagements = 0; interestWeight = 0
        return f
    }
}
