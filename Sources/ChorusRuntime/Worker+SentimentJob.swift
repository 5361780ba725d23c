import ChorusAnalytics
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation

extension ShardKeys.Derived {
    /// The user's sentiment: comments scored, mean score, attitude per topic, hashtag and brand (JSON).
    static let userSentiment: UInt8 = 0x55  // 'U'
    /// A content item's sentiment: distribution, mean score, most negative comments, the post's own score (JSON).
    static let contentSentiment: UInt8 = 0x56  // 'V'
}

/// The keys a text counts under in the series, alerts and attitudes: "topic:<topic>", "hashtag:<tag without #,
/// lowercased>", and "brand:<keyword>" for each brand keyword (job param `keywords`) the text or its post contains.
enum SentimentKeys {
    static func keywords(_ params: [String: String]) -> [String] {
        (params["keywords"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
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

/// One partition's contribution to the sentiment job's global aggregates (merged by the coordinator).
struct SentimentPartial: Codable, Sendable {
    init() {}
    var texts = 0
    var comments = 0
    var posts = 0
    var users = 0
    var labels = SentimentBucket()
    /// channel → comments and posts scored on it
    var channels: [String: SentimentBucket] = [:]
    /// key → unix hour → bucket
    var series: [String: [Int64: SentimentBucket]] = [:]

    // Compact JSON: a bucket is [n, negative, neutral, positive, score sum]; a series is one flat array of
    // [hour, n, negative, neutral, positive, score sum] per bucket (a 10 M-comment job moves millions of them).
    enum CodingKeys: String, CodingKey { case texts, comments, posts, users, labels, channels, series }
    static func flat(_ b: SentimentBucket) -> [Double] { [Double(b.n), Double(b.negative), Double(b.neutral), Double(b.positive), b.scoreSum] }
    /// A partial comes back from a worker (remote input): every count is a whole number in 0...2^40 before it
    /// becomes an Int (Int(1e300) traps, and sums of 65,536 partitions of such counts cannot overflow).
    static let maxCount = Double(1 << 40)
    static func count(_ x: Double) throws -> Int {
        guard x.isFinite, x >= 0, x <= maxCount, x == x.rounded() else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "count \(x) out of range"))
        }
        return Int(x)
    }
    static func count(_ x: Int) throws -> Int { try count(Double(x)) }

    static func bucket(_ a: ArraySlice<Double>) throws -> SentimentBucket {
        var b = SentimentBucket()
        let v = Array(a)
        guard v.count == 5 else { return b }
        b.n = try count(v[0]); b.negative = try count(v[1]); b.neutral = try count(v[2]); b.positive = try count(v[3])
        guard v[4].isFinite, abs(v[4]) <= maxCount else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "score sum \(v[4]) out of range"))
        }
        b.scoreSum = v[4]
        return b
    }

    func encode(to e: any Encoder) throws {
        var c = e.container(keyedBy: CodingKeys.self)
        try c.encode(texts, forKey: .texts); try c.encode(comments, forKey: .comments)
        try c.encode(posts, forKey: .posts); try c.encode(users, forKey: .users)
        try c.encode(Self.flat(labels), forKey: .labels)
        try c.encode(channels.mapValues(Self.flat), forKey: .channels)
        try c.encode(series.mapValues { hours in hours.keys.sorted().flatMap { [Double($0)] + Self.flat(hours[$0]!) } }, forKey: .series)
    }

    init(from d: any Decoder) throws {
        let c = try d.container(keyedBy: CodingKeys.self)
        texts = try Self.count(c.decode(Int.self, forKey: .texts)); comments = try Self.count(c.decode(Int.self, forKey: .comments))
        posts = try Self.count(c.decode(Int.self, forKey: .posts)); users = try Self.count(c.decode(Int.self, forKey: .users))
        labels = try Self.bucket(try c.decode([Double].self, forKey: .labels)[...])
        channels = try c.decode([String: [Double]].self, forKey: .channels).mapValues { try Self.bucket($0[...]) }
        for (k, flat) in try c.decode([String: [Double]].self, forKey: .series) {
            var hours: [Int64: SentimentBucket] = [:]
            var i = 0
            while i + 6 <= flat.count {
                // Unix hours: whole numbers well inside Int64 (|h| ≤ 2^40 is ±125 million years).
                let h = flat[i]
                guard h.isFinite, abs(h) <= Self.maxCount, h == h.rounded() else {
                    throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "hour \(h) out of range"))
                }
                hours[Int64(h)] = try Self.bucket(flat[(i + 1)..<(i + 6)])
                i += 6
            }
            series[k] = hours
        }
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

