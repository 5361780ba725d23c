import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import Foundation

/// The sentiment kinds' model parameters (`sentiment` and `themes`).
enum SentimentModelParams {
    static let declared: [JobParameter] = [
        .init("model", .text(maxBytes: 128), SentimentModelFile.defaultName, "the stored model (`chorus model list`)"),
        .init("model_version", .integer(0...1_000_000), "0", "the model's version; 0 = the latest"),
        .init("keywords", .text(maxBytes: 4096), "", "brand keywords, comma-separated; each makes a brand:KEYWORD key"),
    ]

    static func name(_ p: JobParams) -> String { p.string("model", SentimentModelFile.defaultName) }
    static func version(_ p: JobParams) -> Int { p.int("model_version", 0) }

    /// At submit: the model a job names must exist (exit 66 now, not a failed job later).
    static func checkExists(_ p: JobParams, _ ctx: SubmitContext) throws {
        let name = name(p), requested = version(p)
        guard try ctx.modelExists(name, UInt32(clamping: max(0, requested))) else {
            throw ChorusError(.notFound, "no model '\(name)'\(requested > 0 ? " version \(requested)" : "")",
                              hint: "see `chorus model list`, or train one with `chorus model train sentiment`")
        }
    }

    /// The stored model the job names, as file bytes.
    static func load(_ ctx: JobContext) async throws -> (bytes: [UInt8], name: String, version: Int) {
        let name = name(ctx.params), requested = version(ctx.params)
        guard let m = try await ctx.model(name: name, version: requested) else {
            throw ctx.failure("no model '\(name)'\(requested > 0 ? " version \(requested)" : ""); "
                              + "see `chorus model list`, or train one with `chorus model train sentiment`")
        }
        return (m.bytes, name, m.version)
    }
}

/// Job kind `sentiment`: scores posts and comments with a stored model; sentiment per content item, per user
/// (attitudes toward topics, hashtags and brands) and per key (hourly series); alerts on the series.
///
/// Stages: `catalog` (content → topics, hashtags, for the user side) → `sentiment-content` (per content item,
/// series per key, mix per channel) → `sentiment-users` (attitudes into the profiles) → alert detection on the
/// merged hourly series → `sentiment-why` (terms and examples of the new alerts, only when there are some).
/// Series, keys and alerts are kept on the coordinator (`chorus sentiment`, `chorus alerts`).
public enum SentimentJob: Job {
    public static let kind = "sentiment"

    /// The stages, without a model in the broadcast (its tasks answer "not received"), and a catalog.
    public static var fuzzSeeds: [FuzzSeed] {
        var b = Chorus_V1_Jobs_SentimentBroadcast()
        var u = Chorus_V1_Jobs_CatalogContent(); u.id = "c1"; u.topics = ["tech"]
        b.catalog.contents = [u]
        return [FuzzSeed(stage: "catalog"), FuzzSeed(stage: "sentiment-content"),
                FuzzSeed(stage: "sentiment-users", broadcast: try? b.serializedData()), FuzzSeed(stage: "sentiment-why")]
    }
    public static let about = "scores posts and comments; sentiment per content, user and key; alerts"
    public static let parameters: [JobParameter] = [
        .init("as_of", .time, "now", "accepted for every kind; sentiment does not use it"),
    ] + SentimentModelParams.declared + [
        .init("sensitivity", .number(0.5...50), "4",
              "alert threshold in standard deviations above the rolling baseline (lower = more alerts)"),
        .init("cooldown_hours", .integer(0...8760), "6", "hours an alert stays silent for its key after firing"),
        .init("alert_window_hours", .integer(1...8760), "24", "hours of rolling baseline before each hour"),
        .init("min_count", .integer(1...100_000_000), "20", "texts an hour needs before it can alert"),
        .init("max_alerts", .integer(0...100_000), "200", "new alerts explained (why terms, examples) per run"),
        .init("most_negative", .integer(0...20), "3", "most negative comments kept per content item"),
    ]

    /// catalog, sentiment-content, sentiment-users (sentiment-why only with alerts: added to the total then).
    public static func tasksPerPartition(_ params: JobParams) -> Int { 3 }

    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {
        try SentimentModelParams.checkExists(params, ctx)
    }

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { SentimentWorker() }

