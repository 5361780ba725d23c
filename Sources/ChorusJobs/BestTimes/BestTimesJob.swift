import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

/// Job kind `best-times`: the expected engagement per post published in each hour of the week (168 slots), per
/// channel and, when the `segments` job has run, per (channel, segment); intervals, and a recommendation only where a
/// slot beats the median slot beyond the uncertainty (docs/forecasting.md "Best time to post").
///
/// Stages: `bt-posts` (each partition's posts with their channel, slot, views and engagements: a post's by-content
/// interactions live in its own partition) → `bt-users` (broadcast: the post index when segments exist, and the
/// channels' engagement share by hour). In `bt-users` each partition reads its users' by-user interactions: it
/// writes every user's active and best hours (profile section `timing`) and, with segments, counts views and
/// engagements per (post, segment of the interacting user): the user's segment is local to the user's partition,
/// so only the post index (posts, not users) is broadcast.
public enum BestTimesJob: Job {
    public static let kind = "best-times"
    public static let about = "the best hours of the week to post, per channel and segment, with intervals"
    public static let parameters: [JobParameter] = [
        .init("level", .number(0.5...0.99), "0.9",
              "coverage of each slot's interval; the recommendation uses the same level, simultaneous over the 168 slots"),
        .init("top", .integer(1...24), "3", "recommended slots per channel (or segment) at most"),
        .init("min_posts", .integer(1...100_000), "5", "a slot with fewer posts is never recommended (its score is still given)"),
        .init("as_of", .time, "now", "accepted for every kind; best-times uses all the stored interactions"),
    ]

    static let role: UInt8 = 0x63
    static let segmentsRole: UInt8 = 0x60

    public static var profileSections: [ProfileSection] {
        [ProfileSection("timing", role: role, csvFields: ["active", "best", "engagements", "basis"], describe: describe)]
    }

    @Sendable static func describe(_ o: [String: Any]) -> [String] {
        func hours(_ k: String) -> String {
            ((o[k] as? [Any]) ?? []).compactMap { ($0 as? NSNumber)?.intValue }.map { String(format: "%02d:00", $0) }
                .joined(separator: ", ")
        }
        let e = (o["engagements"] as? NSNumber)?.intValue ?? 0
        let basis = (o["basis"] as? String) == "channel" ? "no engagements yet: the channel's" : "\(e) engagement\(e == 1 ? "" : "s"), shrunk toward the channel"
        return ["timing (UTC): active at \(hours("active_hours")); engages most at \(hours("best_hours")) (\(basis))"]
    }

    public static func tasksPerPartition(_ params: JobParams) -> Int { 2 }

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { Worker() }

    public static var fuzzSeeds: [FuzzSeed] {
        var p = Chorus_V1_Jobs_BestTimesPlan()
        p.segments = true; p.postIds = ["c1", "c2"]; p.channels = ["x"]
        p.hourShare = [Double](repeating: 1.0 / 24, count: 24)
        return [FuzzSeed(stage: "bt-posts"), FuzzSeed(stage: "bt-users", broadcast: try? p.serializedData())]
    }

    // MARK: - driver

    struct Post { var channel: Int; var slot: Int; var views: UInt64; var engagements: UInt64 }

