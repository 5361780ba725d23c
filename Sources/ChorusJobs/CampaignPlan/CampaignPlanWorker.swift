import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

extension CampaignPlanJob {
    /// cp-audience: the partition's users by segment after the brief's filters (sizes, keyed-hash buckets,
    /// propensity, engagement, home channels, summed ALS factors), and its content in the brief's pool.
    /// The brief's audience filters on one partition: a user's segment (−1: none) and whether the user is eligible.
    /// cp-audience and campaign-audience's ca-list use the same rules.
    struct AudienceFilter {
        let data: PartitionView
        let channels: Set<String>, countries: Set<String>, languages: Set<String>, topics: Set<String>
        var exSegments = Set<Int>(), exCountries = Set<String>(), exLanguages = Set<String>(), exUsers = Set<String>()

        init(_ data: PartitionView, _ p: Chorus_V1_Jobs_CampaignAudiencePlan) {
            self.data = data
            channels = Set(p.channels); countries = Set(p.countries.map { $0.uppercased() })
            languages = Set(p.languages.map { $0.lowercased() }); topics = Set(p.topics.map { $0.lowercased() })
            for x in p.exclude {
                guard let r = CampaignBrief.audienceRule(x) else { continue }
                switch r.kind {
                case "segment": if let i = Int(r.value) { exSegments.insert(i) }
                case "country": exCountries.insert(r.value.uppercased())
                case "language": exLanguages.insert(r.value.lowercased())
                default: exUsers.insert(r.value)
                }
            }
        }

