import ChorusAnalytics
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import SwiftProtobuf

/// Job kinds and their stages. A stage runs once per partition on the partition's owner.
public enum JobKinds {
    public static let features = "features"
    public static let als = "als"
    /// Trains a sentiment model on the labelled texts of a dataset (`chorus model train sentiment`).
    public static let sentimentTrain = "sentiment-train"
    /// Scores comments and posts with a sentiment model; aggregates per content, user and topic; alerts.
    public static let sentiment = "sentiment"
    /// Groups the negative comments about one topic, hashtag or brand into complaint themes.
    public static let themes = "themes"
    public static let all = [features, als, sentimentTrain, sentiment, themes]
    /// features: "catalog" collects the small dimension tables; the coordinator broadcasts them;
    /// "compute" builds user profiles and content features with local reads only.
    public static func stages(_ kind: String) -> [String] {
        kind == features ? ["catalog", "compute"] : []
    }

    /// Tasks per partition of a job (the progress denominator).
    public static func stageCount(_ kind: String, params: [String: String]) -> Int {
        if kind == als {
            // [als-last] + als-load + 2 per iteration + als-save
            let last = params["holdout_by"] == "last" ? 1 : 0
            return last + 2 + 2 * max(1, Int(params["iterations"] ?? "") ?? ALS.Config().iterations)
        }
        if kind == sentiment { return 3 }  // catalog, sentiment-content, sentiment-users (sentiment-why only with alerts)
        if kind == themes { return 1 }
        if kind == sentimentTrain {
            // st-load + one evaluation per epoch (line-search retries are not counted ahead)
            return 1 + max(1, Int(params["iterations"] ?? "") ?? 120)
        }
        return stages(kind).count
    }
}

extension Worker {
    func runTask(_ t: Chorus_V1_RunTask) async throws -> Chorus_V1_TaskResult {
        guard JobKinds.all.contains(t.kind) else { throw ChorusError(.usage, "unknown job kind '\(t.kind)'") }
        try checkLease("tasks")
        if state.withLock({ $0.map.version }) < t.mapVersion { try await refreshMap() }
        try checkPrimary([t.partition], in: state.withLock { $0.map })
        state.withLock { $0.runningTasks += 1 }
        defer { state.withLock { $0.runningTasks -= 1 } }
        let store = self.store
        // Test knob: slow every task down so tests can disturb a running job (documented in docs/cli.md).
        if let ms = Int(t.params["debug_task_delay_ms"] ?? ""), ms > 0 {
            _ = try await computeQueue.run { usleep(UInt32(min(ms, 60_000)) * 1000) }
        }
        var result: Chorus_V1_TaskResult
        switch [JobKinds.als, JobKinds.sentimentTrain, JobKinds.sentiment, JobKinds.themes].contains(t.kind) ? t.kind : t.stage {
        case JobKinds.sentiment, JobKinds.themes:
            result = try await runSentimentTask(t)
        case JobKinds.als:
            result = try await runALSTask(t)
        case JobKinds.sentimentTrain:
            result = try await runSentimentTrainTask(t)
        case "catalog":
            result = try await computeQueue.run { try Self.catalogTask(store: store, t) }
        case "compute":
            guard let catalog = state.withLock({ $0.catalogs[t.jobID] }) else {
                throw ChorusError(.unavailable, "job \(t.jobID): catalog broadcast not received on \(name)")
            }
            let asOf = Int64(t.params["as_of"] ?? "") ?? Int64(Date().timeIntervalSince1970)
            let (r, ops) = try await computeQueue.run { try Self.computeTask(store: store, t, catalog: catalog, asOf: asOf) }
            // Results are written on the primary and replicated like ingested data.
            try await writeDerived(ops)
            result = r
        default:
            throw ChorusError(.usage, "unknown stage '\(t.stage)' for job kind \(t.kind)")
        }
        // Fencing: a worker that lost its lease or the partition while the task ran returns no result.
        try checkLease("task results")
        let map = state.withLock { $0.map }
        guard map.assignments[Int(t.partition)].owner == nodeId else {
            throw fence("worker \(name) lost partition \(t.partition) while its task ran (map version \(map.version))")
        }
        result.mapVersion = map.version
        return result
    }

    static func idPart(_ key: UnsafeRawBufferPointer) -> String {
        String(decoding: key[5...], as: UTF8.self)
    }

    /// The key id up to the 0x00 separator (the grouping id of a two-part key).
    static func groupId(_ key: UnsafeRawBufferPointer) -> String {
        let rest = key[5...]
        let end = rest.firstIndex(of: 0) ?? rest.endIndex
        return String(decoding: key[5..<end], as: UTF8.self)
    }

    static func catalogTask(store: Store, _ t: Chorus_V1_RunTask) throws -> Chorus_V1_TaskResult {
        var result = Chorus_V1_TaskResult()
        result.jobID = t.jobID; result.stage = t.stage; result.partition = t.partition
        try store.scan(prefix: ShardKeys.prefix(partition: t.partition, role: ShardKeys.role(.user))) { _, value in
            let u = try Chorus_V1_User(borrowing: UnsafeRawBufferPointer(value))
            var cu = Chorus_V1_CatalogUser()
            cu.id = u.id; cu.channel = u.channel; cu.country = u.country
            result.catalog.users.append(cu)
            result.recordsRead += 1
            return true
        }
        try store.scan(prefix: ShardKeys.prefix(partition: t.partition, role: ShardKeys.role(.content))) { _, value in
            let c = try Chorus_V1_Content(borrowing: UnsafeRawBufferPointer(value))
            var cc = Chorus_V1_CatalogContent()
            cc.id = c.id; cc.topics = c.topics; cc.hashtags = c.hashtags
            result.catalog.contents.append(cc)
            result.recordsRead += 1
            return true
        }
        return result
    }