    public static func drive(_ ctx: JobContext) async throws -> String {
        let started = ContinuousClock.now
        let level = ctx.params.double("level", 0.9), top = ctx.params.int("top", 3), minPosts = ctx.params.int("min_posts", 5)

        // 1. Posts, in partition order (a post's index is its position).
        try await ctx.setStage("bt-posts")
        var channels: [String] = [], channelIndex: [String: Int] = [:]
        func ch(_ name: String) -> Int {
            if let i = channelIndex[name] { return i }
            channelIndex[name] = channels.count; channels.append(name); return channels.count - 1
        }
        var posts: [Post] = [], ids: [String] = []
        var hourEng: [Int: [UInt64]] = [:]
        var hasSegments = false
        for out in try await ctx.collect("bt-posts") {
            let m = try Chorus_V1_Jobs_BestTimesPosts(serializedBytes: out.payload)
            let n = m.postChannel.count
            guard m.postSlot.count == n, m.views.count == n, m.engagements.count == n,
                  m.postIds.isEmpty || m.postIds.count == n, m.hourEngagements.count == 24 * m.hourChannel.count,
                  m.postChannel.allSatisfy({ Int($0) < m.channels.count }), m.hourChannel.allSatisfy({ Int($0) < m.channels.count }),
                  m.postSlot.allSatisfy({ $0 < 168 }) else {
                throw ChorusError(.internal, "partition \(out.partition): malformed best-times posts")
            }
            let local = m.channels.map(ch)
            if m.segmentsPresent { hasSegments = true }
            for i in 0..<n {
                posts.append(Post(channel: local[Int(m.postChannel[i])], slot: Int(m.postSlot[i]), views: m.views[i],
                                  engagements: m.engagements[i]))
            }
            if m.segmentsPresent { ids += m.postIds } else { ids += [String](repeating: "", count: n) }
            for (k, c) in m.hourChannel.enumerated() {
                let g = local[Int(c)]
                var row = hourEng[g] ?? [UInt64](repeating: 0, count: 24)
                for h in 0..<24 { row[h] += m.hourEngagements[k * 24 + h] }
                hourEng[g] = row
            }
        }
        guard !posts.isEmpty else {
            throw ctx.failure("insufficient data: no content records; ingest content (with created_at) and its interactions first")
        }

        // 2. Channel fits.
        let perView = Dictionary(grouping: posts, by: \.channel).mapValues { $0.contains { $0.views > 0 } }
        var channelSlots: [Int: [BestTimes.Moments]] = [:]
        for p in posts {
            var row = channelSlots[p.channel] ?? [BestTimes.Moments](repeating: .init(), count: 168)
            row[p.slot].add(engagements: p.engagements, exposure: perView[p.channel]! ? p.views : 1)
            channelSlots[p.channel] = row
        }
        var fits: [Int: BestTimes.Fit] = [:]
        var results: [(key: String, value: [UInt8])] = []
        var summaryChannels: [String: Any] = [:]
        for (c, slots) in channelSlots.sorted(by: { channels[$0.key] < channels[$1.key] }) {
            guard let fit = BestTimes.fit(slots, perView: perView[c]!) else { continue }
            fits[c] = fit
            let week = BestTimes.week(fit, slots: slots, level: level, top: top, minPosts: minPosts)
            let json = weekJSON(week, fit: fit, channel: channels[c], segment: nil)
            results.append((key: "channel/" + channels[c], value: try bytes(json)))
            summaryChannels[channels[c]] = brief(week)
        }

        // 3. Users: timing sections, and per (post, segment) counts when segments exist.
        try await ctx.setStage("bt-users")
        var plan = Chorus_V1_Jobs_BestTimesPlan()
        plan.segments = hasSegments
        if hasSegments { plan.postIds = ids }
        for (g, row) in hourEng.sorted(by: { channels[$0.key] < channels[$1.key] }) {
            let total = Double(row.reduce(0, +))
            plan.channels.append(channels[g])
            plan.hourShare += row.map { total > 0 ? Double($0) / total : 1.0 / 24 }
        }
        var perSegment: [Int: [Int: (views: UInt64, engagements: UInt64)]] = [:]  // segment → post → counts
        var written: UInt64 = 0
        for out in try await ctx.collect("bt-users", broadcast: Broadcast(try plan.serializedData())) {
            let m = try Chorus_V1_Jobs_BestTimesSegmentCounts(serializedBytes: out.payload)
            let n = m.post.count
            guard m.segment.count == n, m.views.count == n, m.engagements.count == n,
                  m.post.allSatisfy({ Int($0) < posts.count }) else {
                throw ChorusError(.internal, "partition \(out.partition): malformed best-times segment counts")
            }
            written += m.usersWritten
            for i in 0..<n {
                var c = perSegment[Int(m.segment[i]), default: [:]][Int(m.post[i])] ?? (0, 0)
                c.views += m.views[i]; c.engagements += m.engagements[i]
                perSegment[Int(m.segment[i]), default: [:]][Int(m.post[i])] = c
            }
        }
        try await ctx.setTasksDone(nil)

        // 4. Segment fits: per channel, each segment's slots shrunk toward the channel's.
        var postsPerChannelSlot: [Int: [UInt64]] = [:]
        for p in posts { postsPerChannelSlot[p.channel, default: [UInt64](repeating: 0, count: 168)][p.slot] += 1 }
        var summarySegments: [String: Any] = [:]
        var index: [String: [Int]] = [:]
        for (g, byPost) in perSegment.sorted(by: { $0.key < $1.key }) {
            try await ctx.checkCancelled()
            var slots: [Int: [BestTimes.Moments]] = [:]
            for (i, cnt) in byPost {
                let p = posts[i]
                slots[p.channel, default: [BestTimes.Moments](repeating: .init(), count: 168)][p.slot]
                    .add(engagements: cnt.engagements, exposure: perView[p.channel]! ? cnt.views : 1)
            }
            for (c, var row) in slots.sorted(by: { channels[$0.key] < channels[$1.key] }) {
                guard let parent = fits[c] else { continue }
                // The channel's posts the segment did not reach still count as posts (no views, no engagements).
                for s in 0..<168 { row[s].addEmpty(postsPerChannelSlot[c]![s] - row[s].n, exposure: perView[c]! ? 0 : 1) }
                guard let fit = BestTimes.fit(row, perView: perView[c]!, parent: parent) else { continue }
                let week = BestTimes.week(fit, slots: row, level: level, top: top, minPosts: minPosts)
                results.append((key: "segment/\(channels[c])/\(g)",
                                value: try bytes(weekJSON(week, fit: fit, channel: channels[c], segment: g))))
                summarySegments["\(channels[c])/\(g)"] = brief(week)
                index[channels[c], default: []].append(g)
            }
        }
        let indexJSON: [String: Any] = [
            "job_id": ctx.jobID, "channels": channelSlots.keys.map { channels[$0] }.sorted(),
            "segments": index.mapValues { $0.sorted() }, "level": level, "top": top, "min_posts": minPosts,
            "rule": BestTimes.ruleText(level: level),
        ]
        results.append((key: "index", value: try bytes(indexJSON)))
        try await ctx.putResults(results)

        let summary: [String: Any] = [
            "channels": summaryChannels, "segments": summarySegments, "posts": posts.count, "level": level,
            "rule": BestTimes.ruleText(level: level), "segments_used": hasSegments, "timing_sections": Int(written),
            "estimator": "expected engagements per post = views per post × engagements per view, each shrunk (empirical Bayes, log scale): hours and days → channel mean, slots → day + hour profile; segments → their channel",
            "seconds": round6((ContinuousClock.now - started).seconds),
        ]
        return String(decoding: try bytes(summary), as: UTF8.self)
    }

