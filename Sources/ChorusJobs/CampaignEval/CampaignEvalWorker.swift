import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

extension CampaignEvalJob {
    /// ce-extent: the newest time of the campaign's outcomes and of the users' interactions in this partition (0 when
    /// the campaign has no outcome here): the end of the data, for the retention windows. Interactions count because
    /// the users' activity after the campaign (their return) is in them.
    static func extent(_ data: PartitionView, campaign: String) throws -> (outcomes: Int64, activity: Int64, read: UInt64) {
        var newest: Int64 = 0, activity: Int64 = 0
        var read = try data.outcomeGroups(campaign: campaign) { _, records in
            for r in records { newest = max(newest, r.ts) }
        }
        read += try data.interactionGroups(role: ShardKeys.role(.interactionByUser)) { _, records in
            for r in records { activity = max(activity, r.ts) }
        }
        return (newest, max(newest, activity), UInt64(read))
    }

    /// One user's figures in the campaign.
    struct UserFigures {
        var segment: Int32
        var channel: String
        var arm: String
        var assignedAt: Int64
        var impressions = 0.0, clicks = 0.0, conversions = 0.0, value = 0.0
        var converted = false
        var activity: [Int64] = []
        var preConverted = false
        var preValue = 0.0
    }

    /// ce-measure on one partition: per (segment, channel, arm) the users, their delivery and outcomes in the
    /// window, the per-user moments (with the pre-period covariates and retention), the daily delivery, and the
    /// campaign's spend records.
    static func measure(_ data: PartitionView, _ p: Chorus_V1_Jobs_CampaignEvalPlan, dataEnd: Int64,
                        cancellation: CancellationFlag) throws -> (Chorus_V1_Jobs_CampaignEvalPartial, UInt64) {
        var out = Chorus_V1_Jobs_CampaignEvalPartial()
        let key = SipHash24(deriving: p.assignmentKey)
        var shares: [Int32: Double] = [:]
        for s in p.segments { shares[s.segment] = s.holdoutShare }
        let seen = min(p.asOf, p.end)
        var users: [String: UserFigures] = [:]
        var mismatched = Set<String>()
        var versions: [UInt32: UInt64] = [:]
        var delivery: [String: Chorus_V1_Jobs_CampaignDeliveryDay] = [:]
        var read = UInt64(try data.outcomeGroups(campaign: p.campaign) { user, records in
            if cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            out.outcomeRecords += UInt64(records.count)
            let sorted = records.sorted { ($0.ts, $0.event.rawValue) < ($1.ts, $1.event.rawValue) }
            let visible = sorted.filter { $0.ts < p.asOf }
            out.lateEvents += UInt64(sorted.count - visible.count)
            guard let first = visible.first(where: { $0.event == .assigned }), let segment = first.segment else {
                if !visible.isEmpty { out.unassignedUsers += 1 }
                return
            }
            if visible.contains(where: { $0.event == .assigned && ($0.arm != first.arm || $0.segment != first.segment) }) {
                out.reassignedUsers += 1
            }
            versions[first.version, default: 0] += 1
            let g = Int32(clamping: segment)
            guard let share = shares[g] else {
                out.unknownSegmentUsers += 1
                return
            }
            if Experiment.inHoldout(user, key: key, share: share) != (first.arm == "holdout") { mismatched.insert(user) }
            let channel = first.channel.isEmpty
                ? (visible.first(where: { $0.event == .impression })?.channel ?? "") : first.channel
            var f = UserFigures(segment: g, channel: channel, arm: first.arm, assignedAt: first.ts)
            for r in visible where r.event != .assigned {
                // Activity is what the user did: a click or a conversion, not an impression the campaign served.
                if r.event != .impression { f.activity.append(r.ts) }
                guard r.ts >= p.start && r.ts < seen else {
                    out.outsideWindow += 1
                    continue
                }
                let n = Double(r.count)
                switch r.event {
                case .impression, .click:
                    if r.event == .impression { f.impressions += n } else { f.clicks += n }
                    let day = CivilDate.iso(days: Int(r.ts.floorDiv(86_400)))
                    let k = r.channel + "\u{0}" + day
                    var d = delivery[k] ?? {
                        var d = Chorus_V1_Jobs_CampaignDeliveryDay()
                        d.channel = r.channel; d.date = day
                        return d
                    }()
                    if r.event == .impression { d.impressions += n } else { d.clicks += n }
                    delivery[k] = d
                case .conversion:
                    f.conversions += n
                    f.value += r.value
                    f.converted = true
                case .assigned:
                    break
                }
            }
            users[user] = f
        })
        // The users' own interactions: conversions in the pre-period (the CUPED covariates), activity after.
        if !users.isEmpty {
            read += UInt64(try data.interactionGroups(role: ShardKeys.role(.interactionByUser)) { user, records in
                guard var f = users[user] else { return }
                for r in records where r.ts < p.asOf {
                    if r.kind == .conversion && r.ts >= p.preStart && r.ts < p.start {
                        f.preConverted = true
                        f.preValue += r.value
                    }
                    f.activity.append(r.ts)
                }
                users[user] = f
            })
        }
        // The cells.
        var cells: [String: Chorus_V1_Jobs_CampaignEvalCell] = [:]
        for (user, f) in users {
            let k = "\(f.segment)\u{0}\(f.channel)\u{0}\(f.arm)"
            var c = cells[k] ?? {
                var c = Chorus_V1_Jobs_CampaignEvalCell()
                c.segment = f.segment; c.channel = f.channel; c.arm = f.arm
                return c
            }()
            c.users += 1
            if f.impressions > 0 { c.exposed += 1 }
            c.impressions += f.impressions; c.clicks += f.clicks; c.conversions += f.conversions; c.revenue += f.value
            c.converted.add(y: f.converted ? 1 : 0, x: f.preConverted ? 1 : 0)
            c.value.add(y: f.value, x: f.preValue)
            let activity = f.activity.sorted()
            if let r = CampaignMeasurement.retained(firstExposure: f.assignedAt, activity: activity, days: 7, dataEnd: dataEnd) {
                c.retained7.add(y: r ? 1 : 0, x: 0)
            }
            if let r = CampaignMeasurement.retained(firstExposure: f.assignedAt, activity: activity, days: 28, dataEnd: dataEnd) {
                c.retained28.add(y: r ? 1 : 0, x: 0)
            }
            if mismatched.contains(user) { c.armMismatch += 1 }
            cells[k] = c
        }
        out.cells = cells.keys.sorted().map { cells[$0]! }
        out.delivery = delivery.keys.sorted().map { delivery[$0]! }
        out.versions = versions.keys.sorted()
        out.versionUsers = out.versions.map { versions[$0]! }
        for r in try data.spendRecords() where r.campaign == p.campaign {
            var s = Chorus_V1_Jobs_CampaignSpendDay()
            s.channel = r.channel; s.date = r.date; s.periodDays = UInt32(r.period.days); s.arm = r.arm
            s.segment = r.segment; s.version = r.version; s.spend = r.spend; s.impressions = r.impressions
            s.clicks = r.clicks; s.conversions = r.conversions; s.revenue = r.revenue
            out.spend.append(s)
            read += 1
        }
        return (out, read)
    }

