import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import Foundation

// The sentiment and themes kinds' aggregates and their messages (proto/chorus/v1/jobs/sentiment.proto). A message
// from a worker is remote input: every count is checked (a whole number in 0...2^40) before it is summed.

/// One partition's contribution to the sentiment job's global aggregates (merged by the coordinator).
struct SentimentPartial: Sendable {
    var texts = 0
    var comments = 0
    var posts = 0
    var users = 0
    var labels = SentimentBucket()
    /// channel → comments and posts scored on it
    var channels: [String: SentimentBucket] = [:]
    /// key → unix hour → bucket
    var series: [String: [Int64: SentimentBucket]] = [:]

    init() {}

    /// The bound on every count, hour and score sum from a worker (sums of 65,536 partitions of such counts cannot
    /// overflow).
    static let maxCount = UInt64(1) << 40

    static func count(_ x: UInt64, _ what: String) throws -> Int {
        guard x <= maxCount else { throw ChorusError(.internal, "malformed result from a worker: \(what) \(x) out of range") }
        return Int(x)
    }

    static func scoreSum(_ x: Double) throws -> Double {
        guard x.isFinite, abs(x) <= Double(maxCount) else {
            throw ChorusError(.internal, "malformed result from a worker: score sum \(x) out of range")
        }
        return x
    }

    static func flat(_ b: SentimentBucket) -> [Double] {
        [Double(b.n), Double(b.negative), Double(b.neutral), Double(b.positive), b.scoreSum]
    }

    mutating func merge(_ o: SentimentPartial) {
        texts += o.texts; comments += o.comments; posts += o.posts; users += o.users
        labels.merge(o.labels)
        for (c, b) in o.channels { channels[c, default: SentimentBucket()].merge(b) }
        for (k, hours) in o.series {
            var mine = series[k] ?? [:]
            for (h, b) in hours { mine[h, default: SentimentBucket()].merge(b) }
            series[k] = mine
        }
    }
}

extension SentimentPartial {
    init(_ m: Chorus_V1_Jobs_SentimentPartial) throws {
        texts = try Self.count(m.texts, "texts"); comments = try Self.count(m.comments, "comments")
        posts = try Self.count(m.posts, "posts"); users = try Self.count(m.users, "users")
        labels = try SentimentBucket(m.labels)
        channels = try m.channels.mapValues { try SentimentBucket($0) }
        for (k, s) in m.series {
            guard s.counts.count == 4 * s.hours.count, s.scoreSums.count == s.hours.count else {
                throw ChorusError(.internal, "malformed result from a worker: series \(k.prefix(60)) has "
                                  + "\(s.hours.count) hours, \(s.counts.count) counts, \(s.scoreSums.count) sums")
            }
            var hours: [Int64: SentimentBucket] = [:]
            for (i, h) in s.hours.enumerated() {
                // Unix hours: well inside Int64 (|h| ≤ 2^40 is ±125 million years).
                guard h.magnitude <= Self.maxCount else {
                    throw ChorusError(.internal, "malformed result from a worker: hour \(h) out of range")
                }
                var b = SentimentBucket()
                b.n = try Self.count(s.counts[4 * i], "count")
                b.negative = try Self.count(s.counts[4 * i + 1], "count")
                b.neutral = try Self.count(s.counts[4 * i + 2], "count")
                b.positive = try Self.count(s.counts[4 * i + 3], "count")
                b.scoreSum = try Self.scoreSum(s.scoreSums[i])
                hours[h] = b
            }
            series[k] = hours
        }
    }

    var message: Chorus_V1_Jobs_SentimentPartial {
        var m = Chorus_V1_Jobs_SentimentPartial()
        m.texts = UInt64(texts); m.comments = UInt64(comments); m.posts = UInt64(posts); m.users = UInt64(users)
        m.labels = Chorus_V1_Jobs_SentimentCounts(labels)
        m.channels = channels.mapValues { Chorus_V1_Jobs_SentimentCounts($0) }
        m.series = series.mapValues { hours in
            var s = Chorus_V1_Jobs_SentimentSeries()
            let sorted = hours.keys.sorted()
            s.hours = sorted
            s.counts.reserveCapacity(4 * sorted.count)
            s.scoreSums.reserveCapacity(sorted.count)
            for h in sorted {
                let b = hours[h]!
                s.counts += [UInt64(b.n), UInt64(b.negative), UInt64(b.neutral), UInt64(b.positive)]
                s.scoreSums.append(b.scoreSum)
            }
            return s
        }
        return m
    }
}

