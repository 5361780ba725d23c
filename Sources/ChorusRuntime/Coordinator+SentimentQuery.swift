import ChorusAnalytics
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation

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

extension Coordinator {
    /// The stored model a job names (params model, model_version), as file bytes.
    func modelBytes(_ params: [String: String]) throws -> (bytes: [UInt8], name: String, version: Int) {
        let name = params["model"] ?? SentimentModelFile.defaultName
        let requested = Int(params["model_version"] ?? "") ?? 0
        guard let version = requested > 0 ? requested : try latestModelVersion(name),
              let bytes = try store.get(ModelKeys.key(name, version)) else {
            throw JobFailure(message: "no model '\(name)'\(requested > 0 ? " version \(requested)" : ""); "
                             + "see `chorus model list`, or train one with `chorus model train sentiment`")
        }
        return (bytes, name, version)
    }

    /// At submit: the model a sentiment or themes job names must exist (exit 66 now, not a failed job later).
    func checkModelExists(_ params: [String: String]) throws {
        let name = params["model"] ?? SentimentModelFile.defaultName
        let requested = Int(params["model_version"] ?? "") ?? 0
        let version = requested > 0 ? requested : try latestModelVersion(name)
        guard let version, try store.get(ModelKeys.key(name, version)) != nil else {
            throw ChorusError(.notFound, "no model '\(name)'\(requested > 0 ? " version \(requested)" : "")",
                              hint: "see `chorus model list`, or train one with `chorus model train sentiment`")
        }
    }

    /// Whether a model is stored under `name` (version 0: any version), for a job's submit checks.
    func modelExists(name: String, version requested: UInt32) throws -> Bool {
        let version = requested > 0 ? Int(requested) : try latestModelVersion(name)
        guard let version else { return false }
        return try store.get(ModelKeys.key(name, version)) != nil
    }

    /// A new formatter each time (ISO8601DateFormatter is not Sendable); called a few times per job.
    static var iso: ISO8601DateFormatter { ISO8601DateFormatter() }

