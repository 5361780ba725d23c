import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

/// Job kind `content-insights`: which attributes of a post drive its engagement rate (docs/forecasting.md, "What
/// makes content engage").
///
/// Stages: `ci-posts` (each partition returns one row per post: channel, first topic, hashtags, media type, hour
/// and day posted, text length, the post's own sentiment when a `sentiment` job has run, views, engagements; and
/// the views and engagements per (post, segment) of its users when a `segments` job has run), then, when an
/// `influence` job has run, `ci-authors` (broadcast: the authors; each partition answers the PageRank percentile of
/// the authors placed in it). The coordinator fits a ridge Poisson regression of engagements on the attributes with
/// log(views) as offset, λ chosen on a dev split of the posts, with percentile-bootstrap intervals over posts, for
/// every post (scope `all`), each channel and each segment, and keeps each scope's effects as a result.
public enum ContentInsightsJob: Job {
    public static let kind = "content-insights"
    /// Writes only its result on the coordinator: an analyst may run it.
    public static let readOnly = true
    public static let about = "what makes content engage: effects of a post's attributes on its engagement rate, with intervals"
    public static let parameters: [JobParameter] = [
        .init("as_of", .time, "now", "accepted for every kind; content-insights uses all interactions"),
        .init("top_hashtags", .integer(0...200), "20", "the most frequent hashtags (by posts) that get an indicator each"),
        .init("min_posts", .integer(1...1_000_000), "30",
              "a level (topic, hashtag, hour, …) with fewer posts is pooled with its reference level"),
        .init("min_scope_posts", .integer(10...10_000_000), "200",
              "a channel or segment is fitted only with at least this many posts with views"),
        .init("bootstrap", .integer(0...2000), "200", "bootstrap resamples of the posts for the intervals (0: none)"),
        .init("level", .number(0.5...0.999), "0.95", "confidence level of the intervals"),
        .init("lambda", .number(0.001...1_000_000), "0.1",
              "ridge penalty of the reported fit (small: it keeps collinear columns solvable)"),
        .init("choose_lambda", .boolean, "false",
              "fit at the λ with the lowest dev-split deviance instead (shrinks effects: intervals then cover the shrunk value)"),
        .init("per_channel", .boolean, "true", "also fit each channel on its own (`chorus insights content --channel`)"),
        .init("per_segment", .boolean, "true",
              "also fit each segment: the engagement of that segment's users (needs a `segments` job)"),
        .init("max_posts", .integer(100...5_000_000), "2000000",
              "refuse to gather more posts than this at the coordinator (each is a few dozen bytes)"),
        .init("seed", .integer(0...Int64(UInt32.max)), "1", "seed of the bootstrap resamples"),
    ]

    public static func tasksPerPartition(_ params: JobParams) -> Int { 2 }

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { ContentInsightsWorker() }

    public static var fuzzSeeds: [FuzzSeed] {
        var a = Chorus_V1_Jobs_ContentInsightsAuthors()
        a.authorIds = ["u1", "u2"]; a.partitionCount = 4
        return [FuzzSeed(stage: "ci-posts"), FuzzSeed(stage: "ci-authors", broadcast: try? a.serializedData())]
    }

    /// The key of a scope's result: "all", "channel/NAME", "segment/N".
    public static func resultKey(channel: String?, segment: Int?) -> String {
        if let segment { return "segment/\(segment)" }
        if let channel { return "channel/\(channel)" }
        return "all"
    }

