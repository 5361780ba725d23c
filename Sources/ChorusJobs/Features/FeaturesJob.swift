import ChorusAnalytics
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Synchronization

/// Job kind `features`: every user's global profile (engagement, activity by type and channel, active hours,
/// interests, recency and frequency) and every content item's features.
///
/// Stages: `catalog` collects the small dimension tables (user → channel and country, content → topics and
/// hashtags); the coordinator broadcasts them; `compute` builds the profiles and content features with local
/// reads only, writes them into the partition, and returns the partition's part of the global summary.
public enum FeaturesJob: Job {
    public static let kind = "features"
    public static let about = "user profiles and content features (the base of every other job)"
    public static let parameters: [JobParameter] = [
        .init("as_of", .time, "now", "the reference time for recency"),
    ]
    public static func tasksPerPartition(_ params: JobParams) -> Int { 2 }

    /// Stored roles (ChorusRuntime.ShardKeys.Derived, where `profile get` reads them).
    static let profileRole = ShardKeys.Derived.profile.rawValue
    static let contentRole = ShardKeys.Derived.contentStats.rawValue

    public static func drive(_ ctx: JobContext) async throws -> String {
        try await ctx.setStage("catalog")
        var catalog = Chorus_V1_Jobs_FeaturesCatalog()
        for out in try await ctx.collect("catalog") {
            let part = try Chorus_V1_Jobs_FeaturesCatalog(serializedBytes: out.payload)
            catalog.users.append(contentsOf: part.users)
            catalog.contents.append(contentsOf: part.contents)
        }
        try await ctx.setStage("compute")
        let broadcast = Broadcast(try catalog.serializedData())
        var summary = GlobalSummary()
        for out in try await ctx.collect("compute", broadcast: broadcast) {
            let partial = GlobalSummary(try Chorus_V1_Jobs_FeaturesSummary(serializedBytes: out.payload))
            guard partial.isWellFormed else {
                throw ChorusError(.internal, "partition \(out.partition): malformed summary from its worker")
            }
            summary.merge(partial)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(summary.report), as: UTF8.self)
    }

    public static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { Worker() }

    public static var fuzzSeeds: [FuzzSeed] {
        var c = Chorus_V1_Jobs_FeaturesCatalog()
        var u = Chorus_V1_Jobs_CatalogUser(); u.id = "u1"; u.channel = "web"
        var x = Chorus_V1_Jobs_CatalogContent(); x.id = "c1"; x.topics = ["tech"]; x.hashtags = ["#ai"]
        c.users = [u]; c.contents = [x]
        return [FuzzSeed(stage: "catalog"),
                FuzzSeed(stage: "compute", params: ["as_of": "1759104000"], broadcast: try? c.serializedData())]
    }

    final class Worker: JobWorker {
        let catalog = Mutex<FeatureIndex?>(nil)

        func receive(_ broadcast: JobBroadcast) throws {
            let c: Chorus_V1_Jobs_FeaturesCatalog
            do {
                c = try Chorus_V1_Jobs_FeaturesCatalog(serializedBytes: broadcast.payload)
            } catch {
                throw TaskContext.invalid("job_broadcast.payload", "not a features catalog: \(error)")
            }
            let decoded = FeatureIndex(c)
            catalog.withLock { $0 = decoded }
        }

        func release() { catalog.withLock { $0 = nil } }

        func run(_ task: TaskContext) async throws -> TaskOutput {
            let data = task.data
            switch task.stage {
            case "catalog":
                let (c, read) = try await task.compute { try FeaturesJob.catalog(data) }
                return TaskOutput(partition: task.partition, payload: try c.serializedData(), recordsRead: read)
            case "compute":
                guard let catalog = catalog.withLock({ $0 }) else { throw task.unavailable("the catalog broadcast") }
                let asOf = task.params.asOf
                let (summary, writes, read) = try await task.compute {
                    try FeaturesJob.compute(data, catalog: catalog, asOf: asOf, cancellation: task.cancellation)
                }
                // Results are written on the primary and replicated like ingested data.
                try await task.write(writes)
                return TaskOutput(partition: task.partition, payload: try Chorus_V1_Jobs_FeaturesSummary(summary).serializedData(),
                                  recordsRead: read)
            default:
                throw TaskContext.invalid("run_task.stage", "features has no stage '\(task.stage.prefix(40))'")
            }
        }
    }

    /// The partition's users and content, as catalog rows.
    static func catalog(_ data: PartitionView) throws -> (Chorus_V1_Jobs_FeaturesCatalog, UInt64) {
        var out = Chorus_V1_Jobs_FeaturesCatalog()
        var read: UInt64 = 0
        try data.scan(role: ShardKeys.role(.user)) { _, value in
            let u = try Chorus_V1_User(borrowing: value)
            var cu = Chorus_V1_Jobs_CatalogUser()
            cu.id = u.id; cu.channel = u.channel; cu.country = u.country
            out.users.append(cu)
            read += 1
            return true
        }
        try data.scan(role: ShardKeys.role(.content)) { _, value in
            let c = try Chorus_V1_Content(borrowing: value)
            var cc = Chorus_V1_Jobs_CatalogContent()
            cc.id = c.id; cc.topics = c.topics; cc.hashtags = c.hashtags
            out.contents.append(cc)
            read += 1
            return true
        }
        return (out, read)
    }