extension SentimentBucket {
    init(_ m: Chorus_V1_Jobs_SentimentCounts) throws {
        self.init()
        n = try SentimentPartial.count(m.n, "count"); negative = try SentimentPartial.count(m.negative, "count")
        neutral = try SentimentPartial.count(m.neutral, "count"); positive = try SentimentPartial.count(m.positive, "count")
        scoreSum = try SentimentPartial.scoreSum(m.scoreSum)
    }
}

extension Chorus_V1_Jobs_SentimentCounts {
    init(_ b: SentimentBucket) {
        self.init()
        n = UInt64(b.n); negative = UInt64(b.negative); neutral = UInt64(b.neutral); positive = UInt64(b.positive)
        scoreSum = b.scoreSum
    }
}

/// The alerts a `sentiment-why` stage explains.
struct SentimentWhyRequest: Sendable {
    struct Item: Sendable {
        var key: String
        var kind: String
        /// Unix hours: the baseline [baselineStart, start), the alert window [start, end).
        var baselineStart: Int64
        var start: Int64
        var end: Int64
    }
    var items: [Item]

    init(items: [Item]) { self.items = items }

    init(_ m: Chorus_V1_Jobs_SentimentWhyRequest) {
        items = m.items.map { .init(key: $0.key, kind: $0.kind, baselineStart: $0.baselineStart, start: $0.start, end: $0.end) }
    }

    var message: Chorus_V1_Jobs_SentimentWhyRequest {
        var m = Chorus_V1_Jobs_SentimentWhyRequest()
        m.items = items.map {
            var i = Chorus_V1_Jobs_SentimentWhyItem()
            i.key = $0.key; i.kind = $0.kind; i.baselineStart = $0.baselineStart; i.start = $0.start; i.end = $0.end
            return i
        }
        return m
    }
}

/// What each partition returns for the alerts of a `sentiment-why` stage (parallel to the request's items).
struct SentimentWhyPartial: Sendable {
    struct Example: Sendable {
        var interactionId: String
        var text: String
        var score: Float
    }
    struct Item: Sendable {
        var window: [String: Int] = [:]
        var baseline: [String: Int] = [:]
        var examples: [Example] = []
        /// The window's matching comments, sketched, so the coordinator can tell which alerts share a burst.
        var sketch = MinHashSketch()
    }
    var items: [Item]

    init(items: [Item]) { self.items = items }

    /// Checked on the coordinator before merging (a worker's reply is remote input): bounded counts and sketches.
    init(_ m: Chorus_V1_Jobs_SentimentWhyPartial) throws {
        items = try m.items.map { i in
            var item = Item()
            item.window = try i.window.mapValues { try SentimentPartial.count($0, "term count") }
            item.baseline = try i.baseline.mapValues { try SentimentPartial.count($0, "term count") }
            item.examples = i.examples.map(Example.init)
            var sketch = MinHashSketch()
            sketch.minima = i.sketch.minima
            sketch.count = try SentimentPartial.count(i.sketch.count, "sketch count")
            item.sketch = sketch
            return item
        }
    }

    var message: Chorus_V1_Jobs_SentimentWhyPartial {
        var m = Chorus_V1_Jobs_SentimentWhyPartial()
        m.items = items.map { item in
            var c = Chorus_V1_Jobs_SentimentWhyCounts()
            c.window = item.window.mapValues { UInt64($0) }
            c.baseline = item.baseline.mapValues { UInt64($0) }
            c.examples = item.examples.map(\.message)
            c.sketch.minima = item.sketch.minima
            c.sketch.count = UInt64(item.sketch.count)
            return c
        }
        return m
    }
}

extension SentimentWhyPartial.Example {
    init(_ m: Chorus_V1_Jobs_SentimentExample) {
        self.init(interactionId: m.interactionID, text: m.text, score: m.score)
    }

    var message: Chorus_V1_Jobs_SentimentExample {
        var m = Chorus_V1_Jobs_SentimentExample()
        m.interactionID = interactionId; m.text = text; m.score = score
        return m
    }
}

/// What a `themes-collect` task returns: comments matching the key, how many were negative, and the negative ones
/// kept (at most `max_docs`).
struct ThemesPartial: Sendable {
    var matched: Int
    var negative: Int
    var docs: [SentimentWhyPartial.Example]

    init(matched: Int, negative: Int, docs: [SentimentWhyPartial.Example]) {
        self.matched = matched; self.negative = negative; self.docs = docs
    }