    /// Runs a `sentiment` job: catalog → sentiment-content (per content item, series per key, mix per channel) →
    /// sentiment-users (attitudes into the profiles) → alert detection on the merged hourly series →
    /// sentiment-why (terms and examples behind each new alert).
    func runSentiment(_ job: Chorus_V1_JobInfo) async throws -> String {
        let start = ContinuousClock.now
        let model = try modelBytes(job.params)
        let modelData = Data(model.bytes)
        // 1. Catalog (content → topics, hashtags) for the user side.
        _ = try await state.update(job.id) { $0.stage = "catalog" }
        var catalog = Chorus_V1_Catalog()
        try await runStage(job: job, stage: "catalog", broadcast: nil, tracker: BroadcastTracker()) { r in
            catalog.users.append(contentsOf: r.catalog.users)
            catalog.contents.append(contentsOf: r.catalog.contents)
        }
        // 2. Content side.
        var partial = SentimentPartial()
        var b = Chorus_V1_JobBroadcast()
        b.jobID = job.id
        b.sentimentModel = modelData
        _ = try await state.update(job.id) { $0.stage = "sentiment-content" }
        try await runStage(job: job, stage: "sentiment-content", broadcast: b, tracker: BroadcastTracker()) { r in
            partial.merge(try JSONDecoder().decode(SentimentPartial.self, from: Data(r.sentimentPartialJson.utf8)))
        }
        let scored = ContinuousClock.now
        // 3. User side (the model is already on every worker that ran a content task; the tracker is per stage,
        // so it goes again with the catalog).
        var ub = b
        ub.catalog = catalog
        var users = 0
        _ = try await state.update(job.id) { $0.stage = "sentiment-users" }
        try await runStage(job: job, stage: "sentiment-users", broadcast: ub, tracker: BroadcastTracker()) { r in
            users += try JSONDecoder().decode(SentimentPartial.self, from: Data(r.sentimentPartialJson.utf8)).users
        }
        // 4. Alerts on every key's hourly series.
        let config = AlertDetector.Config(
            window: Int(job.params["alert_window_hours"] ?? "") ?? 24,
            sensitivity: Double(job.params["sensitivity"] ?? "") ?? 4,
            minCount: Int(job.params["min_count"] ?? "") ?? 20,
            cooldown: Int(job.params["cooldown_hours"] ?? "") ?? 6)
        let detector = AlertDetector(config)
        var found: [(key: String, alert: AlertDetector.Alert)] = []
        let firstHour = partial.series.values.compactMap { $0.keys.min() }.min()
        for key in partial.series.keys.sorted() {
            for a in detector.detect(partial.series[key]!, from: firstHour) { found.append((key, a)) }
        }
        // Only alerts not stored before are explained and stored (re-running the job does not repeat them).
        let fresh = try found.filter { try store.get(Self.alertKey($0.key, $0.alert)) == nil }
        let maxExplained = Int(job.params["max_alerts"] ?? "") ?? 200
        let explain = Array(fresh.prefix(maxExplained))
        var stored: [StoredAlert] = []
        if !explain.isEmpty {
            let partitions = await state.map.partitionCount
            _ = try await state.update(job.id) {
                $0.stage = "sentiment-why: explaining \(explain.count) alert(s)"
                $0.tasksTotal += partitions  // a fourth stage: progress stays within 100%
            }
            let req = SentimentWhyRequest(items: explain.map {
                .init(key: $0.key, kind: $0.alert.kind.rawValue, baselineStart: $0.alert.hour - Int64(config.window),
                      start: $0.alert.hour, end: $0.alert.hour + 1)
            })
            var wb = Chorus_V1_JobBroadcast()
            wb.jobID = job.id
            wb.sentimentModel = modelData
            wb.sentimentJson = String(decoding: try JSONEncoder().encode(req), as: UTF8.self)
            var why = SentimentWhyPartial(items: explain.map { _ in .init() })
            var results: [UInt32: SentimentWhyPartial] = [:]
            try await runStage(job: job, stage: "sentiment-why", broadcast: wb, tracker: BroadcastTracker()) { r in
                results[r.partition] = try JSONDecoder().decode(SentimentWhyPartial.self, from: Data(r.sentimentPartialJson.utf8)).checked()
            }
            for p in results.keys.sorted() {
                for (i, item) in results[p]!.items.enumerated() where i < why.items.count {
                    for (t, c) in item.window { why.items[i].window[t, default: 0] += c }
                    for (t, c) in item.baseline { why.items[i].baseline[t, default: 0] += c }
                    why.items[i].examples += item.examples
                    why.items[i].sketch.merge(item.sketch)
                }
            }
            let now = Self.iso.string(from: Date())
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
                    at: Self.iso.string(from: Date(timeIntervalSince1970: TimeInterval(a.hour * 3600))), hour: a.hour,
                    count: a.count, value: a.value, baseline: a.baseline, threshold: a.threshold, why: terms,
                    examples: examples, job: job.id, model: "\(model.name) v\(model.version)", detectedAt: now,
                    incident: incidentOf[i]?.id, incidentKeys: incidentOf[i]?.keys)
                try store.put(Self.alertKey(key, a), Array(try JSONEncoder().encode(s)), sync: true)
                stored.append(s)
            }
        }
        // 5. Series and key totals for `chorus sentiment`.
        var wbatch = WriteBatch()
        var totals: [(key: String, total: SentimentBucket)] = []
        for (key, hours) in partial.series {
            var total = SentimentBucket()
            hours.values.forEach { total.merge($0) }
            totals.append((key, total))
            let sorted = hours.keys.sorted()
            let obj: [String: Any] = ["key": key, "job": job.id, "hours": sorted.map { Int($0) },
                                      "buckets": sorted.map { SentimentPartial.flat(hours[$0]!) }]
            wbatch.put(Array("sentiment/series/\(key)".utf8), Array(try JSONSerialization.data(withJSONObject: obj)))
        }
        totals.sort { $0.total.n != $1.total.n ? $0.total.n > $1.total.n : $0.key < $1.key }
        let keys: [[String: Any]] = totals.map {
            ["key": $0.key, "texts": $0.total.n, "mean_score": Worker.round4($0.total.meanScore),
             "negative_share": Worker.round4($0.total.negativeShare)]
        }
        wbatch.put(Array("sentiment/keys".utf8), Array(try JSONSerialization.data(withJSONObject: keys)))
        try store.write(wbatch, sync: true)

        let seconds = (ContinuousClock.now - start).seconds
        let scoringSeconds = (scored - start).seconds
        var channels: [String: Any] = [:]
        for (c, bkt) in partial.channels {
            channels[c] = ["texts": bkt.n, "negative": bkt.negative, "neutral": bkt.neutral, "positive": bkt.positive,
                           "negative_share": Worker.round4(bkt.negativeShare), "positive_share": Worker.round4(bkt.n == 0 ? 0 : Double(bkt.positive) / Double(bkt.n)),
                           "mean_score": Worker.round4(bkt.meanScore)]
        }
        let report: [String: Any] = [
            "model": model.name, "model_version": model.version, "texts": partial.texts, "comments": partial.comments,
            "posts": partial.posts, "users_with_comments": users,
            "labels": Worker.distribution(partial.labels), "mean_score": Worker.round4(partial.labels.meanScore),
            "channels": channels, "top_keys": Array(keys.prefix(20)), "keys": keys.count,
            "alerts_detected": found.count, "alerts_new": stored.count,
            "alerts": stored.map { ["id": $0.id, "key": $0.key, "kind": $0.kind, "at": $0.at, "count": $0.count, "why": $0.why,
                                    "incident": $0.incident ?? $0.id] as [String: Any] },
            "incidents": Self.incidents(stored),
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

    static func alertKey(_ key: String, _ a: AlertDetector.Alert) -> [UInt8] {
        Array("alert/\(String(format: "%012d", a.hour))/\(key)/\(a.kind.rawValue)".utf8)
    }

    /// Runs a `themes` job: the negative comments about one key, clustered into complaint themes.
    func runThemes(_ job: Chorus_V1_JobInfo) async throws -> String {
        guard let key = job.params["key"], key.contains(":") else {
            throw JobFailure(message: "param key is required, e.g. key=topic:tech, key=hashtag:techdaily or key=brand:acme")
        }
        let k = max(1, min(Int(job.params["k"] ?? "") ?? 5, 20))
        let model = try modelBytes(job.params)
        var b = Chorus_V1_JobBroadcast()
        b.jobID = job.id
        b.sentimentModel = Data(model.bytes)
        b.sentimentJson = String(decoding: try JSONSerialization.data(withJSONObject: ["key": key]), as: UTF8.self)
        var matched = 0, negative = 0
        var docs: [SentimentWhyPartial.Example] = []
        _ = try await state.update(job.id) { $0.stage = "themes-collect" }
        try await runStage(job: job, stage: "themes-collect", broadcast: b, tracker: BroadcastTracker()) { r in
            let o = try JSONDecoder().decode(ThemesPartial.self, from: Data(r.sentimentPartialJson.utf8)).checked()
            matched += o.matched
            negative += o.negative
            docs += o.docs
        }
        docs.sort { $0.interactionId < $1.interactionId }
        let cap = Int(job.params["max_total"] ?? "") ?? 5000
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
                ["terms": t.terms, "size": t.size, "share": Worker.round4(clustered == 0 ? 0 : Double(t.size) / Double(clustered)),
                 "examples": t.examples.map { docs[$0].text }] as [String: Any]
            },
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self)
    }

    /// `chorus sentiment series|keys` and `chorus alerts`.
    func sentimentQuery(_ q: Chorus_V1_SentimentQuery) throws -> Chorus_V1_SentimentReply {
        var reply = Chorus_V1_SentimentReply()
        switch q.what {
        case "keys":
            reply.json = try store.get(Array("sentiment/keys".utf8)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        case "series":
            guard let v = try store.get(Array("sentiment/series/\(q.key)".utf8)) else {
                throw ChorusError(.notFound, "no series for '\(q.key)'", hint: "run a sentiment job first; `chorus sentiment keys` lists the keys")
            }
            guard q.daily, let obj = try JSONSerialization.jsonObject(with: Data(v)) as? [String: Any],
                  let hours = obj["hours"] as? [Int], let buckets = obj["buckets"] as? [[Double]] else {
                reply.json = String(decoding: v, as: UTF8.self)
                return reply
            }
            var days: [Int: [Double]] = [:]
            for (h, b) in zip(hours, buckets) {
                var d = days[h / 24] ?? [0, 0, 0, 0, 0]
                for i in 0..<min(5, b.count) { d[i] += b[i] }
                days[h / 24] = d
            }
            let sorted = days.keys.sorted()
            reply.json = String(decoding: try JSONSerialization.data(withJSONObject: [
                "key": q.key, "job": obj["job"] ?? "", "days": sorted, "buckets": sorted.map { days[$0]! },
            ] as [String: Any]), as: UTF8.self)
        case "alerts":
            var alerts: [String] = []
            try store.scan(prefix: Array("alert/".utf8)) { _, v in
                alerts.append(String(decoding: v, as: UTF8.self))
                return true
            }
            let limit = Int(q.limit == 0 ? 100 : q.limit)
            reply.json = "[" + alerts.reversed().prefix(limit).joined(separator: ",") + "]"
        default:
            throw ChorusError(.usage, "unknown sentiment query '\(q.what)' (series, keys or alerts)")
        }
        return reply
    }
}
