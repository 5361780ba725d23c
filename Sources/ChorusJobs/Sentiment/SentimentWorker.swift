import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// Roles of the derived sentiment records (ChorusRuntime.ShardKeys.Derived, where `profile get` and
/// `content-sentiment` read them).
enum SentimentRoles {
    /// The user's sentiment: comments scored, mean score, attitude per topic, hashtag and brand (JSON).
    static let user = ShardKeys.Derived.userSentiment
    /// A content item's sentiment: distribution, mean score, most negative comments, the post's own score (JSON).
    static let content = ShardKeys.Derived.contentSentiment
}

/// A `sentiment` or `themes` job on one worker: the broadcast model (decoded once per broadcast) and the stage's
/// data (the catalog, the alerts to explain, the key).
final class SentimentWorker: JobWorker {
    struct Received: Sendable {
        var scorer: SentimentScorer?
        var catalog: FeatureCatalog?
        var why: SentimentWhyRequest?
        var key: String?
    }
    let received = Mutex(Received())

    func receive(_ broadcast: JobBroadcast) throws {
        let b: Chorus_V1_Jobs_SentimentBroadcast
        do {
            b = try Chorus_V1_Jobs_SentimentBroadcast(serializedBytes: broadcast.payload)
        } catch {
            throw TaskContext.invalid("job_broadcast.payload", "not a sentiment broadcast: \(error)")
        }
        let scorer = b.model.isEmpty ? nil : try SentimentModelFile.decode([UInt8](b.model)).scorer()
        let catalog = b.hasCatalog ? FeatureCatalog(b.catalog) : nil
        let why = b.hasWhy ? SentimentWhyRequest(b.why) : nil
        let key = b.key.isEmpty ? nil : b.key
        received.withLock { r in
            if let scorer { r.scorer = scorer }
            if let catalog { r.catalog = catalog }
            if let why { r.why = why }
            if let key { r.key = key }
        }
    }

    func release() { received.withLock { $0 = Received() } }

    func scorer(_ task: TaskContext) throws -> SentimentScorer {
        guard let s = received.withLock({ $0.scorer }) else { throw task.unavailable("the sentiment model broadcast") }
        return s
    }

    func run(_ task: TaskContext) async throws -> TaskOutput {
        let data = task.data
        let p = task.partition
        switch task.stage {
        case "catalog":
            let (c, read) = try await task.compute { try FeaturesJob.catalog(data) }
            return TaskOutput(partition: p, payload: try c.serializedData(), recordsRead: read)
        case "sentiment-content":
            let scorer = try scorer(task)
            let (partial, writes, read) = try await task.compute { try Self.content(task, scorer: scorer) }
            try await task.write(writes)
            return TaskOutput(partition: p, payload: try partial.message.serializedData(), recordsRead: UInt64(read))
        case "sentiment-users":
            let scorer = try scorer(task)
            guard let catalog = received.withLock({ $0.catalog }) else { throw task.unavailable("the catalog broadcast") }
            let (partial, writes, read) = try await task.compute { try Self.users(task, scorer: scorer, catalog: catalog) }
            try await task.write(writes)
            return TaskOutput(partition: p, payload: try partial.message.serializedData(), recordsRead: UInt64(read))
        case "sentiment-why":
            let scorer = try scorer(task)
            guard let req = received.withLock({ $0.why }) else { throw task.unavailable("the alerts broadcast") }
            let (out, read) = try await task.compute { try Self.why(task, scorer: scorer, req: req) }
            return TaskOutput(partition: p, payload: try out.message.serializedData(), recordsRead: UInt64(read))
        case "themes-collect":
            let scorer = try scorer(task)
            guard let key = received.withLock({ $0.key }) else { throw task.unavailable("the themes key broadcast") }
            let (out, read) = try await task.compute { try Self.themes(task, scorer: scorer, key: key) }
            return TaskOutput(partition: p, payload: try out.message.serializedData(), recordsRead: UInt64(read))
        default:
            throw TaskContext.invalid("run_task.stage", "\(task.kind) has no stage '\(task.stage.prefix(40))'")
        }
    }

    static func contents(_ data: PartitionView) throws -> [String: ContentRecord] {
        var contents: [String: ContentRecord] = [:]
        try data.scan(role: ShardKeys.role(.content)) { _, v in
            let c = Wire.decode(try Chorus_V1_Content(borrowing: v))
            contents[c.id] = c
            return true
        }
        return contents
    }