    /// Checked on the coordinator before summing (remote input).
    init(_ m: Chorus_V1_Jobs_ThemesPartial) throws {
        matched = try SentimentPartial.count(m.matched, "matched")
        negative = try SentimentPartial.count(m.negative, "negative")
        docs = m.docs.map(SentimentWhyPartial.Example.init)
    }

    var message: Chorus_V1_Jobs_ThemesPartial {
        var m = Chorus_V1_Jobs_ThemesPartial()
        m.matched = UInt64(matched); m.negative = UInt64(negative); m.docs = docs.map(\.message)
        return m
    }
}

/// The `sentiment` part of a user's profile (JSON keys in docs/cli.md).
struct UserSentiment: Codable, Sendable {
    struct Attitude: Codable, Sendable {
        var comments: Int
        var meanScore: Double
        var negative: Int
        var neutral: Int
        var positive: Int
        var attitude: String
        enum CodingKeys: String, CodingKey { case comments, meanScore = "mean_score", negative, neutral, positive, attitude }
    }
    var comments: Int
    var meanScore: Double
    var distribution: [String: Int]
    var attitudes: [String: Attitude]
    enum CodingKeys: String, CodingKey { case comments, meanScore = "mean_score", distribution, attitudes }
}

/// A stored alert (`chorus alerts`).
struct StoredAlert: Codable, Sendable {
    var id: String
    var key: String
    var kind: String
    /// ISO 8601 start of the alerting hour, and the unix hour.
    var at: String
    var hour: Int64
    var count: Int
    var value: Double
    var baseline: Double
    var threshold: Double
    var why: [String]
    var examples: [String]
    var job: String
    var model: String
    var detectedAt: String
    /// The incident this alert is part of: alerts of one run that fire on the same burst of comments through
    /// different keys share it (IncidentGrouping). Absent on alerts stored before incidents existed.
    var incident: String?
    /// Every key of that incident, this one included.
    var incidentKeys: [String]?
    enum CodingKeys: String, CodingKey {
        case id, key, kind, at, hour, count, value, baseline, threshold, why, examples, job, model
        case detectedAt = "detected_at", incident, incidentKeys = "incident_keys"
    }
}

/// The keys a text counts under in the series, alerts and attitudes: "topic:<topic>", "hashtag:<tag without #,
/// lowercased>", and "brand:<keyword>" for each brand keyword (job param `keywords`) the text or its post contains.
enum SentimentKeys {
    static func keywords(_ params: JobParams) -> [String] {
        params.string("keywords", "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty }
    }

    static func base(topics: [String], hashtags: [String]) -> [String] {
        topics.map { "topic:" + $0.lowercased() }
            + hashtags.map { "hashtag:" + ($0.hasPrefix("#") ? String($0.dropFirst()) : $0).lowercased() }
    }

    static func brands(_ keywords: [String], in texts: String...) -> [String] {
        guard !keywords.isEmpty else { return [] }
        return keywords.filter { k in texts.contains { contains($0, keyword: k) } }.map { "brand:" + $0 }
    }

    static func matches(_ key: String, topics: [String], hashtags: [String], keywords: [String], texts: String...) -> Bool {
        if base(topics: topics, hashtags: hashtags).contains(key) { return true }
        guard key.hasPrefix("brand:") else { return false }
        let k = String(key.dropFirst(6))
        return texts.contains { contains($0, keyword: k) }
    }

    /// Whether `text` contains the (lowercase) keyword, ASCII letters compared without case: a byte search, no
    /// Foundation (locale-aware `contains` was a large share of the job's time).
    static func contains(_ text: String, keyword: String) -> Bool {
        var t = text, k = keyword
        return t.withUTF8 { tb in
            k.withUTF8 { kb in
                guard kb.count > 0, tb.count >= kb.count else { return kb.count == 0 }
                @inline(__always) func fold(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b | 0x20 : b }
                let first = kb[0]
                var i = 0
                while i + kb.count <= tb.count {
                    if fold(tb[i]) == first {
                        var j = 1
                        while j < kb.count && fold(tb[i + j]) == kb[j] { j += 1 }
                        if j == kb.count { return true }
                    }
                    i += 1
                }
                return false
            }
        }
    }
}

enum SentimentFormat {
    static func label(_ label: Int) -> String { ["negative", "neutral", "positive"][max(0, min(label, 2))] }

    static func distribution(_ b: SentimentBucket) -> [String: Int] {
        ["negative": b.negative, "neutral": b.neutral, "positive": b.positive]
    }

    static func round4(_ x: Double) -> Double { (x * 10000).rounded() / 10000 }
}
