import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation

/// Job kind `campaign-eval`: a campaign's measurement from its outcome records (docs/campaigns.md "Measurement").
///
/// Two stages over the partitions. `ce-extent` finds the newest event of the campaign (the end of its data, which
/// bounds the retention windows). `ce-measure` reads each assigned user's outcomes (placed by user, so a user's
/// records are in one partition with the user's interactions) and returns, per (segment, channel, arm), the delivery
/// and outcome totals and the per-user moments of each metric with its pre-period covariate; plus the daily delivery
/// and the campaign's spend records. The driver merges the sums and estimates, with `CampaignMeasurement` (pure):
/// the sample-ratio check per segment, the lift of each metric per segment and per segment × channel (Welch, CUPED,
/// the confidence sequence), the multiple-comparison correction, a verdict per segment, the per-channel efficiency
/// (CTR, CPA, ROAS, ROI, incremental conversions and their cost), the pacing against the plan, and the calibration
/// points for the response curves. The evaluation is stored as the next version of the document
/// `campaign-evaluations/<campaign_id>`: each version is one look.
public enum CampaignEvalJob: Job {
    public static let kind = "campaign-eval"
    public static let about = "a campaign's lift over its holdout per segment and channel, with honest intervals, SRM check and pacing"
    public static let collection = "campaign-evaluations"
    public static let parameters: [JobParameter] = [
        .init("campaign_id", .text(maxBytes: 128), "", "the campaign plan's id (`chorus campaign list`)"),
        .init("version", .integer(0...1_000_000), "0", "the plan version to measure against (0: the latest)"),
        .init("alpha", .number(0...0.5), "0", "the significance level (0: the brief's measurement.alpha)"),
        .init("correction", .choice(["holm", "benjamini-hochberg", "none"]), "holm",
              "the multiple-comparison correction over every lift tested"),
        .init("author", .text(maxBytes: 128), "chorus", "who asked (recorded in the evaluation's history)", internalUse: true),
        .init("as_of", .time, "now", "the look's time: events at or after it are not seen yet"),
    ]

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { Worker() }
    public static func tasksPerPartition(_ params: JobParams) -> Int { 2 }

    public static var fuzzSeeds: [FuzzSeed] {
        var p = Chorus_V1_Jobs_CampaignEvalPlan()
        p.campaign = "fuzz"; p.assignmentKey = "fuzz"; p.start = 1_700_000_000; p.end = 1_700_600_000
        p.preStart = 1_699_400_000; p.asOf = 1_700_600_000; p.dataEnd = 1_700_600_000
        var s = Chorus_V1_Jobs_CampaignEvalSegment()
        s.segment = 1; s.holdoutShare = 0.2
        p.segments = [s]
        let b = try? p.serializedData()
        return [FuzzSeed(stage: "ce-extent", broadcast: b), FuzzSeed(stage: "ce-measure", broadcast: b)]
    }

    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {
        guard !params.string("campaign_id", "").isEmpty else {
            throw ChorusError(.usage, "campaign-eval needs campaign_id", hint: "chorus campaign evaluate ID")
        }
    }

    /// The metrics compared between the arms: the KPI's metric is the segment's verdict.
    enum Metric: String, CaseIterable {
        case conversionRate = "conversion_rate", revenuePerUser = "revenue_per_user"
        case retention7 = "retention_7", retention28 = "retention_28"

        func moments(_ c: Chorus_V1_Jobs_CampaignEvalCell) -> Chorus_V1_Jobs_CampaignMoments {
            switch self {
            case .conversionRate: return c.converted
            case .revenuePerUser: return c.value
            case .retention7: return c.retained7
            case .retention28: return c.retained28
            }
        }

        /// CUPED needs a pre-period value of the same metric: conversion and value have one.
        var hasCovariate: Bool { self == .conversionRate || self == .revenuePerUser }

        static func primary(kpi: String) -> Metric { kpi == "revenue" ? .revenuePerUser : .conversionRate }
    }

    // MARK: - driver