    /// Where the coordinator keeps the results `chorus sentiment` and `chorus alerts` read (JobContext results of
    /// kind "sentiment": "jobdata/sentiment/<key>", read by `Coordinator.sentimentQuery`).
    static func alertKey(_ key: String, _ a: AlertDetector.Alert) -> String {
        "alert/\(String(format: "%012d", a.hour))/\(key)/\(a.kind.rawValue)"
    }

    /// A new formatter each time (ISO8601DateFormatter is not Sendable); called a few times per job.
    static var iso: ISO8601DateFormatter { ISO8601DateFormatter() }

    public static func drive(_ ctx: JobContext) async throws -> String {
        let start = ContinuousClock.now
        let params = ctx.params
        let model = try await SentimentModelParams.load(ctx)
        let modelData = Data(model.bytes)
        // 1. Catalog (content → topics, hashtags) for the user side.
        try await ctx.setStage("catalog")
        var catalog = Chorus_V1_Jobs_FeaturesCatalog()
        for out in try await ctx.collect("catalog") {
            let part = try Chorus_V1_Jobs_FeaturesCatalog(serializedBytes: out.payload)
            catalog.users.append(contentsOf: part.users)
            catalog.contents.append(contentsOf: part.contents)
        }
        // 2. Content side.
        var partial = SentimentPartial()
        var b = Chorus_V1_Jobs_SentimentBroadcast()
        b.model = modelData
        try await ctx.setStage("sentiment-content")
        for out in try await ctx.collect("sentiment-content", broadcast: Broadcast(try b.serializedData())) {
            partial.merge(try SentimentPartial(Chorus_V1_Jobs_SentimentPartial(serializedBytes: out.payload)))
        }
        let scored = ContinuousClock.now
        // 3. User side (a stage's broadcast goes to each worker once, so the model goes again with the catalog).
        var ub = b
        ub.catalog = catalog
        var users = 0
        try await ctx.setStage("sentiment-users")
        for out in try await ctx.collect("sentiment-users", broadcast: Broadcast(try ub.serializedData())) {
            users += try SentimentPartial(Chorus_V1_Jobs_SentimentPartial(serializedBytes: out.payload)).users
        }
        // 4. Alerts on every key's hourly series.
        let config = AlertDetector.Config(
            window: params.int("alert_window_hours", 24),
            sensitivity: params.double("sensitivity", 4),
            minCount: params.int("min_count", 20),
            cooldown: params.int("cooldown_hours", 6))
        let detector = AlertDetector(config)
        var found: [(key: String, alert: AlertDetector.Alert)] = []
        let firstHour = partial.series.values.compactMap { $0.keys.min() }.min()
        for key in partial.series.keys.sorted() {
            for a in detector.detect(partial.series[key]!, from: firstHour) { found.append((key, a)) }
        }
        // Only alerts not stored before are explained and stored (re-running the job does not repeat them).
        var fresh: [(key: String, alert: AlertDetector.Alert)] = []
        for f in found where try await ctx.getResult(alertKey(f.key, f.alert)) == nil { fresh.append(f) }
        let maxExplained = params.int("max_alerts", 200)
        let explain = Array(fresh.prefix(maxExplained))
        var stored: [StoredAlert] = []
        var results: [(key: String, value: [UInt8])] = []
        if !explain.isEmpty {
            try await ctx.setStage("sentiment-why: explaining \(explain.count) alert(s)")
            try await ctx.addPlannedTasks(Int(ctx.partitionCount))  // a fourth stage: progress stays within 100%
            let req = SentimentWhyRequest(items: explain.map {
                .init(key: $0.key, kind: $0.alert.kind.rawValue, baselineStart: $0.alert.hour - Int64(config.window),
                      start: $0.alert.hour, end: $0.alert.hour + 1)
            })
            var wb = b
            wb.why = req.message
            var why = SentimentWhyPartial(items: explain.map { _ in .init() })
            for out in try await ctx.collect("sentiment-why", broadcast: Broadcast(try wb.serializedData())) {
                let part = try SentimentWhyPartial(Chorus_V1_Jobs_SentimentWhyPartial(serializedBytes: out.payload))
                for (i, item) in part.items.enumerated() where i < why.items.count {
                    for (t, c) in item.window { why.items[i].window[t, default: 0] += c }
                    for (t, c) in item.baseline { why.items[i].baseline[t, default: 0] += c }
                    why.items[i].examples += item.examples
                    why.items[i].sketch.merge(item.sketch)
                }
            }
            let now = iso.string(from: Date())
            // One burst seen through several keys is one incident (alerts that share their comments).
            let groups = IncidentGrouping.groups(explain.indices.map {
                .init(hour: explain[$0].alert.hour, sketch: why.items[$0].sketch)
            })
            var incidentOf: [Int: (id: String, keys: [String])] = [:]
            for g in groups {
                let first = explain[g[0]]
                let keys = Array(Set(g.map { explain[$0].key })).sorted()
                let id = "incident/\(first.alert.hour)/\(first.key)"
                for i in g { incidentOf[i] = (id, keys) }
            }
            for (i, (key, a)) in explain.enumerated() {
                let item = why.items[i]
                let terms = TermContrast.top(window: item.window, baseline: item.baseline, k: 5).map(\.term)
                let sorted = item.examples.sorted { $0.score != $1.score ? $0.score < $1.score : $0.interactionId < $1.interactionId }
                let examples = DistinctExamples.pick(sorted, text: \.text, limit: 3).map(\.text)
                let s = StoredAlert(
                    id: "\(key)/\(a.kind.rawValue)/\(a.hour)", key: key, kind: a.kind.rawValue,
                    at: iso.string(from: Date(timeIntervalSince1970: TimeInterval(a.hour * 3600))), hour: a.hour,
                    count: a.count, value: a.value, baseline: a.baseline, threshold: a.threshold, why: terms,
                    examples: examples, job: ctx.jobID, model: "\(model.name) v\(model.version)", detectedAt: now,
                    incident: incidentOf[i]?.id, incidentKeys: incidentOf[i]?.keys)
                results.append((alertKey(key, a), Array(try JSONEncoder().encode(s))))
                stored.append(s)
            }
        }
        // 5. Series and key totals for `chorus sentiment`, stored with the new alerts in one write.
        var totals: [(key: String, total: SentimentBucket)] = []
        for (key, hours) in partial.series {
            var total = SentimentBucket()
            hours.values.forEach { total.merge($0) }
            totals.append((key, total))
            let sorted = hours.keys.sorted()
            let obj: [String: Any] = ["key": key, "job": ctx.jobID, "hours": sorted.map { Int($0) },
                                      "buckets": sorted.map { SentimentPartial.flat(hours[$0]!) }]
            results.append(("series/\(key)", Array(try JSONSerialization.data(withJSONObject: obj))))
        }
        totals.sort { $0.total.n != $1.total.n ? $0.total.n > $1.total.n : $0.key < $1.key }
        let keys: [[String: Any]] = totals.map {
            ["key": $0.key, "texts": $0.total.n, "mean_score": SentimentFormat.round4($0.total.meanScore),
             "negative_share": SentimentFormat.round4($0.total.negativeShare)]
        }
        results.append(("keys", Array(try JSONSerialization.data(withJSONObject: keys))))
        try await ctx.putResults(results)

        let seconds = (ContinuousClock.now - start).seconds
        let scoringSeconds = (scored - start).seconds
        var channels: [String: Any] = [:]
        for (c, bkt) in partial.channels {
            channels[c] = ["texts": bkt.n, "negative": bkt.negative, "neutral": bkt.neutral, "positive": bkt.positive,
                           "negative_share": SentimentFormat.round4(bkt.negativeShare),
                           "positive_share": SentimentFormat.round4(bkt.n == 0 ? 0 : Double(bkt.positive) / Double(bkt.n)),
                           "mean_score": SentimentFormat.round4(bkt.meanScore)]
        }
        let report: [String: Any] = [
            "model": model.name, "model_version": model.version, "texts": partial.texts, "comments": partial.comments,
            "posts": partial.posts, "users_with_comments": users,
            "labels": SentimentFormat.distribution(partial.labels), "mean_score": SentimentFormat.round4(partial.labels.meanScore),
            "channels": channels, "top_keys": Array(keys.prefix(20)), "keys": keys.count,
            "alerts_detected": found.count, "alerts_new": stored.count,
            "alerts": stored.map { ["id": $0.id, "key": $0.key, "kind": $0.kind, "at": $0.at, "count": $0.count, "why": $0.why,
                                    "incident": $0.incident ?? $0.id] as [String: Any] },
            "incidents": incidents(stored),
            "alert_config": ["window_hours": config.window, "sensitivity": config.sensitivity, "min_count": config.minCount,
                             "cooldown_hours": config.cooldown],
            "seconds": seconds, "content_stage_seconds": scoringSeconds,
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self)
    }