/// The alerts a `sentiment-why` stage explains, and what each partition returns for them.
struct SentimentWhyRequest: Codable, Sendable {
    struct Item: Codable, Sendable {
        var key: String
        var kind: String
        /// Unix hours: the baseline [baselineStart, start), the alert window [start, end).
        var baselineStart: Int64
        var start: Int64
        var end: Int64
    }
    var items: [Item]
}

struct SentimentWhyPartial: Codable, Sendable {
    struct Example: Codable, Sendable {
        var interactionId: String
        var text: String
        var score: Float
    }
    struct Item: Codable, Sendable {
        var window: [String: Int] = [:]
        var baseline: [String: Int] = [:]
        var examples: [Example] = []
        /// The window's matching comments, sketched, so the coordinator can tell which alerts share a burst.
        var sketch = MinHashSketch()
    }
    var items: [Item]

    /// Checked on the coordinator before merging (a worker's reply is remote input): bounded counts and sketches.
    func checked() throws -> Self {
        for item in items {
            for v in item.window.values { _ = try SentimentPartial.count(v) }
            for v in item.baseline.values { _ = try SentimentPartial.count(v) }
            _ = try SentimentPartial.count(item.sketch.count)
        }
        return self
    }
}

extension Worker {
    func sentimentScorer(_ jobId: String) throws -> SentimentScorer {
        guard let s = state.withLock({ $0.sentimentScorers[jobId] }) else {
            throw ChorusError(.unavailable, "job \(jobId): sentiment model broadcast not received on \(name)")
        }
        return s
    }

    func receiveSentimentBroadcast(_ b: Chorus_V1_JobBroadcast) throws {
        if !b.sentimentModel.isEmpty {
            let scorer = try SentimentModelFile.decode([UInt8](b.sentimentModel)).scorer()
            state.withLock { $0.sentimentScorers[b.jobID] = scorer }
        }
        if !b.sentimentJson.isEmpty { state.withLock { $0.sentimentPayloads[b.jobID] = b.sentimentJson } }
    }

    func runSentimentTask(_ t: Chorus_V1_RunTask) async throws -> Chorus_V1_TaskResult {
        let store = self.store
        switch t.stage {
        case "catalog":
            return try await computeQueue.run { try Self.catalogTask(store: store, t) }
        case "sentiment-content":
            let scorer = try sentimentScorer(t.jobID)
            let (r, ops) = try await computeQueue.run { try Self.sentimentContentTask(store: store, t, scorer: scorer) }
            try await writeDerived(ops)
            return r
        case "sentiment-users":
            let scorer = try sentimentScorer(t.jobID)
            guard let catalog = state.withLock({ $0.catalogs[t.jobID] }) else {
                throw ChorusError(.unavailable, "job \(t.jobID): catalog broadcast not received on \(name)")
            }
            let (r, ops) = try await computeQueue.run { try Self.sentimentUsersTask(store: store, t, scorer: scorer, catalog: catalog) }
            try await writeDerived(ops)
            return r
        case "sentiment-why", "themes-collect":
            let scorer = try sentimentScorer(t.jobID)
            guard let payload = state.withLock({ $0.sentimentPayloads[t.jobID] }) else {
                throw ChorusError(.unavailable, "job \(t.jobID): stage data not received on \(name)")
            }
            return try await computeQueue.run {
                t.stage == "sentiment-why"
                    ? try Self.sentimentWhyTask(store: store, t, scorer: scorer, payload: payload)
                    : try Self.themesCollectTask(store: store, t, scorer: scorer, payload: payload)
            }
        default:
            throw ChorusError(.usage, "unknown stage '\(t.stage)' for job kind \(t.kind)")
        }
    }

