import ChorusModel
import ChorusRuntime
import Foundation

/// The parts of a stored plan (`campaigns/<id>`, docs/campaigns.md "The plan document") that the kinds built on a
/// plan read: campaign-audience lists its users, campaign-eval measures it.
struct CampaignPlanDocument: Sendable {
    let campaignID: String
    let version: UInt32
    let brief: CampaignBrief
    let assignmentKey: String
    /// The chosen segments and their holdout shares, in the plan's order.
    let segments: [(segment: Int, holdoutShare: Double)]
    /// The users the plan counted per chosen segment (both arms).
    let segmentUsers: [Int: Int]
    /// Spend per channel in the plan's budget.
    let budget: [(channel: String, spend: Double)]
    /// Posts per channel and date in the schedule.
    let posts: [(channel: String, date: String)]
    /// The window [start, end) in unix seconds: the brief's start day 00:00 UTC to the day after its end.
    let start: Int64
    let end: Int64
    /// The KPI the brief optimizes (conversions, revenue, ...).
    var kpi: String { brief.kpi }

    /// Reads version `version` (0: the latest) of the plan `id`; a clear error when it is missing or unreadable.
    static func load(_ ctx: JobContext, id: String, version: UInt32) async throws -> CampaignPlanDocument {
        guard let d = try await ctx.document(collection: CampaignPlanJob.collection, id: id, version: version) else {
            throw ChorusError(.notFound, "no campaign plan '\(id.prefix(128))'" + (version > 0 ? " version \(version)" : ""),
                              hint: "see `chorus campaign list`; make one with `chorus campaign plan`")
        }
        guard let o = try? JSONSerialization.jsonObject(with: d.body) as? [String: Any] else {
            throw ChorusError(.internal, "campaign plan '\(id.prefix(128))' v\(d.meta.version) is not a JSON object")
        }
        let plan = o["plan"] as? [String: Any] ?? o
        return try parse(plan, id: id, version: d.meta.version)
    }

    static func parse(_ plan: [String: Any], id: String, version: UInt32) throws -> CampaignPlanDocument {
        guard let b = plan["brief"], let bd = try? JSONSerialization.data(withJSONObject: b),
              let brief = try? JSONDecoder().decode(CampaignBrief.self, from: bd) else {
            throw ChorusError(.internal, "campaign plan '\(id.prefix(128))' v\(version) has no readable brief")
        }
        let m = plan["measurement"] as? [String: Any] ?? [:]
        let key = m["assignment_key"] as? String ?? CampaignPlanJob.assignmentKey(brief, campaignID: id)
        var segments: [(Int, Double)] = []
        var users: [Int: Int] = [:]
        for s in m["segments"] as? [[String: Any]] ?? [] {
            guard let g = (s["segment"] as? NSNumber)?.intValue, let h = (s["holdout_share"] as? NSNumber)?.doubleValue else { continue }
            segments.append((g, h))
            users[g] = (s["users"] as? NSNumber)?.intValue ?? 0
        }
        var budget: [(String, Double)] = []
        for c in (plan["budget"] as? [String: Any])?["channels"] as? [[String: Any]] ?? [] {
            if let ch = c["channel"] as? String { budget.append((ch, (c["spend"] as? NSNumber)?.doubleValue ?? 0)) }
        }
        var posts: [(String, String)] = []
        for p in (plan["schedule"] as? [String: Any])?["posts"] as? [[String: Any]] ?? [] {
            if let ch = p["channel"] as? String, let d = p["date"] as? String { posts.append((ch, d)) }
        }
        guard let s = CivilDate.parse(brief.start, years: 1990...2099), let e = CivilDate.parse(brief.end, years: 1990...2099) else {
            throw ChorusError(.internal, "campaign plan '\(id.prefix(128))' v\(version) has no readable window")
        }
        return CampaignPlanDocument(campaignID: id, version: version, brief: brief, assignmentKey: key,
                                    segments: segments, segmentUsers: users, budget: budget, posts: posts,
                                    start: Int64(s) * 86_400, end: Int64(e + 1) * 86_400)
    }
}