    public static func drive(_ ctx: JobContext) async throws -> String {
        let start = ContinuousClock.now
        let p = ctx.params
        let topTags = p.int("top_hashtags", 20), minPosts = p.int("min_posts", 30)
        let minScope = p.int("min_scope_posts", 200), boot = p.int("bootstrap", 200)
        let level = p.double("level", 0.95), lambdaParam = p.double("lambda", 0.1)
        let choose = p.bool("choose_lambda", false)
        let seed = UInt64(p.int64("seed", 1)), maxPosts = p.int("max_posts", 2_000_000)

        try await ctx.setStage("content-insights: gathering posts")
        var rows: [Chorus_V1_Jobs_ContentInsightsPost] = []
        var segCounts: [Chorus_V1_Jobs_ContentInsightsSegmentCount] = []
        var influenceUsers: UInt64 = 0, segmentedUsers: UInt64 = 0
        for out in try await ctx.collect("ci-posts") {
            let m = try Chorus_V1_Jobs_ContentInsightsPosts(serializedBytes: out.payload)
            rows += m.posts
            segCounts += m.segmentCounts
            influenceUsers += m.influenceUsers
            segmentedUsers += m.segmentedUsers
            if rows.count > maxPosts {
                throw ctx.failure("content-insights: more than \(maxPosts) posts to gather at the coordinator; "
                                  + "raise max_posts (memory: about 100 bytes a post) or fit a smaller data set")
            }
        }
        rows.sort { $0.id < $1.id }
        guard rows.contains(where: { $0.views > 0 }) else {
            throw ctx.failure("content-insights: no post has views; ingest content and its view interactions first")
        }

        // Author influence: a small join with the authors' partitions.
        var topAuthor: [String: Bool] = [:]
        if influenceUsers > 0 {
            try await ctx.setStage("content-insights: reading author influence")
            var b = Chorus_V1_Jobs_ContentInsightsAuthors()
            b.authorIds = Array(Set(rows.map(\.authorID))).sorted()
            b.partitionCount = ctx.partitionCount
            for out in try await ctx.collect("ci-authors", broadcast: Broadcast(try b.serializedData())) {
                let m = try Chorus_V1_Jobs_ContentInsightsAuthorScores(serializedBytes: out.payload)
                for (id, pct) in zip(m.authorIds, m.percentile) { topAuthor[id] = pct >= 90 }
            }
        } else {
            try await ctx.setTasksDone(nil)
        }

        func attributes(_ r: Chorus_V1_Jobs_ContentInsightsPost, views: UInt64, engagements: UInt64) -> PostAttributes {
            PostAttributes(id: r.id, channel: r.channel, topic: r.topic, hashtags: r.hashtags, mediaType: r.mediaType,
                           hour: Int(r.hour % 24), day: Int(r.day % 7), textLength: r.textLength < 0 ? nil : Int(r.textLength),
                           sentiment: r.sentiment.isEmpty ? nil : r.sentiment,
                           topAuthor: influenceUsers > 0 ? (topAuthor[r.authorID] ?? false) : nil,
                           views: Double(views), engagements: Double(engagements))
        }
        let all = rows.map { attributes($0, views: $0.views, engagements: $0.engagements) }

        var scopes: [(channel: String?, segment: Int?, posts: [PostAttributes])] = [(nil, nil, all)]
        if p.bool("per_channel", true) {
            let channels = Set(all.map(\.channel)).sorted()
            if channels.count > 1 {
                for c in channels { scopes.append((c, nil, all.filter { $0.channel == c })) }
            }
        }
        if p.bool("per_segment", true), !segCounts.isEmpty {
            let byID = Dictionary(uniqueKeysWithValues: rows.map { ($0.id, $0) })
            var bySegment: [Int: [PostAttributes]] = [:]
            for s in segCounts {
                guard let r = byID[s.contentID] else { continue }
                bySegment[Int(s.segment), default: []].append(attributes(r, views: s.views, engagements: s.engagements))
            }
            for (s, posts) in bySegment.sorted(by: { $0.key < $1.key }) { scopes.append((nil, s, posts)) }
        }

        var results: [(key: String, value: [UInt8])] = []
        var index: [[String: Any]] = []
        var skipped: [[String: Any]] = []
        var allReport: [String: Any] = [:]
        for (i, scope) in scopes.enumerated() {
            try await ctx.checkCancelled()
            let key = resultKey(channel: scope.channel, segment: scope.segment)
            let withViews = scope.posts.filter { $0.views > 0 }.count
            if i > 0, withViews < minScope {
                skipped.append(["scope": key, "posts": withViews,
                                "reason": "fewer than min_scope_posts (\(minScope)) posts with views"])
                continue
            }
            try await ctx.setStage("content-insights: fitting \(key) (\(withViews) posts, \(boot) resamples)")
            let posts = scope.posts
            let fit = await JobContext.offPool {
                let design = ContentDesign.build(posts, topHashtags: topTags, minPosts: minPosts)
                return ContentInsights.run(design, lambda: lambdaParam, chooseLambda: choose, bootstrap: boot,
                                           level: level, seed: seed, parallel: onThreads)
            }
            var report = scopeJSON(fit, level: level)
            report["scope"] = key
            report["job_id"] = ctx.jobID
            if let c = scope.channel { report["channel"] = c }
            if let s = scope.segment {
                report["segment"] = s
                report["note"] = "views and engagements of the segment's users only"
            }
            results.append((key, Array(try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]))))
            index.append(["scope": key, "posts": fit.posts])
            if i == 0 { allReport = report }
        }
        results.append(("scopes", Array(try JSONSerialization.data(withJSONObject: ["scopes": index, "skipped": skipped],
                                                                   options: [.sortedKeys]))))
        try await ctx.putResults(results)
        try await ctx.setTasksDone(nil)

        var summary: [String: Any] = [
            "posts": rows.count, "posts_with_views": allReport["posts"] ?? 0,
            "views": allReport["views"] ?? 0, "engagements": allReport["engagements"] ?? 0,
            "lambda": allReport["lambda"] ?? 0, "lambda_dev": allReport["lambda_dev"] ?? NSNull(), "bootstrap": boot, "level": level,
            "drivers": allReport["drivers"] ?? [String: Any](), "scopes": index.map { $0["scope"] ?? "" }, "skipped": skipped,
            "features": allReport["features"] ?? 0, "converged": allReport["converged"] ?? false,
            "sentiment": rows.contains { !$0.sentiment.isEmpty }, "author_influence": influenceUsers > 0,
            "segmented_users": segmentedUsers,
            "workers": await ctx.activeWorkerCount(), "partitions": Int(ctx.partitionCount),
            "seconds": (ContinuousClock.now - start).seconds,
        ]
        summary["method"] = "ridge Poisson regression of engagements on post attributes, offset log(views); "
            + "percentile bootstrap over posts"
        return String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self)
    }

    /// One scope's result as stored (and printed by `chorus insights content --json`).
    static func scopeJSON(_ r: ContentInsights.Result, level: Double) -> [String: Any] {
        func num(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
        func effect(_ e: ContentInsights.Effect) -> [String: Any] {
            var o: [String: Any] = ["group": e.feature.group, "level": e.feature.level, "reference": e.feature.reference,
                                    "log_effect": num(e.estimate), "low": num(e.low), "high": num(e.high),
                                    "rate_ratio": num(PortableMath.exp(e.estimate)), "posts": e.posts, "words": e.words]
            if !e.feature.channel.isEmpty { o["channel"] = e.feature.channel }
            return o
        }
        let d = ContentInsights.drivers(r.effects, n: 10)
        return [
            "posts": r.posts, "views": r.views, "engagements": r.engagements,
            "engagement_rate": r.views > 0 ? r.engagements / r.views : 0,
            "lambda": r.lambda, "lambda_dev": r.devLambda.map { $0 as Any } ?? NSNull(),
            "lambda_rule": "lambda_dev: lowest mean Poisson deviance on the dev posts (20%, by a hash of the id) of a "
                + "fit on the others; lambda: the fit reported (parameter lambda, or lambda_dev with choose_lambda=true)",
            "lambda_grid": r.grid.map { ["lambda": $0.lambda, "dev_deviance": num($0.devDeviance)] },
            "bootstrap": r.bootstrap, "level": level, "intercept": r.intercept, "converged": r.converged,
            "features": r.effects.count,
            "effects": r.effects.map(effect),
            "drivers": ["positive": d.positive.map(effect), "negative": d.negative.map(effect)],
        ]
    }

    /// Runs iterations 0..<n on cores − 1 threads of their own (at least 1), leaving a core to the coordinator's
    /// services; iteration i on thread i mod threads. Returns when all are done.
    @Sendable static func onThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let k = max(1, min(n, ProcessInfo.processInfo.activeProcessorCount - 1))
        if k == 1 { for i in 0..<n { body(i) }; return }
        let done = DispatchSemaphore(value: 0)
        for t in 0..<k {
            let th = Thread {
                for i in stride(from: t, to: n, by: k) { body(i) }
                done.signal()
            }
            th.stackSize = 8 << 20
            th.start()
        }
        for _ in 0..<k { done.wait() }
    }

    public static func summaryText(_ summaryJSON: String) -> String? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(summaryJSON.utf8)) as? [String: Any] else { return nil }
        func n(_ k: String) -> Double { (o[k] as? NSNumber)?.doubleValue ?? 0 }
        var out = [String(format: "%d posts with views (%.0f views, %.0f engagements); λ = %g; %d resamples; %.1f s",
                          Int(n("posts_with_views")), n("views"), n("engagements"), n("lambda"), Int(n("bootstrap")),
                          n("seconds"))]
        let d = o["drivers"] as? [String: Any] ?? [:]
        for (title, key) in [("top positive drivers:", "positive"), ("top negative drivers:", "negative")] {
            let list = (d[key] as? [[String: Any]] ?? []).prefix(5)
            out.append(title + (list.isEmpty ? " none beyond the uncertainty" : ""))
            for e in list { out.append("  " + (e["words"] as? String ?? "")) }
        }
        let scopes = (o["scopes"] as? [String] ?? []).joined(separator: ", ")
        out.append("scopes: \(scopes) (chorus insights content [--channel C] [--segment S])")
        return out.joined(separator: "\n")
    }
}