        /// A profile section of the user's partition as a JSON object.
        func json(_ role: UInt8, _ id: String) throws -> [String: Any]? {
            guard let v = try data.get(role: role, id: id) else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(v))) as? [String: Any]
        }

        /// The user's segment from the segments job (−1: none) and its raw section (nil when absent).
        func segment(of id: String) throws -> (Int32, [String: Any]?) {
            let segment = try json(segmentsRole, id)
            let g = Int32((segment?["state"] as? String) == "assigned" ? ((segment?["segment"] as? NSNumber)?.intValue ?? -1) : -1)
            return (g, segment)
        }

        func eligible(_ u: Chorus_V1_User, segment g: Int32, features: [String: Any]?) -> Bool {
            let userTopics = Set(((features?["top_topics"] as? [[String: Any]]) ?? []).compactMap { ($0["name"] as? String)?.lowercased() })
            return channels.contains(u.channel)
                && (countries.isEmpty || countries.contains(u.country.uppercased()))
                && (languages.isEmpty || languages.contains(u.language.lowercased()))
                && (topics.isEmpty || !topics.isDisjoint(with: userTopics))
                && !exSegments.contains(Int(g)) && !exCountries.contains(u.country.uppercased())
                && !exLanguages.contains(u.language.lowercased()) && !exUsers.contains(u.id)
        }
    }

    /// cp-audience: the partition's users by segment after the brief's filters (sizes, keyed-hash buckets,
    /// propensity, engagement, home channels, summed ALS factors), and its content in the brief's pool.
    static func audience(_ data: PartitionView, plan p: Chorus_V1_Jobs_CampaignAudiencePlan,
                         cancellation: CancellationFlag) throws -> (Chorus_V1_Jobs_CampaignAudiencePartial, UInt64) {
        let key = SipHash24(deriving: p.assignmentKey)
        let filter = AudienceFilter(data, p)
        let channels = filter.channels
        func json(_ role: UInt8, _ id: String) throws -> [String: Any]? { try filter.json(role, id) }
        var out = Chorus_V1_Jobs_CampaignAudiencePartial()
        var segs: [Int32: Chorus_V1_Jobs_CampaignSegmentPartial] = [:]
        var channelIndex: [Int32: [String: Int]] = [:]
        var read: UInt64 = 0
        var users: [Chorus_V1_User] = []
        try data.scan(role: ShardKeys.role(.user)) { _, v in
            users.append(try Chorus_V1_User(borrowing: v))
            return true
        }
        read += UInt64(users.count)
        for u in users {
            if cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            out.usersSeen += 1
            let (g, segment) = try filter.segment(of: u.id)
            if segment != nil { out.segmentsPresent = true }
            var s = segs[g] ?? {
                var n = Chorus_V1_Jobs_CampaignSegmentPartial()
                n.segment = g
                n.hashBuckets = [UInt64](repeating: 0, count: 1000)
                return n
            }()
            let features = try json(ShardKeys.Derived.profile.rawValue, u.id)
            let eligible = filter.eligible(u, segment: g, features: features)
            guard eligible else {
                s.excluded += 1
                segs[g] = s
                continue
            }
            s.users += 1
            s.hashBuckets[min(999, Int(key.unit(u.id) * 1000))] += 1
            if let prop = try json(propensityRole, u.id) {
                out.propensityPresent = true
                if (prop["state"] as? String) == "scored", let pr = (prop["probability"] as? NSNumber)?.doubleValue, pr.isFinite {
                    s.propensitySum += pr
                    s.propensityScored += 1
                }
            }
            if let f = features {
                s.featured += 1
                let engagements = (f["engagements"] as? NSNumber)?.doubleValue ?? 0
                let conversions = ((f["counts_by_type"] as? [String: Any])?["conversion"] as? NSNumber)?.doubleValue ?? 0
                s.engagementSum += engagements
                s.conversionsSum += conversions
                if engagements > 0 { s.engaged += 1 }
                if conversions > 0 { s.converted += 1 }
            }
            var index = channelIndex[g] ?? [:]
            if let i = index[u.channel] { s.channelUsers[i] += 1 } else {
                index[u.channel] = s.channels.count
                s.channels.append(u.channel)
                s.channelUsers.append(1)
            }
            channelIndex[g] = index
            if p.factors, let v = try data.get(role: ShardKeys.Derived.userFactors, id: u.id), v.count >= 2 {
                let rank = Int(v[0]) | Int(v[1]) << 8
                let f = FloatPacking.unpack(Data(v[2...]))
                if rank > 0, f.count >= rank {
                    if s.factorSum.isEmpty { s.factorSum = [Double](repeating: 0, count: rank) }
                    if s.factorSum.count == rank {
                        for q in 0..<rank { s.factorSum[q] += Double(f[q]) }
                        s.factored += 1
                    }
                }
            }
            segs[g] = s
        }
        out.segments = segs.keys.sorted().map { segs[$0]! }
        // Content in the pool, on the allowed channels.
        let ids = Set(p.contentIds)
        let tags = Set(p.contentTags.map { $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "#")) })
        try data.scan(role: ShardKeys.role(.content)) { _, v in
            let c = try Chorus_V1_Content(borrowing: v)
            read += 1
            guard channels.contains(c.channel) else { return true }
            if !ids.isEmpty && !ids.contains(c.id) { return true }
            if !tags.isEmpty {
                let mine = Set((c.topics + c.hashtags).map { $0.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "#")) })
                if tags.isDisjoint(with: mine) { return true }
            }
            var item = Chorus_V1_Jobs_CampaignContentItem()
            item.id = c.id; item.channel = c.channel; item.mediaType = c.mediaType
            item.topics = c.topics; item.hashtags = c.hashtags; item.createdAt = c.createdAt
            out.content.append(item)
            return true
        }
        for r in try data.spendRecords() where r.campaign.isEmpty {
            var row = Chorus_V1_Jobs_CampaignSpendRow()
            row.channel = r.channel; row.date = r.date; row.periodDays = UInt32(r.period.days); row.spend = r.spend
            row.impressions = r.impressions; row.clicks = r.clicks; row.conversions = r.conversions; row.revenue = r.revenue
            out.spend.append(row)
            read += 1
        }
        return (out, read)
    }

    static func audiencePlan(_ payload: Data) throws -> Chorus_V1_Jobs_CampaignAudiencePlan {
        let p: Chorus_V1_Jobs_CampaignAudiencePlan
        do { p = try Chorus_V1_Jobs_CampaignAudiencePlan(serializedBytes: payload) } catch {
            throw TaskContext.invalid("job_broadcast.payload", "not a campaign audience plan: \(error)")
        }
        guard !p.channels.isEmpty, p.channels.count <= CampaignBrief.maxChannels else {
            throw TaskContext.invalid("campaign_audience_plan.channels", "\(p.channels.count) channels (1...\(CampaignBrief.maxChannels))")
        }
        return p
    }

    final class Worker: JobWorker {
        let plan = Mutex<Chorus_V1_Jobs_CampaignAudiencePlan?>(nil)

        func receive(_ broadcast: JobBroadcast) throws {
            guard broadcast.stage == "cp-audience" else {
                throw TaskContext.invalid("job_broadcast.stage", "campaign-plan has no broadcast for '\(broadcast.stage.prefix(40))'")
            }
            let p = try CampaignPlanJob.audiencePlan(broadcast.payload)
            plan.withLock { $0 = p }
        }

        func release() { plan.withLock { $0 = nil } }

        func run(_ task: TaskContext) async throws -> TaskOutput {
            let data = task.data, flag = task.cancellation
            switch task.stage {
            case "cp-audience":
                guard let p = plan.withLock({ $0 }) else { throw task.unavailable("the cp-audience plan") }
                let (out, read) = try await task.compute { try CampaignPlanJob.audience(data, plan: p, cancellation: flag) }
                return TaskOutput(partition: task.partition, payload: try out.serializedData(), recordsRead: read)
            default:
                throw TaskContext.invalid("run_task.stage", "campaign-plan has no stage '\(task.stage.prefix(40))'")
            }
        }
    }
}