    /// The new alerts of a run, one entry per incident: its keys and kinds, the why terms of its alerts merged
    /// (most frequent first), and distinct example comments.
    static func incidents(_ alerts: [StoredAlert]) -> [[String: Any]] {
        var order: [String] = [], by: [String: [StoredAlert]] = [:]
        for a in alerts {
            let id = a.incident ?? a.id
            if by[id] == nil { order.append(id) }
            by[id, default: []].append(a)
        }
        return order.map { id in
            let g = by[id]!
            var termCount: [String: Int] = [:]
            for a in g { for (r, t) in a.why.enumerated() { termCount[t, default: 0] += 5 - min(r, 4) } }
            let why = termCount.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(5).map(\.key)
            return ["id": id, "at": g[0].at, "keys": Array(Set(g.map(\.key))).sorted(),
                    "kinds": Array(Set(g.map(\.kind))).sorted(), "alerts": g.count, "why": why,
                    "examples": DistinctExamples.pick(g.flatMap(\.examples), text: { $0 }, limit: 3)]
        }
    }
}

/// Job kind `themes`: the negative comments about one key, clustered into complaint themes.
public enum ThemesJob: Job {
    public static let kind = "themes"

    /// The stage, with a key and no model in the broadcast.
    public static var fuzzSeeds: [FuzzSeed] {
        var b = Chorus_V1_Jobs_SentimentBroadcast()
        b.key = "topic:tech"
        return [FuzzSeed(stage: "themes-collect", params: ["key": "topic:tech"], broadcast: try? b.serializedData())]
    }
    public static let about = "complaint themes of the negative comments about one key"
    public static let parameters: [JobParameter] = [
        .init("as_of", .time, "now", "accepted for every kind; themes does not use it"),
        .init("key", .key, "(required)", "the key whose negative comments are grouped"),
        .init("k", .integer(1...20), "5", "how many themes"),
        .init("max_total", .integer(1...1_000_000), "5000", "negative comments clustered at most"),
        .init("max_docs", .integer(1...1_000_000), "1000", "negative comments taken per partition at most"),
    ] + SentimentModelParams.declared

    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {
        try SentimentModelParams.checkExists(params, ctx)
    }

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { SentimentWorker() }

