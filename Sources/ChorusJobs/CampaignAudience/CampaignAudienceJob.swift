import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// Job kind `campaign-audience`: the users of a campaign plan's chosen segments, each with its home channel and its
/// arm, for the system that delivers the campaign (docs/campaigns.md "Measurement"). One stage, `ca-list`,
/// applies the plan's filters exactly as `campaign-plan`'s cp-audience did (the same `AudienceFilter`) and the plan's
/// keyed-hash holdout (`Experiment.inHoldout`), so the arms are the ones the plan designed and counted. Each
/// partition's members are stored as the result `members/<campaign>/v<version>/<partition>` (a
/// `CampaignAudienceMembers` message) and the totals as `members/<campaign>/v<version>` (JSON);
/// `chorus campaign audience ID --out FILE` writes them as CSV.
///
/// The segments are the users' segments now: when the `segments` job ran again since the plan, a user may have
/// moved, and the list says what the plan's rules select today (its summary counts them against the plan).
public enum CampaignAudienceJob: Job {
    public static let kind = "campaign-audience"
    public static let about = "the users of a campaign plan's segments with their channel and arm (treatment or holdout)"
    public static let parameters: [JobParameter] = [
        .init("campaign_id", .text(maxBytes: 128), "", "the campaign plan's id (`chorus campaign list`)"),
        .init("version", .integer(0...1_000_000), "0", "the plan version (0: the latest)"),
        .init("as_of", .time, "now", "accepted for every kind; campaign-audience lists the users as they are"),
    ]

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { Worker() }

    public static var fuzzSeeds: [FuzzSeed] {
        var p = Chorus_V1_Jobs_CampaignAudienceList()
        p.filters.channels = ["x"]; p.filters.assignmentKey = "fuzz"; p.segments = [0, 1]; p.holdoutShares = [0.1, 0.5]
        return [FuzzSeed(stage: "ca-list", params: ["campaign_id": "fuzz"], broadcast: try? p.serializedData())]
    }

    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {
        let id = params.string("campaign_id", "")
        guard !id.isEmpty else {
            throw ChorusError(.usage, "campaign-audience needs campaign_id", hint: "chorus campaign audience ID")
        }
    }

    /// The stored result key of one partition's members.
    public static func membersKey(campaign: String, version: UInt32, partition: UInt32) -> String {
        "members/\(campaign)/v\(version)/\(partition)"
    }

    public static func totalsKey(campaign: String, version: UInt32) -> String { "members/\(campaign)/v\(version)" }

    public static func drive(_ ctx: JobContext) async throws -> String {
        let id = ctx.params.string("campaign_id", "")
        let doc = try await CampaignPlanDocument.load(ctx, id: id, version: UInt32(ctx.params.int("version", 0)))
        guard !doc.segments.isEmpty else {
            throw ctx.failure("campaign plan '\(id)' v\(doc.version) chose no segment: it has no audience to list")
        }
        try await ctx.setStage("ca-list")
        var b = Chorus_V1_Jobs_CampaignAudienceList()
        b.filters = CampaignPlanJob.audienceFilters(doc.brief, assignmentKey: doc.assignmentKey)
        b.segments = doc.segments.map { Int32(clamping: $0.segment) }
        b.holdoutShares = doc.segments.map(\.holdoutShare)
        var entries: [(key: String, value: [UInt8])] = []
        var bySegment: [Int: (users: Int, holdout: Int)] = [:]
        var byChannel: [String: Int] = [:]
        for out in try await ctx.collect("ca-list", broadcast: Broadcast(try b.serializedData())) {
            let m = try Chorus_V1_Jobs_CampaignAudienceMembers(serializedBytes: out.payload)
            for u in m.members {
                bySegment[Int(u.segment), default: (0, 0)].users += 1
                if u.holdout { bySegment[Int(u.segment), default: (0, 0)].holdout += 1 }
                byChannel[u.channel, default: 0] += 1
            }
            entries.append((membersKey(campaign: id, version: doc.version, partition: out.partition), try m.serializedBytes()))
        }
        let users = bySegment.values.reduce(0) { $0 + $1.users }, holdout = bySegment.values.reduce(0) { $0 + $1.holdout }
        let summary: [String: Any] = [
            "campaign_id": id, "version": Int(doc.version), "users": users, "treatment": users - holdout, "holdout": holdout,
            "partitions": entries.count,
            "segments": doc.segments.map { s -> [String: Any] in
                let c = bySegment[s.segment] ?? (0, 0)
                return ["segment": s.segment, "holdout_share": s.holdoutShare, "users": c.users, "holdout": c.holdout,
                        "treatment": c.users - c.holdout]
            },
            "channels": byChannel.keys.sorted().map { ["channel": $0, "users": byChannel[$0]!] as [String: Any] },
        ]
        let json = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
        entries.append((totalsKey(campaign: id, version: doc.version), Array(json)))
        try await ctx.putResults(entries)
        return String(decoding: json, as: UTF8.self)
    }

