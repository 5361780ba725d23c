import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

/// Job kind `campaign-plan`: a campaign plan from a brief (docs/campaigns.md). It reads what the other kinds left
/// (segments, propensity, ALS factors, best times, content drivers, sentiment alerts), runs one stage over the
/// partitions (`cp-audience`: each segment's eligible users after the brief's filters, their propensity, engagement,
/// home channels, summed ALS factors and keyed-hash arm buckets, and the content in the brief's pool), decides the
/// audience, the content per segment, the calendar, the budget split and the holdout design, and stores the plan as
/// the next version of the document `campaigns/<campaign_id>` on the coordinator. Every number names its evidence
/// (the job ids it came from); what an absent output could not decide is said in `gaps`, never invented.
public enum CampaignPlanJob: Job {
    public static let kind = "campaign-plan"
    public static let about = "a campaign plan from a brief: audience, content, schedule, budget and holdout, stored as a versioned document"
    public static let parameters: [JobParameter] = [
        .init("brief", .text(maxBytes: 256 << 10), "", "the brief as JSON (`chorus campaign plan --brief FILE` reads YAML or JSON and sets it)",
              internalUse: true),
        .init("campaign_id", .text(maxBytes: 128), "", "the plan's document id (letters, digits, '-', '_', '.')", internalUse: true),
        .init("author", .text(maxBytes: 128), "chorus", "who asked for the plan (recorded in the document's history)", internalUse: true),
        .init("expected_version", .integer(0...1_000_000), "0", "the document's current version (0: a new plan)", internalUse: true),
        .init("action", .choice(["create", "replan"]), "create", "recorded in the audit log", internalUse: true),
        .init("min_segment_users", .integer(1...1_000_000_000), "50", "a segment with fewer eligible users is not targeted"),
        .init("alert_days", .integer(1...3650), "30",
              "an alert is active when it fired within this many days of the newest stored alert"),
        .init("as_of", .time, "now", "accepted for every kind; campaign-plan uses the stored outputs as they are"),
    ]

    static let segmentsRole: UInt8 = 0x60
    static let propensityRole: UInt8 = 0x62
    public static let collection = "campaigns"

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { Worker() }

    public static var fuzzSeeds: [FuzzSeed] {
        var p = Chorus_V1_Jobs_CampaignAudiencePlan()
        p.channels = ["x", "weibo"]; p.assignmentKey = "fuzz"; p.factors = true; p.exclude = ["segment:1", "country:DE"]
        return [FuzzSeed(stage: "cp-audience", broadcast: try? p.serializedData())]
    }