    public static func drive(_ ctx: JobContext) async throws -> String {
        guard let key = ctx.params["key"], key.contains(":") else {
            throw ctx.failure("param key is required, e.g. key=topic:tech, key=hashtag:techdaily or key=brand:acme")
        }
        let k = max(1, min(ctx.params.int("k", 5), 20))
        let model = try await SentimentModelParams.load(ctx)
        var b = Chorus_V1_Jobs_SentimentBroadcast()
        b.model = Data(model.bytes)
        b.key = key
        var matched = 0, negative = 0
        var docs: [SentimentWhyPartial.Example] = []
        try await ctx.setStage("themes-collect")
        for out in try await ctx.collect("themes-collect", broadcast: Broadcast(try b.serializedData())) {
            let o = try ThemesPartial(Chorus_V1_Jobs_ThemesPartial(serializedBytes: out.payload))
            matched += o.matched
            negative += o.negative
            docs += o.docs
        }
        docs.sort { $0.interactionId < $1.interactionId }
        let cap = ctx.params.int("max_total", 5000)
        if docs.count > cap {
            // A deterministic sample: the lowest scores first.
            docs = Array(docs.sorted { $0.score != $1.score ? $0.score < $1.score : $0.interactionId < $1.interactionId }.prefix(cap))
                .sorted { $0.interactionId < $1.interactionId }
        }
        let themes = ThemeClustering.cluster(docs.map { SentimentTerms.terms($0.text) }, k: k)
        let clustered = themes.reduce(0) { $0 + $1.size }
        let report: [String: Any] = [
            "key": key, "model": model.name, "model_version": model.version, "comments_matched": matched,
            "negative_comments": negative, "clustered": clustered,
            "themes": themes.map { t in
                ["terms": t.terms, "size": t.size,
                 "share": SentimentFormat.round4(clustered == 0 ? 0 : Double(t.size) / Double(clustered)),
                 "examples": t.examples.map { docs[$0].text }] as [String: Any]
            },
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self)
    }
}