    public static func drive(_ ctx: JobContext) async throws -> String {
        let started = ContinuousClock.now
        let id = ctx.params.string("campaign_id", "")
        let doc = try await CampaignPlanDocument.load(ctx, id: id, version: UInt32(ctx.params.int("version", 0)))
        guard !doc.segments.isEmpty else {
            throw ctx.failure("campaign plan '\(id)' v\(doc.version) chose no segment: there is nothing to measure")
        }
        let alphaParam = ctx.params.double("alpha", 0)
        let alpha = alphaParam > 0 ? alphaParam : doc.brief.measurement.alpha
        let correction = CampaignMeasurement.Correction(rawValue: ctx.params.string("correction", "holm")) ?? .holm
        let asOf = ctx.params.asOf
        var plan = Chorus_V1_Jobs_CampaignEvalPlan()
        plan.campaign = id; plan.assignmentKey = doc.assignmentKey
        plan.segments = doc.segments.map {
            var s = Chorus_V1_Jobs_CampaignEvalSegment()
            s.segment = Int32(clamping: $0.segment); s.holdoutShare = $0.holdoutShare
            return s
        }
        plan.start = doc.start; plan.end = doc.end
        plan.preStart = doc.start - (doc.end - doc.start)
        plan.asOf = asOf

        try await ctx.setStage("ce-extent")
        var newest: Int64 = 0, activity: Int64 = 0
        for out in try await ctx.collect("ce-extent", broadcast: Broadcast(try plan.serializedData())) {
            let m = try Chorus_V1_Jobs_CampaignEvalPartial(serializedBytes: out.payload)
            newest = max(newest, m.newestEvent)
            activity = max(activity, m.newestActivity)
        }
        guard newest > 0 else {
            throw ctx.failure("campaign '\(id)' has no outcome records yet: ingest its outcomes* files "
                              + "(docs/data-format.md \"outcomes\"), or simulate them with `chorus campaign simulate \(id)`")
        }
        let dataEnd = min(asOf, max(newest, activity) + 1)
        plan.dataEnd = dataEnd

        try await ctx.setStage("ce-measure")
        var cells: [String: Chorus_V1_Jobs_CampaignEvalCell] = [:]
        var delivery: [String: Chorus_V1_Jobs_CampaignDeliveryDay] = [:]
        var spend: [Chorus_V1_Jobs_CampaignSpendDay] = []
        var totals = Chorus_V1_Jobs_CampaignEvalPartial()
        var versions: [UInt32: UInt64] = [:]
        for out in try await ctx.collect("ce-measure", broadcast: Broadcast(try plan.serializedData())) {
            let m = try Chorus_V1_Jobs_CampaignEvalPartial(serializedBytes: out.payload)
            for c in m.cells {
                let k = "\(c.segment)\u{0}\(c.channel)\u{0}\(c.arm)"
                if var a = cells[k] { a.merge(c); cells[k] = a } else { cells[k] = c }
            }
            for d in m.delivery {
                let k = d.channel + "\u{0}" + d.date
                if var a = delivery[k] { a.impressions += d.impressions; a.clicks += d.clicks; delivery[k] = a } else { delivery[k] = d }
            }
            spend += m.spend
            totals.outcomeRecords += m.outcomeRecords; totals.unassignedUsers += m.unassignedUsers
            totals.reassignedUsers += m.reassignedUsers; totals.lateEvents += m.lateEvents
            totals.outsideWindow += m.outsideWindow; totals.unknownSegmentUsers += m.unknownSegmentUsers
            for (i, v) in m.versions.enumerated() where i < m.versionUsers.count { versions[v, default: 0] += m.versionUsers[i] }
        }
        try await ctx.setStage("campaign-eval: estimating")
        // Stored as the next look.
        let existing = try await ctx.document(collection: collection, id: id)
        let look = (existing?.latestVersion ?? 0) + 1
        let input = Evaluation.Input(doc: doc, cells: Array(cells.values), delivery: Array(delivery.values), spend: spend,
                                     totals: totals, versions: versions, alpha: alpha, correction: correction,
                                     asOf: asOf, dataEnd: dataEnd, look: Int(look), jobID: ctx.jobID,
                                     evaluatedAt: Int64(Date().timeIntervalSince1970))
        let bytes = await JobContext.offPool {
            (try? JSONSerialization.data(withJSONObject: Evaluation.build(input), options: [.sortedKeys])) ?? Data()
        }
        guard let body = try JSONSerialization.jsonObject(with: bytes) as? [String: Any] else {
            throw ctx.failure("campaign-eval built an evaluation that is not a JSON object")
        }
        let verdicts = (body["segments"] as? [[String: Any]] ?? []).map { "segment \($0["segment"] ?? "?"): \($0["verdict"] ?? "?")" }
        let meta = try await ctx.putDocument(collection: collection, id: id, expectedVersion: existing?.latestVersion ?? 0,
                                             body: Array(bytes), author: ctx.params.string("author", "chorus"),
                                             action: "evaluate", summary: verdicts.joined(separator: "; "),
                                             title: "\(doc.brief.name) v\(doc.version) look \(look)")
        let summary: [String: Any] = [
            "campaign_id": id, "plan_version": Int(doc.version), "look": Int(meta.version),
            "finished": (body["window"] as? [String: Any])?["finished"] as? Bool ?? false,
            "users": (body["totals"] as? [String: Any])?["users"] ?? 0,
            "srm_mismatch": (body["srm"] as? [[String: Any]] ?? []).contains { $0["mismatch"] as? Bool == true },
            "verdicts": (body["segments"] as? [[String: Any]] ?? []).map { ["segment": $0["segment"] ?? 0, "verdict": $0["verdict"] ?? ""] },
            "seconds": (ContinuousClock.now - started).seconds,
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self)
    }

    public static func summaryText(_ summaryJSON: String) -> String? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(summaryJSON.utf8)) as? [String: Any] else { return nil }
        var lines = ["campaign \(o["campaign_id"] ?? "?") (plan v\(o["plan_version"] ?? "?")), look \(o["look"] ?? "?"): "
                     + "\(o["users"] ?? 0) users" + ((o["finished"] as? Bool) == true ? ", finished" : ", running")]
        if (o["srm_mismatch"] as? Bool) == true { lines.append("  sample ratio mismatch: the flagged segments' results are not valid") }
        for v in o["verdicts"] as? [[String: Any]] ?? [] { lines.append("  segment \(v["segment"] ?? "?"): \(v["verdict"] ?? "?")") }
        lines.append("  details: chorus campaign evaluate \(o["campaign_id"] ?? "ID") --show")
        return lines.joined(separator: "\n")
    }
}

extension Chorus_V1_Jobs_CampaignEvalCell {
    mutating func merge(_ c: Self) {
        users += c.users; exposed += c.exposed; impressions += c.impressions; clicks += c.clicks
        conversions += c.conversions; revenue += c.revenue; armMismatch += c.armMismatch
        converted += c.converted; value += c.value; retained7 += c.retained7; retained28 += c.retained28
    }
}