    static func contents(store: Store, partition p: UInt32) throws -> [String: ContentRecord] {
        var contents: [String: ContentRecord] = [:]
        try store.scan(prefix: ShardKeys.prefix(partition: p, role: ShardKeys.role(.content))) { _, v in
            let c = Wire.decode(try Chorus_V1_Content(borrowing: UnsafeRawBufferPointer(v)))
            contents[c.id] = c
            return true
        }
        return contents
    }

    static func replaceOps(_ p: UInt32, role: UInt8) -> Chorus_V1_ReplicaOp {
        let pre = ShardKeys.prefix(partition: p, role: role)
        var op = Chorus_V1_ReplicaOp()
        op.partition = p
        op.key = Data(pre)
        op.rangeEnd = Data(Store.prefixEnd(pre)!)
        return op
    }

    static func putOp(_ p: UInt32, _ key: [UInt8], _ value: [UInt8]) -> Chorus_V1_ReplicaOp {
        var op = Chorus_V1_ReplicaOp()
        op.partition = p
        op.key = Data(key)
        op.value = Data(value)
        return op
    }

    static func partialResult(_ t: Chorus_V1_RunTask, _ partial: some Encodable, read: Int) throws -> Chorus_V1_TaskResult {
        var r = Chorus_V1_TaskResult()
        r.jobID = t.jobID
        r.stage = t.stage
        r.partition = t.partition
        r.recordsRead = UInt64(read)
        r.sentimentPartialJson = String(decoding: try JSONEncoder().encode(partial), as: UTF8.self)
        return r
    }

    static func distribution(_ b: SentimentBucket) -> [String: Int] {
        ["negative": b.negative, "neutral": b.neutral, "positive": b.positive]
    }

    static func round4(_ x: Double) -> Double { (x * 10000).rounded() / 10000 }

