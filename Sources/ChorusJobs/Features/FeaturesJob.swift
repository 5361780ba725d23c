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
        .init("mode", .choice(["full", "incremental"]), "full",
              "incremental: recompute only the users and content changed since the last run (docs/operations.md)"),
    ]
    /// Above this many changed user or content records in one partition, an incremental run recomputes everything
    /// (a bulk load touches most profiles anyway, and the lists of touched ids would be large).
    static let maxRecordChanges = 20_000
    /// Above this many touched ids in all, the same.
    static let maxTouched = 500_000
    public static func tasksPerPartition(_ params: JobParams) -> Int { 3 }

    /// Stored roles (ChorusRuntime.ShardKeys.Derived, where `profile get` reads them).
    static let profileRole = ShardKeys.Derived.profile.rawValue
    static let contentRole = ShardKeys.Derived.contentStats.rawValue

    /// One features job at a time per coordinator: two runs that overlap could write an older computation of a
    /// profile after a newer one, and an incremental run deletes the change markers it read.
    static let oneAtATime = AsyncExclusive()

    public static func drive(_ ctx: JobContext) async throws -> String {
        try await ctx.setStage("waiting for the previous features job")
        await oneAtATime.acquire()
        do {
            let out = try await driveAlone(ctx)
            await oneAtATime.release()
            return out
        } catch {
            await oneAtATime.release()
            throw error
        }
    }

    static func driveAlone(_ ctx: JobContext) async throws -> String {
        let incremental = ctx.params.string("mode", "full") == "incremental"
        try await ctx.setStage("catalog")
        var catalog = Chorus_V1_Jobs_FeaturesCatalog()
        var touchedUsers = Set<String>(), touchedContents = Set<String>()
        var recordMarkers: [Data] = []
        for out in try await ctx.collect("catalog") {
            let part = try Chorus_V1_Jobs_FeaturesCatalog(serializedBytes: out.payload)
            catalog.users.append(contentsOf: part.users)
            catalog.contents.append(contentsOf: part.contents)
            catalog.full = catalog.full || part.full
            catalog.changes += part.changes
            touchedUsers.formUnion(part.touchedUsers)
            touchedContents.formUnion(part.touchedContents)
            recordMarkers += part.recordMarkers
        }
        catalog.partitionCount = ctx.partitionCount
        let markersToForget = recordMarkers
        /// After every compute task succeeded: the record markers whose consequences were recomputed go.
        @Sendable func forget() async throws {
            var f = Chorus_V1_Jobs_FeaturesCatalog()
            f.forget = true
            f.recordMarkers = markersToForget
            try await ctx.setStage("forget")
            _ = try await ctx.collect("forget", broadcast: Broadcast(try f.serializedData()))
        }
        if incremental, !catalog.full, touchedUsers.count + touchedContents.count > maxTouched {
            catalog.full = true
        }
        if incremental, catalog.full {
            ctx.logger.info("features \(ctx.jobID): too many changed records for an incremental run, recomputing everything")
        }
        if incremental, !catalog.full {
            catalog.touchedUsers = touchedUsers.sorted()
            catalog.touchedContents = touchedContents.sorted()
            try await ctx.setStage("compute (incremental)")
            var recomputed = GlobalSummary()
            for out in try await ctx.collect("compute", broadcast: Broadcast(try catalog.serializedData())) {
                let partial = try Chorus_V1_Jobs_FeaturesSummary(serializedBytes: out.payload)
                recomputed.users += Int(clamping: partial.users)
                recomputed.contents += Int(clamping: partial.contents)
                recomputed.interactions += Int(clamping: partial.interactions)
            }
            try await forget()
            let report = IncrementalReport(changes: Int(clamping: catalog.changes), usersRecomputed: recomputed.users,
                                           contentsRecomputed: recomputed.contents,
                                           interactionsRead: recomputed.interactions, asOf: ctx.params.asOf)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return String(decoding: try encoder.encode(report), as: UTF8.self)
        }
        catalog.full = true
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
        try await forget()
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

    /// The result of an incremental run (a full run returns the global summary).
    struct IncrementalReport: Encodable {
        var mode = "incremental"
        var changes: Int
        var usersRecomputed: Int
        var contentsRecomputed: Int
        var interactionsRead: Int
        var asOf: Int64
        enum CodingKeys: String, CodingKey {
            case mode, changes, usersRecomputed = "users_recomputed", contentsRecomputed = "contents_recomputed"
            case interactionsRead = "interactions_read", asOf = "as_of"
        }
    }

    final class Worker: JobWorker {
        let catalog = Mutex<FeatureIndex?>(nil)
        /// The compute broadcast's touched ids, partition count and mode (nil until the broadcast arrives).
        let touched = Mutex<(users: [String], contents: [String], full: Bool, partitions: UInt32)?>(nil)
        /// The forget broadcast: the record change markers to delete (every partition's).
        let forgetKeys = Mutex<[Data]?>(nil)

        func receive(_ broadcast: JobBroadcast) throws {
            let c: Chorus_V1_Jobs_FeaturesCatalog
            do {
                c = try Chorus_V1_Jobs_FeaturesCatalog(serializedBytes: broadcast.payload)
            } catch {
                throw TaskContext.invalid("job_broadcast.payload", "not a features catalog: \(error)")
            }
            if broadcast.stage == "forget" {
                forgetKeys.withLock { $0 = c.recordMarkers }
                return
            }
            let decoded = FeatureIndex(c)
            catalog.withLock { $0 = decoded }
            touched.withLock { $0 = (c.touchedUsers, c.touchedContents, c.full, c.partitionCount) }
        }

        func release() {
            catalog.withLock { $0 = nil }
            touched.withLock { $0 = nil }
            forgetKeys.withLock { $0 = nil }
        }

        func run(_ task: TaskContext) async throws -> TaskOutput {
            let data = task.data
            switch task.stage {
            case "catalog":
                let incremental = task.params.string("mode", "full") == "incremental"
                let (c, read) = try await task.compute { try FeaturesJob.catalogWithChanges(data, incremental: incremental) }
                return TaskOutput(partition: task.partition, payload: try c.serializedData(), recordsRead: read)
            case "compute":
                guard let catalog = catalog.withLock({ $0 }), let touched = touched.withLock({ $0 }) else {
                    throw task.unavailable("the catalog broadcast")
                }
                let asOf = task.params.asOf
                // The mode comes from the job's parameter; the broadcast can only turn an incremental run into a full one.
                let incremental = task.params.string("mode", "full") == "incremental" && !touched.full
                let placement = Placement(partitionCount: max(1, touched.partitions))
                let partition = task.partition
                let (summary, writes, read) = try await task.compute {
                    if !incremental {
                        return try FeaturesJob.compute(data, catalog: catalog, asOf: asOf, cancellation: task.cancellation)
                    }
                    // Only the touched ids placed on this partition (its users' and content's rows live here).
                    let users = touched.users.filter { placement.partition(of: $0) == partition }
                    let contents = touched.contents.filter { placement.partition(of: $0) == partition }
                    return try FeaturesJob.computeIncremental(data, catalog: catalog, touchedUsers: users,
                                                              touchedContents: contents, asOf: asOf,
                                                              cancellation: task.cancellation)
                }
                // Results are written on the primary and replicated like ingested data.
                try await task.write(writes)
                return TaskOutput(partition: task.partition, payload: try Chorus_V1_Jobs_FeaturesSummary(summary).serializedData(),
                                  recordsRead: read)
            case "forget":
                guard let keys = forgetKeys.withLock({ $0 }) else { throw task.unavailable("the forget broadcast") }
                var writes = DerivedWrites(partition: task.partition)
                for k in keys where ShardKeys.partition(ofKey: k) == task.partition && k.count > 5 && k[k.startIndex + 4] == ChangeMarkers.role {
                    writes.delete(key: [UInt8](k))
                }
                try await task.write(writes)
                return TaskOutput(partition: task.partition, payload: Data(), recordsRead: 0)
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

    /// The catalog, plus what the partition's change markers say: how many changes, the keys of the record marker
    /// rows read (deleted by stage "forget" once every partition recomputed their consequences) and, in incremental
    /// mode, the ids in other partitions that the changed records touch.
    static func catalogWithChanges(_ data: PartitionView, incremental: Bool)
        throws -> (Chorus_V1_Jobs_FeaturesCatalog, UInt64) {
        // Markers first: a record written after this read keeps its marker for the next run.
        let rows = try data.changeMarkers()
        var (out, read) = try catalog(data)
        let recordRows = rows.filter(\.isRecord)
        let records = Set(recordRows.flatMap(\.entries))
        out.changes = UInt64(rows.reduce(0) { $0 + $1.entries.count })
        out.recordMarkers = recordRows.map { Data($0.key) }
        guard incremental else { return (out, read) }
        if records.count > maxRecordChanges {
            out.full = true
            return (out, read)
        }
        var users = Set<String>(), contents = Set<String>()
        for m in records.sorted(by: { ($0.kind.rawValue, $0.id) < ($1.kind.rawValue, $1.id) }) where !m.id.isEmpty {
            let own = Array(m.id.utf8) + [0]
            if m.kind == .userRecord {
                // The content this user interacted with: its audience by channel and country changes.
                try data.scan(role: ShardKeys.role(.interactionByUser), idPrefix: own) { _, value in
                    let r = try InteractionFields(parsing: value)
                    contents.insert(String(decoding: r.contentID, as: UTF8.self))
                    read += 1
                    return true
                }
            } else {
                // The users who interacted with this content: their interests change.
                try data.scan(role: ShardKeys.role(.interactionByContent), idPrefix: own) { _, value in
                    let r = try InteractionFields(parsing: value)
                    users.insert(String(decoding: r.userID, as: UTF8.self))
                    read += 1
                    return true
                }
            }
            if users.count + contents.count > maxTouched {
                out.full = true
                break
            }
        }
        if !out.full {
            out.touchedUsers = users.sorted()
            out.touchedContents = contents.sorted()
        }
        return (out, read)
    }

    /// The markers a compute task that read `markers` before its data deletes with its results: the interaction
    /// and follow markers (and malformed ones). Their effect stays in the partition. Record markers (U, C) change ids
    /// in other partitions too: stage "forget" deletes them once every partition's compute succeeded.
    static func processed(_ rows: [ChangeMarkers.Row]) -> [[UInt8]] {
        rows.filter { !$0.isRecord }.map(\.key)
    }

    /// Recomputes the profiles of the users and the features of the content items that have a change marker in
    /// this partition or are in the broadcast's touched lists and held here, exactly as `compute` computes them,
    /// and deletes the processed markers. Returns a summary whose `users`, `contents` and `interactions` count what
    /// was recomputed and read.
    static func computeIncremental(_ data: PartitionView, catalog: FeatureIndex, touchedUsers: [String],
                                   touchedContents: [String], asOf: Int64, cancellation: CancellationFlag) throws -> (GlobalSummary, DerivedWrites, UInt64) {
        let markers = try data.changeMarkers()
        var markedUsers = Set<String>(), markedContents = Set<String>()
        for m in markers.flatMap(\.entries) where !m.id.isEmpty {
            if m.kind.isUser { markedUsers.insert(m.id) } else { markedContents.insert(m.id) }
        }
        var writes = DerivedWrites(partition: data.partition)
        var summary = GlobalSummary()
        var read: UInt64 = 0
        var json = JSONBytes()
        func count(_ role: Chorus_V1_PutRole, _ prefix: [UInt8]) throws -> Int {
            var n = 0
            try data.scan(role: ShardKeys.role(role), idPrefix: prefix) { _, _ in n += 1; return true }
            return n
        }

        var userBuilder = UserFeatureBuilder(index: catalog)
        for id in markedUsers.union(touchedUsers).sorted() {
            if cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            let own = Array(id.utf8) + [0]
            let record = try data.get(role: ShardKeys.role(.user), id: id)
            let user = try record.map { bytes in Wire.decode(try Chorus_V1_User(serializedBytes: bytes)) }
            let followers = try count(.followIn, own), following = try count(.followOut, own)
            var n = 0
            try data.scan(role: ShardKeys.role(.interactionByUser), idPrefix: own) { _, value in
                n += 1
                let r = try InteractionFields(parsing: value)
                if let kind = r.kind { userBuilder.add(kind: kind, channel: r.channel, ts: r.ts, content: r.contentID) }
                return true
            }
            read += UInt64(n + followers + following + (record == nil ? 0 : 1))
            guard n > 0 || user != nil || followers > 0 || following > 0 else {
                // Nothing of this user here: a touched id of another partition (or erased data).
                if markedUsers.contains(id) { writes.delete(key: ShardKeys.key(partition: data.partition, role: profileRole, id: Array(id.utf8))) }
                continue
            }
            let f = userBuilder.finish(userId: id, user: user, followers: followers, following: following, asOf: asOf)
            summary.users += 1
            summary.interactions += n
            json.removeAll()
            f.writeJSON(&json)
            writes.put(role: profileRole, id: id, json.bytes)
        }

        var contentBuilder = ContentFeatureBuilder(index: catalog)
        for id in markedContents.union(touchedContents).sorted() {
            if cancellation.isSet { throw ChorusError(.jobFailed, "cancelled") }
            let record = try data.get(role: ShardKeys.role(.content), id: id)
            let content = try record.map { bytes in Wire.decode(try Chorus_V1_Content(serializedBytes: bytes)) }
            var n = 0
            try data.scan(role: ShardKeys.role(.interactionByContent), idPrefix: Array(id.utf8) + [0]) { _, value in
                n += 1
                let r = try InteractionFields(parsing: value)
                if let kind = r.kind { contentBuilder.add(kind: kind, user: r.userID) }
                return true
            }
            read += UInt64(n + (record == nil ? 0 : 1))
            guard n > 0 || content != nil else {
                if markedContents.contains(id) { writes.delete(key: ShardKeys.key(partition: data.partition, role: contentRole, id: Array(id.utf8))) }
                continue
            }
            let f = contentBuilder.finish(contentId: id, content: content)
            summary.contents += 1
            json.removeAll()
            f.writeJSON(&json)
            writes.put(role: contentRole, id: id, json.bytes)
        }
        for key in processed(markers) { writes.delete(key: key) }
        return (summary, writes, read)
    }

    /// Builds the partition's profiles and content features (replacing the previous run's) and its summary.
    ///
    /// The interactions are read as raw fields (`InteractionFields`) and folded into reusable builders over the
    /// interned catalog, and each profile is written as JSON by hand: the cost per interaction does not depend on
    /// the size of the catalog or of the partition (docs/benchmarks.md, "The `features` job").
    /// The change markers read first are deleted with the results (`processed`).
    static func compute(_ data: PartitionView, catalog: FeatureIndex, asOf: Int64, cancellation: CancellationFlag) throws -> (GlobalSummary, DerivedWrites, UInt64) {
        var summary = GlobalSummary()
        var read: UInt64 = 0
        let markers = try data.changeMarkers()

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
        for key in processed(markers) { writes.delete(key: key) }
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


/// An async lock: `acquire` waits (without blocking a thread) until the holder calls `release`; first come, first served.
actor AsyncExclusive {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy { busy = true; return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }
}
