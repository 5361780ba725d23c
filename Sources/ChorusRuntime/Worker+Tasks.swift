import ChorusAnalytics
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import SwiftProtobuf

/// The built-in job kinds not yet moved onto the job SDK (JobSDK/Job.swift); each moves to
/// Sources/ChorusJobs/<Kind>/ and leaves this list.
public enum JobKinds {
    /// Trains a sentiment model on the labelled texts of a dataset (`chorus model train sentiment`).
    public static let sentimentTrain = "sentiment-train"
    /// Scores comments and posts with a sentiment model; aggregates per content, user and topic; alerts.
    public static let sentiment = "sentiment"
    /// Groups the negative comments about one topic, hashtag or brand into complaint themes.
    public static let themes = "themes"
    public static let all = [sentimentTrain, sentiment, themes]

    /// Tasks per partition of a job (the progress denominator).
    public static func stageCount(_ kind: String, params: [String: String]) -> Int {
        if kind == sentiment { return 3 }  // catalog, sentiment-content, sentiment-users (sentiment-why only with alerts)
        if kind == themes { return 1 }
        if kind == sentimentTrain {
            // st-load + one evaluation per epoch (line-search retries are not counted ahead)
            return 1 + max(1, Int(params["iterations"] ?? "") ?? 120)
        }
        return 1
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
        // Test knob: slow every task down so tests can disturb a running job (documented in docs/cli.md).
        if let ms = Int(t.params["debug_task_delay_ms"] ?? ""), ms > 0 {
            _ = try await computeQueue.run { usleep(UInt32(min(ms, 60_000)) * 1000) }
        }
        var result: Chorus_V1_TaskResult
        switch [JobKinds.sentimentTrain, JobKinds.sentiment, JobKinds.themes].contains(t.kind) ? t.kind : t.stage {
        case JobKinds.sentiment, JobKinds.themes:
            result = try await runSentimentTask(t)
        case JobKinds.sentimentTrain:
            result = try await runSentimentTrainTask(t)
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
}