    /// Groups of the partition's interactions by their first key part, checking for cancellation every few thousand
    /// groups.
    static func groups(_ task: TaskContext, role: Chorus_V1_PutRole,
                       _ body: (String, [InteractionRecord]) throws -> Void) throws -> Int {
        var n = 0
        return try task.data.interactionGroups(role: ShardKeys.role(role)) { id, group in
            n += 1
            if n % 2048 == 0 { try task.checkCancelled() }
            try body(id, group)
        }
    }

    /// Content side: scores every post and every comment (by content), stores each item's sentiment, and returns
    /// the partition's series per topic, hashtag and brand keyword and its mix per channel.
    static func content(_ task: TaskContext, scorer: SentimentScorer) throws -> (SentimentPartial, DerivedWrites, Int) {
        let keywords = SentimentKeys.keywords(task.params)
        let topN = max(0, min(task.params.int("most_negative", 3), 20))
        let contents = try contents(task.data)
        var partial = SentimentPartial()
        var writes = DerivedWrites(partition: task.partition)
        writes.clear(role: SentimentRoles.content)
        var read = contents.count
        let round4 = SentimentFormat.round4
        func emit(_ id: String, _ comments: [InteractionRecord]) throws {
            let c = contents[id]
            var obj: [String: Any] = ["content_id": id]
            if let c { obj["channel"] = c.channel; obj["topics"] = c.topics; obj["hashtags"] = c.hashtags }
            let baseKeys = SentimentKeys.base(topics: c?.topics ?? [], hashtags: c?.hashtags ?? [])
            if let c, !c.text.isEmpty {
                let s = scorer.score(c.text)
                obj["post"] = ["label": SentimentFormat.label(s.label), "score": round4(Double(s.score))]
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
            obj["distribution"] = SentimentFormat.distribution(bucket)
            obj["mean_score"] = round4(bucket.meanScore)
            obj["most_negative"] = worst.prefix(topN).map { (s, i) in
                ["interaction_id": i.id, "user_id": i.userId, "text": i.text, "score": round4(Double(s))] as [String: Any]
            }
            writes.put(role: SentimentRoles.content, id: id,
                       Array(try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])))
        }
        var done = Set<String>()
        read += try groups(task, role: .interactionByContent) { id, group in
            try emit(id, group)
            done.insert(id)
        }
        for id in Set(contents.keys).subtracting(done).sorted() { try emit(id, []) }
        return (partial, writes, read)
    }

    /// User side: scores the user's comments and stores the user's attitude toward each topic, hashtag and brand
    /// (the `sentiment` part of the global profile).
    static func users(_ task: TaskContext, scorer: SentimentScorer,
                      catalog: FeatureCatalog) throws -> (SentimentPartial, DerivedWrites, Int) {
        let keywords = SentimentKeys.keywords(task.params)
        var writes = DerivedWrites(partition: task.partition)
        writes.clear(role: SentimentRoles.user)
        var partial = SentimentPartial()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let round4 = SentimentFormat.round4
        // The keys of a content item, built once per item (not once per comment).
        var keysOf: [String: [String]] = [:]
        let read = try groups(task, role: .interactionByUser) { uid, group in
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
            let obj = UserSentiment(comments: all.n, meanScore: round4(all.meanScore),
                                    distribution: SentimentFormat.distribution(all), attitudes: attitudes)
            writes.put(role: SentimentRoles.user, id: uid, Array(try encoder.encode(obj)))
        }
        return (partial, writes, read)
    }

    /// For each alert: term counts of the matching comments in the alert window and in its baseline, and the most
    /// negative comments of the window as examples.
    static func why(_ task: TaskContext, scorer: SentimentScorer,
                    req: SentimentWhyRequest) throws -> (SentimentWhyPartial, Int) {
        let keywords = SentimentKeys.keywords(task.params)
        let contents = try contents(task.data)
        var out = SentimentWhyPartial(items: req.items.map { _ in .init() })
        let read = try groups(task, role: .interactionByContent) { id, group in
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
        return (out, read)
    }

    /// The negative comments about one key, at most `max_docs` per partition (lowest scores first).
    static func themes(_ task: TaskContext, scorer: SentimentScorer, key: String) throws -> (ThemesPartial, Int) {
        let keywords = SentimentKeys.keywords(task.params)
        let cap = max(1, task.params.int("max_docs", 1000))
        let contents = try contents(task.data)
        var docs: [SentimentWhyPartial.Example] = []
        var matched = 0
        let read = try groups(task, role: .interactionByContent) { id, group in
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
        return (ThemesPartial(matched: matched, negative: docs.count, docs: Array(docs.prefix(cap))), read)
    }
}