    final class Worker: JobWorker {
        let plan = Mutex<Chorus_V1_Jobs_CampaignEvalPlan?>(nil)

        func receive(_ broadcast: JobBroadcast) throws {
            guard broadcast.stage == "ce-measure" || broadcast.stage == "ce-extent" else {
                throw TaskContext.invalid("job_broadcast.stage", "campaign-eval has no broadcast for '\(broadcast.stage.prefix(40))'")
            }
            let p: Chorus_V1_Jobs_CampaignEvalPlan
            do { p = try Chorus_V1_Jobs_CampaignEvalPlan(serializedBytes: broadcast.payload) } catch {
                throw TaskContext.invalid("job_broadcast.payload", "not a campaign evaluation plan: \(error)")
            }
            guard !p.campaign.isEmpty, p.start < p.end, p.preStart <= p.start,
                  p.segments.allSatisfy({ $0.holdoutShare.isFinite && $0.holdoutShare >= 0 && $0.holdoutShare <= 1 }) else {
                throw TaskContext.invalid("campaign_eval_plan", "a campaign, a window with start < end, pre_start ≤ start and shares in [0, 1]")
            }
            plan.withLock { $0 = p }
        }

        func release() { plan.withLock { $0 = nil } }

        func run(_ task: TaskContext) async throws -> TaskOutput {
            guard let p = plan.withLock({ $0 }) else { throw task.unavailable("the campaign evaluation plan") }
            let data = task.data, flag = task.cancellation
            switch task.stage {
            case "ce-extent":
                let (newest, activity, read) = try await task.compute { try CampaignEvalJob.extent(data, campaign: p.campaign) }
                var m = Chorus_V1_Jobs_CampaignEvalPartial()
                m.newestEvent = newest
                m.newestActivity = activity
                return TaskOutput(partition: task.partition, payload: try m.serializedData(), recordsRead: read)
            case "ce-measure":
                let (out, read) = try await task.compute { try CampaignEvalJob.measure(data, p, dataEnd: p.dataEnd, cancellation: flag) }
                return TaskOutput(partition: task.partition, payload: try out.serializedData(), recordsRead: read)
            default:
                throw TaskContext.invalid("run_task.stage", "campaign-eval has no stage '\(task.stage.prefix(40))'")
            }
        }
    }
}

extension Chorus_V1_Jobs_CampaignMoments {
    mutating func add(y: Double, x: Double) {
        n += 1; sumY += y; sumY2 += y * y; sumX += x; sumX2 += x * x; sumXy += x * y
    }

    static func += (a: inout Self, b: Self) {
        a.n += b.n; a.sumY += b.sumY; a.sumY2 += b.sumY2; a.sumX += b.sumX; a.sumX2 += b.sumX2; a.sumXy += b.sumXy
    }

    var moments: CampaignMeasurement.Moments {
        CampaignMeasurement.Moments(n: n, sumY: sumY, sumY2: sumY2, sumX: sumX, sumX2: sumX2, sumXY: sumXy)
    }
}

extension Int64 {
    /// Floor division (toward −∞).
    func floorDiv(_ d: Int64) -> Int64 { self >= 0 ? self / d : -((-self + d - 1) / d) }
}