    static func bytes(_ o: [String: Any]) throws -> [UInt8] {
        Array(try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]))
    }

    static func round6(_ x: Double) -> Double {
        guard x.isFinite, x != 0 else { return x.isFinite ? x : 0 }
        return Double(String(format: "%.6g", x)) ?? x
    }

    static func slotJSON(_ s: BestTimes.Slot) -> [String: Any] {
        var o: [String: Any] = ["slot": s.slot, "day": s.slot / 24, "hour": s.slot % 24, "name": BestTimes.slotName(s.slot),
                                "posts": Int(s.posts), "exposure": Int(s.exposure), "engagements": Int(s.engagements),
                                "score": round6(s.score), "lower": round6(s.lower), "upper": round6(s.upper),
                                "rate": round6(s.rate), "exposure_per_post": round6(s.viewsPerPost)]
        if let r = s.rawPerPost { o["raw_per_post"] = round6(r) }
        return o
    }

    static func weekJSON(_ w: BestTimes.Week, fit: BestTimes.Fit, channel: String, segment: Int?) -> [String: Any] {
        var o: [String: Any] = [
            "channel": channel, "posts": Int(w.posts), "level": w.level, "exposure": fit.perView ? "views" : "posts",
            "median": slotJSON(w.slots[w.medianSlot]),
            "recommended": zip(w.recommended, w.liftLower).map { s, lift -> [String: Any] in
                var j = slotJSON(w.slots[s]); j["lift_lower"] = round6(lift)
                j["lift"] = round6(w.slots[s].score / w.slots[w.medianSlot].score); return j
            },
            "clear_best": !w.recommended.isEmpty,
            "rule": BestTimes.ruleText(level: w.level),
            "dispersion": ["rate": round6(fit.rate.dispersion), "exposure": round6(fit.views.dispersion)],
            "tau2": ["rate_hour": round6(fit.rate.tau2Hour), "rate_day": round6(fit.rate.tau2Day),
                     "rate_slot": round6(fit.rate.tau2Slot), "exposure_slot": round6(fit.views.tau2Slot)],
            "slots": w.slots.map(slotJSON),
        ]
        if let segment { o["segment"] = segment }
        return o
    }

    /// The summary's entry of one week: the recommended slots with their intervals, or "no clear best time".
    static func brief(_ w: BestTimes.Week) -> [String: Any] {
        let med = w.slots[w.medianSlot]
        return ["posts": Int(w.posts), "clear_best": !w.recommended.isEmpty,
                "median": ["name": BestTimes.slotName(med.slot), "score": round6(med.score)],
                "recommended": w.recommended.map { s -> [String: Any] in
                    let x = w.slots[s]
                    return ["name": BestTimes.slotName(s), "slot": s, "score": round6(x.score),
                            "lower": round6(x.lower), "upper": round6(x.upper)]
                }]
    }

    /// One line per channel: "  x: Tue 12:00 (4.1 [3.6, 4.7]), … vs median 1.9" or "no clear best time".
    public static func summaryText(_ summaryJSON: String) -> String? {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(summaryJSON.utf8))) as? [String: Any],
              let chans = o["channels"] as? [String: [String: Any]] else { return nil }
        var lines = ["expected engagements per post by hour of the week (UTC), \(o["posts"] ?? 0) posts, "
                     + "\(Int((((o["level"] as? NSNumber)?.doubleValue ?? 0.9) * 100).rounded()))% intervals"
                     + ((o["segments_used"] as? Bool) == true ? ", per segment too" : "")]
        for (c, w) in chans.sorted(by: { $0.key < $1.key }) { lines.append("  \(c): " + briefText(w)) }
        if let segs = o["segments"] as? [String: Any], !segs.isEmpty {
            lines.append("  \(segs.count) (channel, segment) weeks: `chorus best-times --channel C --segment S`")
        }
        return lines.joined(separator: "\n")
    }

    public static func briefText(_ w: [String: Any]) -> String {
        func f(_ v: Any?) -> String { String(format: "%.3g", (v as? NSNumber)?.doubleValue ?? 0) }
        let rec = w["recommended"] as? [[String: Any]] ?? []
        let med = w["median"] as? [String: Any] ?? [:]
        if rec.isEmpty { return "no clear best time (median slot \(f(med["score"])))" }
        return rec.map { "\($0["name"] ?? "") \(f($0["score"])) [\(f($0["lower"])), \(f($0["upper"]))]" }.joined(separator: ", ")
            + " vs median \(f(med["score"]))"
    }
}