    /// The brief a job carries, checked with the same rules as the CLI's.
    public static func brief(_ params: JobParams) throws -> CampaignBrief {
        guard let text = params["brief"], !text.isEmpty else {
            throw ChorusError(.usage, "campaign-plan needs a brief", hint: "use `chorus campaign plan --brief FILE`")
        }
        let b: CampaignBrief
        do { b = try JSONDecoder().decode(CampaignBrief.self, from: Data(text.utf8)) } catch {
            throw ChorusError(.usage, "campaign-plan: the brief parameter is not a brief: \(error)",
                              hint: "use `chorus campaign plan --brief FILE`, which checks and converts the file")
        }
        let problems = b.problems()
        if !problems.isEmpty {
            throw ChorusError(.usage, "the brief has \(problems.count) problem(s): " + problems.map(\.description).joined(separator: "; "),
                              hint: "docs/campaigns.md describes every field")
        }
        return b
    }

    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {
        _ = try brief(params)
        let id = params.string("campaign_id", "")
        guard !id.isEmpty, id.utf8.count <= 128,
              id.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }) else {
            throw ChorusError(.usage, "campaign-plan: campaign_id '\(id.prefix(60))' must be 1 to 128 letters, digits, '-', '_' or '.'")
        }
    }

    /// The brief's audience filters and content pool as the cp-audience broadcast (campaign-audience sends the same).
    static func audienceFilters(_ brief: CampaignBrief, assignmentKey: String) -> Chorus_V1_Jobs_CampaignAudiencePlan {
        var plan = Chorus_V1_Jobs_CampaignAudiencePlan()
        plan.channels = brief.channels
        plan.countries = brief.target.countries; plan.languages = brief.target.languages; plan.topics = brief.target.topics
        plan.exclude = brief.constraints.exclude
        plan.assignmentKey = assignmentKey
        switch brief.content.pool {
        case "ids": plan.contentIds = brief.content.ids
        case "tags": plan.contentTags = brief.content.tags
        default: break
        }
        return plan
    }

    // MARK: - driver

    public static func drive(_ ctx: JobContext) async throws -> String {
        let started = ContinuousClock.now
        let brief = try brief(ctx.params)
        let campaignID = ctx.params.string("campaign_id", "")
        let minUsers = ctx.params.int("min_segment_users", 50)
        var gaps: [String] = []
        var evidence: [String: String] = [:]
        // A replan reads the version it replaces: its locked parts are kept, its edits are constraints.
        let expected = UInt32(ctx.params.int("expected_version", 0))
        var previous: [String: Any]?
        if expected > 0, let d = try await ctx.document(collection: collection, id: campaignID, version: expected) {
            previous = (try? JSONSerialization.jsonObject(with: d.body)) as? [String: Any]
        }
        let edits = Edits(previous)

        // 1. What the other kinds left.
        try await ctx.setStage("campaign-plan: reading the stored outputs")
        let segmentTable = try await ctx.result(ofKind: "segments", "table")
        var segmentNames: [Int: String] = [:]
        if let t = segmentTable, let o = try? JSONSerialization.jsonObject(with: Data(t.value)) as? [String: Any] {
            evidence["segments"] = t.jobID
            for s in o["segments"] as? [[String: Any]] ?? [] {
                if let id = (s["id"] as? NSNumber)?.intValue { segmentNames[id] = s["name"] as? String ?? "segment \(id)" }
            }
        } else {
            gaps.append("no audience segments (run the `segments` job): the audience is the brief's filtered users as one group")
        }
        if let j = await ctx.latestSucceededJob(ofKind: "propensity") { evidence["propensity"] = j.id }
        let als = try await ctx.recommendationModel()
        if let als { evidence["als"] = als.params["job_id"] ?? "" } else {
            gaps.append("no ALS model (run the `als` job): content is ranked by the content drivers alone")
        }
        let bestTimesIndex = try await ctx.result(ofKind: "best-times", "index")
        if let b = bestTimesIndex { evidence["best_times"] = b.jobID } else {
            gaps.append("no best-times output (run the `best-times` job): posts go out at 12:00 UTC, not at a measured best time")
        }
        var drivers: [CampaignPlanner.Driver] = []
        if let ci = try await ctx.result(ofKind: "content-insights", "all"),
           let o = try? JSONSerialization.jsonObject(with: Data(ci.value)) as? [String: Any] {
            evidence["content_insights"] = ci.jobID
            drivers = contentDrivers(o)
        } else {
            gaps.append("no content-insights output (run the `content-insights` job): content drivers are not used")
        }
        let alerts = try await activeAlerts(ctx, days: ctx.params.int("alert_days", 30))
        let themes = await complaintThemes(ctx)
        if !themes.isEmpty { evidence["themes"] = Set(themes.values.map(\.job)).sorted().joined(separator: ",") }
        if let j = await ctx.latestSucceededJob(ofKind: "sentiment") { evidence["sentiment"] = j.id } else {
            gaps.append("no sentiment output (run the `sentiment` job): risks and content flags from alerts are unknown")
        }

        // 2. cp-audience over every partition.
        try await ctx.setStage("cp-audience")
        var plan = audienceFilters(brief, assignmentKey: assignmentKey(brief, campaignID: campaignID))
        plan.factors = als != nil
        var segs: [Int32: Chorus_V1_Jobs_CampaignSegmentPartial] = [:]
        var content: [Chorus_V1_Jobs_CampaignContentItem] = []
        var usersSeen: UInt64 = 0, segmentsPresent = false, propensityPresent = false
        var spendRows: [Chorus_V1_Jobs_CampaignSpendRow] = []
        for out in try await ctx.collect("cp-audience", broadcast: Broadcast(try plan.serializedData())) {
            let m = try Chorus_V1_Jobs_CampaignAudiencePartial(serializedBytes: out.payload)
            usersSeen += m.usersSeen
            segmentsPresent = segmentsPresent || m.segmentsPresent
            propensityPresent = propensityPresent || m.propensityPresent
            content += m.content
            spendRows += m.spend
            for s in m.segments {
                guard s.hashBuckets.count == 1000, s.channels.count == s.channelUsers.count else {
                    throw ChorusError(.internal, "partition \(out.partition): malformed campaign segment partial")
                }
                guard var t = segs[s.segment] else { segs[s.segment] = s; continue }
                t.users += s.users; t.excluded += s.excluded
                for i in 0..<1000 { t.hashBuckets[i] += s.hashBuckets[i] }
                t.propensitySum += s.propensitySum; t.propensityScored += s.propensityScored
                t.engagementSum += s.engagementSum; t.featured += s.featured; t.conversionsSum += s.conversionsSum
                t.engaged += s.engaged; t.converted += s.converted
                for (c, n) in zip(s.channels, s.channelUsers) {
                    if let i = t.channels.firstIndex(of: c) { t.channelUsers[i] += n } else { t.channels.append(c); t.channelUsers.append(n) }
                }
                if t.factorSum.isEmpty { t.factorSum = s.factorSum } else if t.factorSum.count == s.factorSum.count {
                    for q in t.factorSum.indices { t.factorSum[q] += s.factorSum[q] }
                }
                t.factored += s.factored
                segs[s.segment] = t
            }
        }
        try await ctx.setTasksDone(nil)
        guard usersSeen > 0 else {
            throw ctx.failure("insufficient data: no user records; ingest users (and their interactions) before planning a campaign")
        }
        if !propensityPresent && brief.objective == .conversions {
            gaps.append("no propensity scores (run the `propensity` job): conversions are estimated from the history's conversions per user")
        }
        content.sort { $0.id < $1.id }
        spendRows.sort { ($0.channel, $0.date, $0.periodDays) < ($1.channel, $1.date, $1.periodDays) }

        // 3. Audience.
        try await ctx.setStage("campaign-plan: deciding")
        let inputs: [CampaignPlanner.SegmentInput] = segs.keys.sorted().map { g in
            let s = segs[g]!
            return CampaignPlanner.SegmentInput(
                id: Int(g), name: g < 0 ? (segmentsPresent ? "users without a segment" : "all eligible users") : (segmentNames[Int(g)] ?? "segment \(g)"),
                users: Int(s.users), filteredOut: Int(s.excluded),
                propensity: s.propensityScored > 0 ? s.propensitySum / Double(s.propensityScored) : nil,
                engagementPerUser: s.featured > 0 ? s.engagementSum / Double(s.featured) : nil,
                conversionsPerUser: s.featured > 0 ? s.conversionsSum / Double(s.featured) : nil,
                channelUsers: Dictionary(zip(s.channels, s.channelUsers.map(Int.init)), uniquingKeysWith: +))
        }
        let excludedSegments = brief.constraints.exclude.compactMap { CampaignBrief.audienceRule($0) }
            .filter { $0.kind == "segment" }.compactMap { Int($0.value) }
        let lockedAudience = edits.locks.contains("audience") ? edits.previousChosen : nil
        var (choices, audienceNotes) = CampaignPlanner.chooseAudience(inputs, objective: brief.objective,
                                                                    target: lockedAudience ?? brief.target.segments,
                                                                    excluded: excludedSegments + edits.droppedSegments, minUsers: minUsers)
        for i in choices.indices {
            if edits.droppedSegments.contains(choices[i].segment) && !excludedSegments.contains(choices[i].segment) {
                choices[i].reason = "dropped by an edit (`chorus campaign edit --drop segment:\(choices[i].segment)`)"
            } else if lockedAudience != nil && choices[i].chosen {
                choices[i].reason = "kept: the audience is locked (" + choices[i].reason + ")"
            } else if lockedAudience != nil && !choices[i].chosen && !excludedSegments.contains(choices[i].segment) {
                choices[i].reason = "not in the locked audience"
            }
        }
        gaps += audienceNotes
        let chosen = choices.filter(\.chosen)
        if chosen.isEmpty { gaps.append("no segment could be chosen: every one is excluded, filtered out or below min_segment_users (\(minUsers))") }

        // 4. Measurement: a holdout per chosen segment, sized from its base rate.
        let m = brief.measurement
        var measurement: [[String: Any]] = []
        for c in chosen {
            let s = segs[Int32(c.segment)]!
            let featured = max(1, Double(s.featured))
            let (base, metric): (Double, String) = brief.objective == .conversions
                ? (c.propensity ?? Double(s.converted) / featured, c.propensity != nil ? "conversion within the propensity horizon (mean propensity)" : "share of users who converted in the history")
                : (Double(s.engaged) / featured, "share of users who engage")
            let d = Experiment.holdoutDesign(size: Int(s.users), baseRate: base, alpha: m.alpha, power: m.power,
                                             targetLift: m.targetLift, fixedShare: m.holdoutShare.map { ($0 * 1000).rounded() / 1000 })
            // The realized arms of the keyed hash (exact: the share is a multiple of 0.001).
            let cut = min(1000, Int((d.holdoutShare * 1000).rounded()))
            let held = Int(s.hashBuckets[0..<cut].reduce(0, +))
            measurement.append([
                "segment": c.segment, "metric": metric, "base_rate": r6(base), "holdout_share": d.holdoutShare,
                "users": Int(s.users), "holdout_users": held, "treated_users": Int(s.users) - held,
                "expected_holdout_users": d.holdout,
                "mde_absolute": finite(d.mdeAbsolute), "mde_relative": finite(d.mdeRelative), "effect_size_h": finite(d.effectSize),
                "reaches_target": d.reachesTarget, "target_lift": m.targetLift, "alpha": m.alpha, "power": m.power,
                "duration_days": brief.days ?? 0,
                "why": m.holdoutShare != nil ? "the brief's holdout share"
                    : d.reachesTarget ? "the smallest share (of 5%…50%) that detects a \(pct(m.targetLift)) lift at this power"
                    : "no share up to 50% detects a \(pct(m.targetLift)) lift: the largest is used and the segment is flagged",
            ])
        }

        if edits.locks.contains("measurement"), let kept = edits.previousMeasurement { measurement = kept }

        // 5. Content per chosen segment.
        var negative = Dictionary(alerts.filter { $0.kind == "sentiment_dip" }.map { ($0.key.lowercased(), "negative alert at \($0.at)") },
                                  uniquingKeysWith: { a, _ in a })
        for (key, t) in themes where negative[key] == nil { negative[key] = "complaint themes: \(t.summary) (job \(t.job))" }
        let candidates = content.filter { !edits.droppedContent.contains($0.id) }.map {
            CampaignPlanner.ContentCandidate(id: $0.id, channel: $0.channel, mediaType: $0.mediaType, topics: $0.topics, hashtags: $0.hashtags) }
        if candidates.isEmpty { gaps.append("no content in the brief's pool on the allowed channels: the schedule has no posts") }
        let itemIndex: [String: Int] = als.map { Dictionary($0.ids.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a }) } ?? [:]
        let itemFactors = als.map { FloatPacking.unpack($0.factors) } ?? []
        let width = Int(als?.width ?? 0), rank = Int(als?.rank ?? 0)
        var picks: [Int: [CampaignPlanner.ContentPick]] = [:]
        for c in chosen {
            let s = segs[Int32(c.segment)]!
            let mean: [Double]? = s.factored > 0 && s.factorSum.count == rank ? s.factorSum.map { $0 / Double(s.factored) } : nil
            func score(_ id: String) -> Double? {
                guard let mean, let i = itemIndex[id], (i + 1) * width <= itemFactors.count else { return nil }
                var d = 0.0
                for q in 0..<rank { d += mean[q] * Double(itemFactors[i * width + q]) }
                return d
            }
            // The segment's items per channel, so every channel it posts on has content.
            var list: [CampaignPlanner.ContentPick] = []
            for ch in brief.channels {
                list += CampaignPlanner.pickContent(candidates.filter { $0.channel == ch }, alsScore: score, alsAvailable: als != nil, drivers: drivers,
                                                    negativeKeys: negative, n: brief.content.perSegment)
            }
            picks[c.segment] = list
            if edits.locks.contains("content"), let kept = edits.previousContent[c.segment] { picks[c.segment] = kept }
        }

        // 6. Schedule.
        var streams: [CampaignPlanner.Stream] = []
        for c in chosen {
            let users = inputs.first { $0.id == c.segment }?.channelUsers ?? [:]
            let total = max(1, users.values.reduce(0, +))
            for ch in brief.channels {
                let share = Double(users[ch] ?? 0) / Double(total)
                guard share >= 0.05 else { continue }
                let items = (picks[c.segment] ?? []).filter { $0.channel == ch }.map(\.contentId)
                guard !items.isEmpty else { continue }
                let ranking = try await slotRanking(ctx, channel: ch, segment: c.segment, available: bestTimesIndex != nil)
                streams.append(.init(segment: c.segment, channel: ch, ranking: ranking, content: items,
                                     weight: c.expectedOutcome * share))
            }
        }
        let rules = CampaignPlanner.ScheduleRules(
            postsPerDay: brief.constraints.postsPerDay, postsPerChannelPerDay: brief.constraints.postsPerChannelPerDay,
            minSpacingHours: brief.constraints.minSpacingHours,
            frequencyCap: brief.constraints.frequencyCap.map { ($0.impressions, $0.days) })
        let startDay = CampaignBrief.dayNumber(brief.start) ?? 0
        var (posts, skipped) = CampaignPlanner.schedule(streams: streams, startDay: startDay, days: brief.days ?? 0, rules: rules)
        if edits.locks.contains("schedule"), let kept = edits.previousPosts {
            posts = kept
            skipped = edits.previousSkipped
            streams = []
        }

        // 7. Budget: response curves from the spend history, else the even split.
        var budgetBrief = brief
        for (c, v) in edits.budget.sorted(by: { $0.key < $1.key }) where brief.channels.contains(c) {
            budgetBrief.constraints.spend[c] = .init(min: v, max: v)
            gaps.append("budget.\(c) is fixed at \(r2(v)) by an edit: the split treats it as a constraint")
        }
        // The curve fits and their bootstrap are seconds of CPU: off the cooperative pool.
        let history = spendRows, forBudget = budgetBrief
        let experiments = try await measuredExperiments(ctx)
        if !experiments.isEmpty { evidence["experiments"] = Set(experiments.map(\.id)).sorted().joined(separator: ",") }
        let fitted = await JobContext.offPool { () -> (json: Data?, gaps: [String], evidence: String?) in
            let r = CampaignBudget.plan(brief: forBudget, history: history, experiments: experiments)
            return (try? JSONSerialization.data(withJSONObject: r.json, options: [.sortedKeys]), r.gaps, r.evidence)
        }
        guard let budgetJSON = fitted.json, var budget = (try? JSONSerialization.jsonObject(with: budgetJSON)) as? [String: Any] else {
            throw ChorusError(.internal, "the budget part of the plan is not JSON")
        }
        var budgetGaps = fitted.gaps, spendEvidence = fitted.evidence
        if edits.locks.contains("budget"), let kept = edits.previousBudget {
            budget = kept
            budgetGaps = []
            spendEvidence = edits.previousEvidence["spend_history"]
        }
        gaps += budgetGaps
        if let spendEvidence { evidence["spend_history"] = spendEvidence }

        // 8. Risks: active alerts on the watched keys or on the chosen content's topics and hashtags.
        let touched = Set(brief.constraints.watch.map { $0.lowercased() })
            .union(picks.values.flatMap { $0 }.compactMap { p in candidates.first { $0.id == p.contentId }?.alertKeys }.flatMap { $0 })
        var risks: [[String: Any]] = alerts.filter { touched.contains($0.key.lowercased()) }.map {
            ["key": $0.key, "kind": $0.kind, "at": $0.at, "why": $0.why, "watched": brief.constraints.watch.contains($0.key)]
        }
        for (key, t) in themes.sorted(by: { $0.key < $1.key }) where touched.contains(key) {
            risks.append(["key": key, "kind": "complaint_themes", "at": "", "why": t.summary, "job": t.job,
                          "negative_comments": t.negative, "watched": brief.constraints.watch.map { $0.lowercased() }.contains(key)])
        }

        // 9. The document.
        func json<T: Encodable>(_ v: T) throws -> Any {
            let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
            return try JSONSerialization.jsonObject(with: try e.encode(v), options: [.fragmentsAllowed])
        }
        var body: [String: Any] = [
            "format": 1,
            "campaign_id": campaignID,
            "brief": try json(brief),
            "audience": ["rule": CampaignPlanner.audienceRule, "min_segment_users": minUsers,
                         "users_seen": Int(usersSeen), "segments": try json(choices)],
            "content": chosen.map { c -> [String: Any] in
                ["segment": c.segment, "items": (try? json(picks[c.segment] ?? [])) ?? []] },
            "schedule": ["posts": try json(posts), "skipped": skipped,
                         "rules": ["posts_per_day": rules.postsPerDay, "posts_per_channel_per_day": rules.postsPerChannelPerDay,
                                   "min_spacing_hours": rules.minSpacingHours,
                                   "frequency_cap": brief.constraints.frequencyCap.map { ["impressions": $0.impressions, "days": $0.days] as Any } ?? NSNull()],
                         "streams": streams.map { ["segment": $0.segment, "channel": $0.channel, "source": $0.ranking.source,
                                                   "items": $0.content.count] }],
            "budget": budget,
            "measurement": ["assignment": "holdout when SipHash-2-4 of the user id, keyed by '\(plan.assignmentKey)', read as a number in [0, 1) is below the segment's share",
                            "assignment_key": plan.assignmentKey, "power_formula": "statsmodels NormalIndPower (two-sided z test, Cohen's h)",
                            "segments": measurement],
            "risks": risks,
            "gaps": gaps,
            "evidence": evidence,
        ]
        body["locks"] = edits.locks.sorted()
        body["overrides"] = edits.overrides
        var changes: [String] = []
        if let previous {
            changes = Self.changes(from: previous, to: body)
            body["changes"] = changes
        }
        let bytes = Array(try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]))
        var summaryText = "\(chosen.count) segment(s), \(posts.count) posts, budget \(brief.currency) \(r2(brief.budget)) (\(budget["method"] ?? ""))"
        if previous != nil {
            summaryText += "; " + (changes.isEmpty ? "nothing moved" : changes.joined(separator: "; "))
            if summaryText.utf8.count > 60_000 { summaryText = String(summaryText.prefix(20_000)) + " …" }
        }
        let version = try await ctx.putDocument(collection: collection, id: campaignID, expectedVersion: expected, body: bytes,
                                                author: ctx.params.string("author", "chorus"),
                                                action: ctx.params.string("action", "create"), summary: summaryText, title: brief.name)
        let summary: [String: Any] = [
            "campaign_id": campaignID, "version": Int(version.version), "name": brief.name,
            "segments_chosen": chosen.map(\.segment), "posts": posts.count, "budget_method": budget["method"] ?? "",
            "gaps": gaps.count, "risks": risks.count, "seconds": r6((ContinuousClock.now - started).seconds),
            "changes": changes, "locks": edits.locks.sorted(),
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self)
    }

    public static func summaryText(_ summaryJSON: String) -> String? {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(summaryJSON.utf8))) as? [String: Any],
              let id = o["campaign_id"] as? String else { return nil }
        return "campaign \(id) version \(o["version"] ?? 0): segments \(o["segments_chosen"] ?? []), \(o["posts"] ?? 0) posts, "
            + "budget by \(o["budget_method"] ?? "?"), \(o["gaps"] ?? 0) gap(s), \(o["risks"] ?? 0) risk(s); `chorus campaign show \(id)`"
    }

    // MARK: - helpers

    /// The key of the holdout's keyed hash: the brief's own, else derived from the campaign id, so a replan keeps
    /// every user in the same arm.
    /// The calibration points of every campaign's latest evaluation that is finished and valid (no sample-ratio
    /// mismatch): per channel, the incremental KPI its spend caused (`campaign-evaluations`, docs/campaigns.md).
    static func measuredExperiments(_ ctx: JobContext) async throws -> [CampaignBudget.Experiment] {
        var out: [CampaignBudget.Experiment] = []
        for s in try await ctx.documents(collection: "campaign-evaluations") {
            guard let d = try await ctx.document(collection: "campaign-evaluations", id: s.id),
                  let o = try? JSONSerialization.jsonObject(with: d.body) as? [String: Any] else { continue }
            for c in o["calibration"] as? [[String: Any]] ?? [] {
                guard c["finished"] as? Bool == true, c["valid"] as? Bool == true,
                      let ch = c["channel"] as? String, let kpi = c["kpi"] as? String,
                      let spend = (c["spend"] as? NSNumber)?.doubleValue, let days = (c["days"] as? NSNumber)?.doubleValue,
                      let lift = (c["lift"] as? NSNumber)?.doubleValue, let se = (c["standard_error"] as? NSNumber)?.doubleValue
                else { continue }
                out.append(.init(id: "\(c["id"] as? String ?? s.id) look \(d.meta.version)", channel: ch, kpi: kpi, spend: spend,
                                 days: days, lift: lift, standardError: se))
            }
        }
        return out
    }

    static func assignmentKey(_ b: CampaignBrief, campaignID: String) -> String { b.measurement.key ?? "campaign/" + campaignID }

    struct Alert { var key: String; var kind: String; var at: String; var hour: Int64; var why: Any }

    /// Alerts that fired within `days` of the newest stored alert (the data's present, not the wall clock).
    static func activeAlerts(_ ctx: JobContext, days: Int) async throws -> [Alert] {
        let all = try await ctx.results(ofKind: "sentiment", prefix: "alert/").compactMap { e -> Alert? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(e.value)) as? [String: Any],
                  let key = o["key"] as? String, let kind = o["kind"] as? String else { return nil }
            return Alert(key: key, kind: kind, at: o["at"] as? String ?? "", hour: (o["hour"] as? NSNumber)?.int64Value ?? 0,
                         why: o["why"] ?? NSNull())
        }
        guard let newest = all.map(\.hour).max() else { return [] }
        return all.filter { $0.hour > newest - Int64(days) * 24 }
    }

    /// The newest `themes` job's complaint themes per key (lower-cased), with negative comments to show.
    static func complaintThemes(_ ctx: JobContext) async -> [String: (job: String, summary: String, negative: Int)] {
        var out: [String: (job: String, summary: String, negative: Int)] = [:]
        for j in await ctx.succeededJobs(ofKind: "themes") {
            guard let o = (try? JSONSerialization.jsonObject(with: Data(j.summaryJSON.utf8))) as? [String: Any],
                  let key = (o["key"] as? String)?.lowercased(), out[key] == nil,
                  let negative = (o["negative_comments"] as? NSNumber)?.intValue, negative > 0 else { continue }
            let top = (o["themes"] as? [[String: Any]] ?? []).prefix(3).map { t in
                ((t["terms"] as? [String]) ?? []).prefix(4).joined(separator: " ") + " (\((t["size"] as? NSNumber)?.intValue ?? 0))"
            }
            out[key] = (j.id, "\(negative) negative comments; " + (top.isEmpty ? "no theme" : top.joined(separator: "; ")), negative)
        }
        return out
    }

    /// Content-insights effects whose interval excludes no effect, as multipliers on the engagement rate.
    static func contentDrivers(_ report: [String: Any]) -> [CampaignPlanner.Driver] {
        (report["effects"] as? [[String: Any]] ?? []).compactMap { e in
            guard let group = e["group"] as? String, let level = e["level"] as? String,
                  let low = (e["low"] as? NSNumber)?.doubleValue, let high = (e["high"] as? NSNumber)?.doubleValue,
                  let ratio = (e["rate_ratio"] as? NSNumber)?.doubleValue, low > 0 || high < 0, (e["channel"] as? String ?? "").isEmpty
            else { return nil }
            switch group {
            case "media_type", "topic": return .init(attribute: "\(group)=\(level.lowercased())", multiplier: ratio)
            case "hashtag": return .init(attribute: "hashtag=#" + level.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "#")), multiplier: ratio)
            default: return nil
            }
        }
    }

    /// The slots of the week for a segment on a channel: the segment's own best-times week when stored, else the
    /// channel's, else 12:00 UTC every day (said in the source).
    static func slotRanking(_ ctx: JobContext, channel: String, segment: Int, available: Bool) async throws -> CampaignPlanner.SlotRanking {
        if available {
            for key in (segment >= 0 ? ["segment/\(channel)/\(segment)"] : []) + ["channel/\(channel)"] {
                guard let r = try await ctx.result(ofKind: "best-times", key),
                      let o = try? JSONSerialization.jsonObject(with: Data(r.value)) as? [String: Any],
                      let slots = o["slots"] as? [[String: Any]], slots.count == 168 else { continue }
                let ranked = slots.compactMap { s -> (slot: Int, score: Double)? in
                    guard let i = (s["slot"] as? NSNumber)?.intValue, let v = (s["score"] as? NSNumber)?.doubleValue, v.isFinite else { return nil }
                    return (i, v)
                }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.slot < $1.slot }
                // Per weekday, the better half of the hours: the calendar picks among them.
                var kept: [(slot: Int, score: Double)] = []
                for d in 0..<7 { kept += ranked.filter { $0.slot / 24 == d }.prefix(12) }
                let clear = (o["clear_best"] as? Bool) == true
                return .init(slots: kept.sorted { $0.score != $1.score ? $0.score > $1.score : $0.slot < $1.slot },
                             source: "best-times \(key) (job \(r.jobID))" + (clear ? "" : "; no clear best time there, so the estimates only order the slots"))
            }
        }
        return .init(slots: (0..<7).map { (slot: $0 * 24 + 12, score: 1.0) },
                     source: "no best-times output for \(channel): 12:00 UTC by default")
    }

    static func r6(_ x: Double) -> Double {
        guard x.isFinite else { return x > 0 ? 1e308 : -1e308 }
        return Double(String(format: "%.6g", x)) ?? x
    }
    /// A rounded number, or null when it is infinite (a segment too small to measure).
    static func finite(_ x: Double) -> Any { x.isFinite ? r6(x) : NSNull() }
    static func r2(_ x: Double) -> Double { (x * 100).rounded() / 100 }
    static func pct(_ x: Double) -> String { String(format: "%.0f%%", x * 100) }
}