    /// Content side: scores every post and every comment (by content), stores each item's sentiment, and returns
    /// the partition's series per topic, hashtag and brand keyword and its mix per channel.
    static func sentimentContentTask(store: Store, _ t: Chorus_V1_RunTask, scorer: SentimentScorer) throws
        -> (Chorus_V1_TaskResult, [Chorus_V1_ReplicaOp]) {
        let p = t.partition
        let keywords = SentimentKeys.keywords(t.params)
        let topN = max(0, min(Int(t.params["most_negative"] ?? "") ?? 3, 20))
        let contents = try contents(store: store, partition: p)
        var partial = SentimentPartial()
        var ops = [replaceOps(p, role: ShardKeys.Derived.contentSentiment)]
        var read = contents.count
        func emit(_ id: String, _ comments: [InteractionRecord]) throws {
            let c = contents[id]
            var obj: [String: Any] = ["content_id": id]
            if let c { obj["channel"] = c.channel; obj["topics"] = c.topics; obj["hashtags"] = c.hashtags }
            let baseKeys = SentimentKeys.base(topics: c?.topics ?? [], hashtags: c?.hashtags ?? [])
            if let c, !c.text.isEmpty {
                let s = scorer.score(c.text)
                obj["post"] = ["label": SentimentLabelName.of(s.label), "score": round4(Double(s.score))]
                partial.posts += 1
                partial.texts += 1
                partial.labels.add(label: s.label, score: s.score)
                partial.channels[c.channel, default: SentimentBucket()].add(label: s.label, score: s.score)
            }
            var bucket = SentimentBucket()
            var worst: [(Float, InteractionRecord)] = []
            for i in comments where i.kind == .comment && !i.text.isEmpty {
                let s = scorer.score(i.text)
                bucket.add(label: s.label, score: s.score)
                partial.comments += 1
                partial.texts += 1
                partial.labels.add(label: s.label, score: s.score)
                partial.channels[i.channel.isEmpty ? (c?.channel ?? "") : i.channel, default: SentimentBucket()].add(label: s.label, score: s.score)
                let hour = i.ts / 3600
                for k in baseKeys + SentimentKeys.brands(keywords, in: i.text, c?.text ?? "") {
                    partial.series[k, default: [:]][hour, default: SentimentBucket()].add(label: s.label, score: s.score)
                }
                if topN > 0, s.label == 0 || s.score < 0 {
                    worst.append((s.score, i))
                    if worst.count > 4 * topN {
                        worst.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1.id < $1.1.id }
                        worst.removeLast(worst.count - topN)
                    }
                }
            }
            guard bucket.n > 0 || obj["post"] != nil else { return }
            worst.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1.id < $1.1.id }
            obj["comments"] = bucket.n
            obj["distribution"] = distribution(bucket)
            obj["mean_score"] = round4(bucket.meanScore)
            obj["most_negative"] = worst.prefix(topN).map { (s, i) in
                ["interaction_id": i.id, "user_id": i.userId, "text": i.text, "score": round4(Double(s))] as [String: Any]
            }
            ops.append(putOp(p, ShardKeys.key(partition: p, role: ShardKeys.Derived.contentSentiment, id: Array(id.utf8)),
                             Array(try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]))))
        }
        var done = Set<String>()
        read += try scanGroups(store: store, partition: p, role: ShardKeys.role(.interactionByContent)) { id, group in
            try emit(id, group)
            done.insert(id)
        }
        for id in Set(contents.keys).subtracting(done).sorted() { try emit(id, []) }
        return (try partialResult(t, partial, read: read), ops)
    }

    /// User side: scores the user's comments and stores the user's attitude toward each topic, hashtag and brand
    /// (the `sentiment` part of the global profile).
    static func sentimentUsersTask(store: Store, _ t: Chorus_V1_RunTask, scorer: SentimentScorer,
                                   catalog: FeatureCatalog) throws -> (Chorus_V1_TaskResult, [Chorus_V1_ReplicaOp]) {
        let p = t.partition
        let keywords = SentimentKeys.keywords(t.params)
        var ops = [replaceOps(p, role: ShardKeys.Derived.userSentiment)]
        var partial = SentimentPartial()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // The keys of a content item, built once per item (not once per comment).
        var keysOf: [String: [String]] = [:]
        let read = try scanGroups(store: store, partition: p, role: ShardKeys.role(.interactionByUser)) { uid, group in
            var all = SentimentBucket()
            var byKey: [String: SentimentBucket] = [:]
            for i in group where i.kind == .comment && !i.text.isEmpty {
                let s = scorer.score(i.text)
                all.add(label: s.label, score: s.score)
                let base: [String]
                if let k = keysOf[i.contentId] { base = k } else {
                    let info = catalog.contents[i.contentId]
                    base = SentimentKeys.base(topics: info?.topics ?? [], hashtags: info?.hashtags ?? [])
                    keysOf[i.contentId] = base
                }
                for k in keywords.isEmpty ? base : base + SentimentKeys.brands(keywords, in: i.text) {
                    byKey[k, default: SentimentBucket()].add(label: s.label, score: s.score)
                }
            }
            guard all.n > 0 else { return }
            partial.users += 1
            partial.comments += all.n
            let attitudes = byKey.mapValues { b in
                UserSentiment.Attitude(comments: b.n, meanScore: round4(b.meanScore), negative: b.negative, neutral: b.neutral,
                                       positive: b.positive,
                                       attitude: b.meanScore > 0.2 ? "positive" : b.meanScore < -0.2 ? "negative" : "mixed")
            }
            let obj = UserSentiment(comments: all.n, meanScore: round4(all.meanScore), distribution: distribution(all),
                                    attitudes: attitudes)
            ops.append(putOp(p, ShardKeys.key(partition: p, role: ShardKeys.Derived.userSentiment, id: Array(uid.utf8)),
                             Array(try encoder.encode(obj))))
        }
        return (try partialResult(t, partial, read: read), ops)
    }

    /// For each alert: term counts of the matching comments in the alert window and in its baseline, and the most
    /// negative comments of the window as examples.
    static func sentimentWhyTask(store: Store, _ t: Chorus_V1_RunTask, scorer: SentimentScorer,
                                 payload: String) throws -> Chorus_V1_TaskResult {
        let req = try JSONDecoder().decode(SentimentWhyRequest.self, from: Data(payload.utf8))
        let keywords = SentimentKeys.keywords(t.params)
        let contents = try contents(store: store, partition: t.partition)
        var out = SentimentWhyPartial(items: req.items.map { _ in .init() })
        let read = try scanGroups(store: store, partition: t.partition, role: ShardKeys.role(.interactionByContent)) { id, group in
            let c = contents[id]
            for i in group where i.kind == .comment && !i.text.isEmpty {
                let hour = i.ts / 3600
                for (ai, a) in req.items.enumerated() where hour >= a.baselineStart && hour < a.end {
                    guard SentimentKeys.matches(a.key, topics: c?.topics ?? [], hashtags: c?.hashtags ?? [],
                                                keywords: keywords, texts: i.text, c?.text ?? "") else { continue }
                    let terms = SentimentTerms.terms(i.text)
                    if hour >= a.start {
                        for term in terms { out.items[ai].window[term, default: 0] += 1 }
                        let s = scorer.score(i.text)
                        out.items[ai].sketch.add(i.id)
                        out.items[ai].examples.append(.init(interactionId: i.id, text: i.text, score: s.score))
                        if out.items[ai].examples.count > 24 {
                            // Keep the 3 most negative *distinct* texts: a burst repeats the same words.
                            out.items[ai].examples.sort { $0.score != $1.score ? $0.score < $1.score : $0.interactionId < $1.interactionId }
                            out.items[ai].examples = DistinctExamples.pick(out.items[ai].examples, text: \.text, limit: 3)
                        }
                    } else {
                        for term in terms { out.items[ai].baseline[term, default: 0] += 1 }
                    }
                }
            }
        }
        return try partialResult(t, out, read: read)
    }

    /// The negative comments about one key (payload: {"key": ...}), at most `max_docs` per partition (lowest
    /// scores first).
    static func themesCollectTask(store: Store, _ t: Chorus_V1_RunTask, scorer: SentimentScorer,
                                  payload: String) throws -> Chorus_V1_TaskResult {
        let key = (try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any])?["key"] as? String ?? ""
        let keywords = SentimentKeys.keywords(t.params)
        let cap = max(1, Int(t.params["max_docs"] ?? "") ?? 1000)
        let contents = try contents(store: store, partition: t.partition)
        var docs: [SentimentWhyPartial.Example] = []
        var matched = 0
        let read = try scanGroups(store: store, partition: t.partition, role: ShardKeys.role(.interactionByContent)) { id, group in
            let c = contents[id]
            for i in group where i.kind == .comment && !i.text.isEmpty {
                guard SentimentKeys.matches(key, topics: c?.topics ?? [], hashtags: c?.hashtags ?? [], keywords: keywords,
                                            texts: i.text, c?.text ?? "") else { continue }
                matched += 1
                let s = scorer.score(i.text)
                guard s.label == 0 else { continue }
                docs.append(.init(interactionId: i.id, text: i.text, score: s.score))
            }
        }
        docs.sort { $0.score != $1.score ? $0.score < $1.score : $0.interactionId < $1.interactionId }
        return try partialResult(t, ThemesPartial(matched: matched, negative: docs.count, docs: Array(docs.prefix(cap))), read: read)
    }
}

/// What a `themes-collect` task returns: comments matching the key, how many were negative, and the negative ones
/// kept (at most `max_docs`).
struct ThemesPartial: Codable, Sendable {
    var matched: Int
    var negative: Int
    var docs: [SentimentWhyPartial.Example]

    /// Checked on the coordinator before summing (remote input).
    func checked() throws -> Self {
        _ = try SentimentPartial.count(matched)
        _ = try SentimentPartial.count(negative)
        return self
    }
}

enum SentimentLabelName {
    static func of(_ label: Int) -> String { ["negative", "neutral", "positive"][max(0, min(label, 2))] }
}