    public static func summaryText(_ summaryJSON: String) -> String? {
        guard let o = try? JSONSerialization.jsonObject(with: Data(summaryJSON.utf8)) as? [String: Any] else { return nil }
        var lines = ["campaign \(o["campaign_id"] ?? "?") v\(o["version"] ?? "?"): \(o["users"] ?? 0) users, "
                     + "\(o["treatment"] ?? 0) treatment, \(o["holdout"] ?? 0) holdout"]
        for s in o["segments"] as? [[String: Any]] ?? [] {
            lines.append("  segment \(s["segment"] ?? "?"): \(s["users"] ?? 0) users, \(s["holdout"] ?? 0) holdout (share \(s["holdout_share"] ?? 0))")
        }
        return lines.joined(separator: "\n")
    }

    /// ca-list on one partition: its users in the chosen segments that pass the filters, with their arm.
    static func list(_ data: PartitionView, _ b: Chorus_V1_Jobs_CampaignAudienceList, cancellation: CancellationFlag) throws
        -> (Chorus_V1_Jobs_CampaignAudienceMembers, UInt64) {
        let filter = CampaignPlanJob.AudienceFilter(data, b.filters)
        let key = SipHash24(deriving: b.filters.assignmentKey)
        var shares: [Int32: Double] = [:]
        for (i, g) in b.segments.enumerated() where i < b.holdoutShares.count { shares[g] = b.holdoutShares[i] }
        var out = Chorus_V1_Jobs_CampaignAudienceMembers()
        var read: UInt64 = 0
        var users: [Chorus_V1_User] = []
        try data.scan(role: ShardKeys.role(.user)) { _, v in
            users.append(try Chorus_V1_User(borrowing: v))
            return true
        }
        for u in users {
            if cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            read += 1
            let (g, _) = try filter.segment(of: u.id)
            guard let share = shares[g] else { continue }
            let features = try filter.json(ShardKeys.Derived.profile.rawValue, u.id)
            guard filter.eligible(u, segment: g, features: features) else { continue }
            var m = Chorus_V1_Jobs_CampaignAudienceMember()
            m.user = u.id; m.segment = g; m.channel = u.channel
            m.holdout = Experiment.inHoldout(u.id, key: key, share: share)
            out.members.append(m)
        }
        return (out, read)
    }

    final class Worker: JobWorker {
        let plan = Mutex<Chorus_V1_Jobs_CampaignAudienceList?>(nil)

        func receive(_ broadcast: JobBroadcast) throws {
            guard broadcast.stage == "ca-list" else {
                throw TaskContext.invalid("job_broadcast.stage", "campaign-audience has no broadcast for '\(broadcast.stage.prefix(40))'")
            }
            let p: Chorus_V1_Jobs_CampaignAudienceList
            do { p = try Chorus_V1_Jobs_CampaignAudienceList(serializedBytes: broadcast.payload) } catch {
                throw TaskContext.invalid("job_broadcast.payload", "not a campaign audience list: \(error)")
            }
            guard p.segments.count == p.holdoutShares.count, p.holdoutShares.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 }) else {
                throw TaskContext.invalid("campaign_audience_list.holdout_shares", "one share in [0, 1] per segment")
            }
            plan.withLock { $0 = p }
        }

        func release() { plan.withLock { $0 = nil } }

        func run(_ task: TaskContext) async throws -> TaskOutput {
            guard task.stage == "ca-list" else {
                throw TaskContext.invalid("run_task.stage", "campaign-audience has no stage '\(task.stage.prefix(40))'")
            }
            guard let p = plan.withLock({ $0 }) else { throw task.unavailable("the ca-list plan") }
            let data = task.data, flag = task.cancellation
            let (out, read) = try await task.compute { try CampaignAudienceJob.list(data, p, cancellation: flag) }
            return TaskOutput(partition: task.partition, payload: try out.serializedData(), recordsRead: read)
        }
    }
}