    /// Streams records of one role grouped by their first key part (records of one id are contiguous).
    static func scanGroups(store: Store, partition: UInt32, role: UInt8,
                           _ body: (String, [InteractionRecord]) throws -> Void) throws -> Int {
        var current: String?
        var group: [InteractionRecord] = []
        var n = 0
        try store.scan(prefix: ShardKeys.prefix(partition: partition, role: role)) { key, value in
            let gid = groupId(key)
            if gid != current {
                if let c = current { try body(c, group) }
                current = gid
                group.removeAll(keepingCapacity: true)
            }
            let m = try Chorus_V1_Interaction(borrowing: UnsafeRawBufferPointer(value))
            if let rec = Wire.decode(m) { group.append(rec) }
            n += 1
            return true
        }
        if let c = current { try body(c, group) }
        return n
    }

    static func computeTask(store: Store, _ t: Chorus_V1_RunTask, catalog: FeatureCatalog,
                            asOf: Int64) throws -> (Chorus_V1_TaskResult, [Chorus_V1_ReplicaOp]) {
        let p = t.partition
        var summary = GlobalSummary()
        var read: UInt64 = 0

        // Small per-partition tables: user records and follow counts.
        var users: [String: UserRecord] = [:]
        try store.scan(prefix: ShardKeys.prefix(partition: p, role: ShardKeys.role(.user))) { _, v in
            let u = Wire.decode(try Chorus_V1_User(borrowing: UnsafeRawBufferPointer(v)))
            users[u.id] = u
            read += 1
            return true
        }
        var following: [String: Int] = [:], followers: [String: Int] = [:]
        try store.scan(prefix: ShardKeys.prefix(partition: p, role: ShardKeys.role(.followOut))) { k, _ in
            following[groupId(k), default: 0] += 1
            read += 1
            return true
        }
        try store.scan(prefix: ShardKeys.prefix(partition: p, role: ShardKeys.role(.followIn))) { k, _ in
            followers[groupId(k), default: 0] += 1
            read += 1
            return true
        }

        var ops: [Chorus_V1_ReplicaOp] = []
        func put(_ key: [UInt8], _ value: [UInt8]) {
            var op = Chorus_V1_ReplicaOp()
            op.partition = p
            op.key = Data(key)
            op.value = Data(value)
            ops.append(op)
        }
        // Replace the previous results of this partition.
        for d in [ShardKeys.Derived.profile, .contentStats] {
            let pre = ShardKeys.prefix(partition: p, role: d.rawValue)
            if let end = Store.prefixEnd(pre) {
                var op = Chorus_V1_ReplicaOp()
                op.partition = p
                op.key = Data(pre)
                op.rangeEnd = Data(end)
                ops.append(op)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var done = Set<String>()
        func emitUser(_ id: String, _ interactions: [InteractionRecord]) throws {
            let f = FeatureMath.userFeatures(userId: id, user: users[id], interactions: interactions,
                                             followers: followers[id] ?? 0, following: following[id] ?? 0,
                                             catalog: catalog, asOf: asOf)
            summary.add(f)
            put(ShardKeys.key(partition: p, role: ShardKeys.Derived.profile.rawValue, id: Array(id.utf8)),
                Array(try encoder.encode(f)))
            done.insert(id)
        }
        read += UInt64(try scanGroups(store: store, partition: p, role: ShardKeys.role(.interactionByUser)) {
            try emitUser($0, $1)
        })
        // Users with no interactions still get a profile (ids in sorted order for determinism).
        for id in Set(users.keys).union(following.keys).union(followers.keys).subtracting(done).sorted() {
            try emitUser(id, [])
        }

        // Content.
        var contents: [String: ContentRecord] = [:]
        try store.scan(prefix: ShardKeys.prefix(partition: p, role: ShardKeys.role(.content))) { _, v in
            let c = Wire.decode(try Chorus_V1_Content(borrowing: UnsafeRawBufferPointer(v)))
            contents[c.id] = c
            read += 1
            return true
        }
        var doneContent = Set<String>()
        func emitContent(_ id: String, _ interactions: [InteractionRecord]) throws {
            let f = FeatureMath.contentFeatures(contentId: id, content: contents[id], interactions: interactions,
                                                catalog: catalog)
            summary.contents += 1
            // Interest totals are taken here, on the content side, where topics and hashtags are local.
            if let c = contents[id] {
                summary.addInterest(weight: interactions.reduce(0) { $0 + $1.kind.interestWeight },
                                    topics: c.topics, hashtags: c.hashtags)
            }
            put(ShardKeys.key(partition: p, role: ShardKeys.Derived.contentStats.rawValue, id: Array(id.utf8)),
                Array(try encoder.encode(f)))
            doneContent.insert(id)
        }
        read += UInt64(try scanGroups(store: store, partition: p, role: ShardKeys.role(.interactionByContent)) {
            try emitContent($0, $1)
        })
        for id in Set(contents.keys).subtracting(doneContent).sorted() { try emitContent(id, []) }

        var result = Chorus_V1_TaskResult()
        result.jobID = t.jobID; result.stage = t.stage; result.partition = p
        result.partialJson = String(decoding: try encoder.encode(summary), as: UTF8.self)
        result.recordsRead = read
        return (result, ops)
    }
}