    /// Builds the partition's profiles and content features (replacing the previous run's) and its summary.
    ///
    /// The interactions are read as raw fields (`InteractionFields`) and folded into reusable builders over the
    /// interned catalog, and each profile is written as JSON by hand: the cost per interaction does not depend on
    /// the size of the catalog or of the partition (docs/benchmarks.md, "The `features` job").
    static func compute(_ data: PartitionView, catalog: FeatureIndex, asOf: Int64,
                        cancellation: CancellationFlag) throws -> (GlobalSummary, DerivedWrites, UInt64) {
        var summary = GlobalSummary()
        var read: UInt64 = 0

        // Small per-partition tables: user records and follow counts.
        var users: [String: UserRecord] = [:]
        try data.scan(role: ShardKeys.role(.user)) { _, v in
            let u = Wire.decode(try Chorus_V1_User(borrowing: v))
            users[u.id] = u
            read += 1
            return true
        }
        // Follows are counted per run of equal user ids (keys are sorted), so one String and one hash per user.
        let following = try data.groupCounts(role: ShardKeys.role(.followOut))
        let followers = try data.groupCounts(role: ShardKeys.role(.followIn))
        read += UInt64(following.values.reduce(0, +) + followers.values.reduce(0, +))

        var writes = DerivedWrites(partition: data.partition)
        writes.clear(role: profileRole)
        writes.clear(role: contentRole)
        var json = JSONBytes()
        var done = Set<String>()
        var userBuilder = UserFeatureBuilder(index: catalog)
        func emitUser(_ id: String) throws {
            if done.count % 4096 == 0, cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            let f = userBuilder.finish(userId: id, user: users[id], followers: followers[id] ?? 0,
                                       following: following[id] ?? 0, asOf: asOf)
            summary.add(f)
            json.removeAll()
            f.writeJSON(&json)
            writes.put(role: profileRole, id: id, json.bytes)
            done.insert(id)
        }
        read += UInt64(try data.groups(role: ShardKeys.role(.interactionByUser), emit: emitUser) { value in
            let r = try InteractionFields(parsing: value)
            guard let kind = r.kind else { return }
            userBuilder.add(kind: kind, channel: r.channel, ts: r.ts, content: r.contentID)
        })
        // Users with no interactions still get a profile (ids in sorted order for determinism).
        for id in Set(users.keys).union(following.keys).union(followers.keys).subtracting(done).sorted() {
            try emitUser(id)
        }

        // Content.
        var contents: [String: ContentRecord] = [:]
        try data.scan(role: ShardKeys.role(.content)) { _, v in
            let c = Wire.decode(try Chorus_V1_Content(borrowing: v))
            contents[c.id] = c
            read += 1
            return true
        }
        var doneContent = Set<String>()
        var contentBuilder = ContentFeatureBuilder(index: catalog)
        func emitContent(_ id: String) throws {
            // Interest totals are taken here, on the content side, where topics and hashtags are local.
            if let c = contents[id] {
                summary.addInterest(weight: contentBuilder.interestWeight, topics: c.topics, hashtags: c.hashtags)
            }
            let f = contentBuilder.finish(contentId: id, content: contents[id])
            summary.contents += 1
            json.removeAll()
            f.writeJSON(&json)
            writes.put(role: contentRole, id: id, json.bytes)
            doneContent.insert(id)
        }
        read += UInt64(try data.groups(role: ShardKeys.role(.interactionByContent), emit: emitContent) { value in
            let r = try InteractionFields(parsing: value)
            guard let kind = r.kind else { return }
            contentBuilder.add(kind: kind, user: r.userID)
        })
        for id in Set(contents.keys).subtracting(doneContent).sorted() { try emitContent(id) }
        return (summary, writes, read)
    }
}

extension FeatureIndex {
    init(_ c: Chorus_V1_Jobs_FeaturesCatalog) {
        self.init(users: c.users.count, contents: c.contents.count)
        for u in c.users { addUser(id: u.id, channel: u.channel, country: u.country) }
        for x in c.contents { addContent(id: x.id, topics: x.topics, hashtags: x.hashtags) }
    }
}

extension FeatureCatalog {
    init(_ c: Chorus_V1_Jobs_FeaturesCatalog) {
        self.init()
        users.reserveCapacity(c.users.count)
        for u in c.users { users[u.id] = UserInfo(channel: u.channel, country: u.country) }
        contents.reserveCapacity(c.contents.count)
        for x in c.contents { contents[x.id] = ContentInfo(topics: x.topics, hashtags: x.hashtags) }
    }
}

extension GlobalSummary {
    init(_ m: Chorus_V1_Jobs_FeaturesSummary) {
        self.init()
        users = Int(clamping: m.users)
        contents = Int(clamping: m.contents)
        interactions = Int(clamping: m.interactions)
        follows = Int(clamping: m.follows)
        usersByChannel = m.usersByChannel.mapValues { Int(clamping: $0) }
        interactionsByChannel = m.interactionsByChannel.mapValues { Int(clamping: $0) }
        interactionsByType = m.interactionsByType.mapValues { Int(clamping: $0) }
        topicWeights = m.topicWeights
        hashtagWeights = m.hashtagWeights
        // A wrong length is caught by `isWellFormed`.
        activeHours = m.activeHours.map { Int(clamping: $0) }
    }
}

extension Chorus_V1_Jobs_FeaturesSummary {
    init(_ s: GlobalSummary) {
        self.init()
        users = Int64(s.users)
        contents = Int64(s.contents)
        interactions = Int64(s.interactions)
        follows = Int64(s.follows)
        usersByChannel = s.usersByChannel.mapValues { Int64($0) }
        interactionsByChannel = s.interactionsByChannel.mapValues { Int64($0) }
        interactionsByType = s.interactionsByType.mapValues { Int64($0) }
        topicWeights = s.topicWeights
        hashtagWeights = s.hashtagWeights
        activeHours = s.activeHours.map { Int64($0) }
    }
}
