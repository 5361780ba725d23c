import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import Logging

/// A worker incarnation that receives a broadcast (a restarted worker is a new incarnation and gets every
/// broadcast again).
public struct Recipient: Sendable, Hashable {
    public let node: String
    public let incarnation: Int
    /// "node#incarnation", for a driver that remembers what each recipient already holds.
    public var key: String { "\(node)#\(incarnation)" }
}

/// What a stage sends to every worker once (per incarnation) before the stage's tasks run there.
public struct Broadcast: Sendable {
    let build: @Sendable (Recipient) throws -> Data
    let delivered: @Sendable (Recipient, Bool) -> Void

    /// The same payload for every worker.
    public init(_ payload: Data) {
        build = { _ in payload }
        delivered = { _, _ in }
    }

    /// A payload built per recipient (for example without the parts it already received earlier in the job);
    /// `delivered` hears whether the send succeeded.
    public init(perRecipient build: @escaping @Sendable (Recipient) throws -> Data,
                delivered: @escaping @Sendable (Recipient, Bool) -> Void = { _, _ in }) {
        self.build = build
        self.delivered = delivered
    }
}

/// The driver's view of the runtime for one job, on the coordinator.
public final class JobContext: Sendable {
    public let jobID: String
    public let kind: String
    public let params: JobParams
    public let partitionCount: UInt32
    public let logger: Logger
    let coordinator: Coordinator
    let job: Chorus_V1_JobInfo

    init(coordinator: Coordinator, job: Chorus_V1_JobInfo, partitionCount: UInt32) {
        self.coordinator = coordinator
        self.job = job
        self.jobID = job.id
        self.kind = job.kind
        self.params = JobParams(job.params)
        self.partitionCount = partitionCount
        var log = coordinator.logger
        log[metadataKey: "job-id"] = "\(job.id)"
        self.logger = log
    }

    /// Runs `stage` on every partition (on its primary; one message per worker covering all its partitions) and
    /// hands each partition's result to `merge` as it arrives (in completion order: merge into per-partition
    /// slots, or use `collect`, when the order matters). A failed task is retried on the partition's current
    /// primary; the job fails after `maxTaskAttempts` real failures of one partition.
    public func runStage(_ stage: String, broadcast: Broadcast? = nil,
                         merge: (TaskOutput) throws -> Void) async throws {
        try await coordinator.runJobStage(job: job, stage: stage, broadcast: broadcast, merge: merge)
    }

    /// Runs `stage` and returns every partition's result in partition order.
    public func collect(_ stage: String, broadcast: Broadcast? = nil) async throws -> [TaskOutput] {
        var out: [TaskOutput] = []
        out.reserveCapacity(Int(partitionCount))
        try await runStage(stage, broadcast: broadcast) { out.append($0) }
        return out.sorted { $0.partition < $1.partition }
    }

    /// The stage text `chorus job status` shows (e.g. "als: iteration 3/10").
    public func setStage(_ text: String) async throws {
        _ = try await coordinator.state.update(jobID) { $0.stage = text }
    }

    /// Throws when the job was cancelled; call it in long loops of the driver.
    public func checkCancelled() async throws {
        if await coordinator.state.isCancelled(jobID) { throw Coordinator.JobFailure(message: "cancelled") }
    }

    /// An error that fails the job with this message as its reason (shown to the user as it is).
    public func failure(_ message: String) -> any Error { Coordinator.JobFailure(message: message) }

    /// Coordinator-side results of this kind (small: models, series, alerts), kept in the coordinator's store under
    /// "jobdata/<kind>/<key>" and durable when the call returns.
    /// Each result also records the job that wrote it ("jobprov/<kind>/<key>" → job id).
    public func putResult(_ key: String, _ value: [UInt8]) async throws {
        try await putResults([(key: key, value: value)])
    }

    /// Makes these item factors the ones `chorus recommend` and `chorus similar` serve (persisted, so a
    /// coordinator restart keeps serving them). `params` should hold "job_id" and "mode".
    public func publishRecommendationModel(_ items: Chorus_V1_AlsModel) async throws {
        try await coordinator.keepALSModel(items)
    }

    public func getResult(_ key: String) async throws -> [UInt8]? {
        let store = coordinator.store
        let full = Array("jobdata/\(kind)/\(key)".utf8)
        return try await coordinator.storeQueue.run { try store.get(full) }
    }

    // MARK: - Added for the sentiment kinds (issue 12); generic, named for what they do.

    /// Several results in one durable write ("jobdata/<kind>/<key>" each, as `putResult`): a run's results appear
    /// together or not at all.
    public func putResults(_ entries: [(key: String, value: [UInt8])]) async throws {
        guard !entries.isEmpty else { return }
        let store = coordinator.store
        var batch = WriteBatch()
        for e in entries {
            batch.put(Array("jobdata/\(kind)/\(e.key)".utf8), e.value)
            batch.put(Array("jobprov/\(kind)/\(e.key)".utf8), Array(jobID.utf8))
        }
        let b = batch
        do {
            try await coordinator.storeQueue.run { try store.write(b, sync: true) }
        } catch {
            throw ChorusError(.storage, "cannot store \(entries.count) \(kind) result(s): \(error)")
        }
    }

    /// A stored model's file, from the coordinator's model registry (`chorus model list`): `version` 0 is the
    /// latest. Nil when there is no such model.
    public func model(name: String, version: Int = 0) async throws -> (version: Int, bytes: [UInt8])? {
        let c = coordinator
        return try await coordinator.storeQueue.run { () throws -> (version: Int, bytes: [UInt8])? in
            guard let v = version > 0 ? version : try c.latestModelVersion(name),
                  let bytes = try c.store.get(ModelKeys.key(name, v)) else { return nil }
            return (v, bytes)
        }
    }

    /// Stores a model file (`SentimentModelFile` format) in the model registry as the next version of `name` (nil:
    /// the name in the file). Returns what `chorus model list` shows for it.
    public func storeModel(_ file: [UInt8], name: String? = nil) async throws -> Chorus_V1_ModelSummary {
        let f = try SentimentModelFile.decode(file)
        return try await coordinator.storeModel(f, name: name)
    }

    // MARK: - Added for campaign plans (issue 15); generic, named for what they do.

    /// A result another kind stored (`putResult`), with the job that wrote it: how a kind builds on the outputs of
    /// others (a campaign plan reads the segments, propensity, best-times ... results). Nil when none is stored.
    public func result(ofKind other: String, _ key: String) async throws -> (value: [UInt8], jobID: String)? {
        let store = coordinator.store
        let value = Array("jobdata/\(other)/\(key)".utf8), prov = Array("jobprov/\(other)/\(key)".utf8)
        return try await coordinator.storeQueue.run { () throws -> (value: [UInt8], jobID: String)? in
            guard let v = try store.get(value) else { return nil }
            return (v, try store.get(prov).map { String(decoding: $0, as: UTF8.self) } ?? "")
        }
    }

    /// Every result another kind stored under a key prefix (e.g. the sentiment kind's "alert/"), in key order, with
    /// the key after the prefix. At most `limit`.
    public func results(ofKind other: String, prefix: String, limit: Int = 10_000) async throws -> [(key: String, value: [UInt8])] {
        let store = coordinator.store
        let full = Array("jobdata/\(other)/\(prefix)".utf8)
        return try await coordinator.storeQueue.run { () throws -> [(key: String, value: [UInt8])] in
            var out: [(key: String, value: [UInt8])] = []
            try store.scan(prefix: full) { k, v in
                out.append((String(decoding: k.dropFirst(full.count), as: UTF8.self), Array(v)))
                return out.count < limit
            }
            return out
        }
    }

    /// The item side of the latest `als` job (what `chorus recommend` serves), nil when no ALS job has run.
    public func recommendationModel() async throws -> Chorus_V1_AlsModel? {
        let store = coordinator.store
        return try await coordinator.storeQueue.run { () throws -> Chorus_V1_AlsModel? in
            try store.get(Coordinator.alsModelKey).map { try Chorus_V1_AlsModel(serializedBytes: $0) }
        }
    }

    /// The newest succeeded job of a kind (its id and summary JSON), for evidence and for summaries that live only
    /// in the job history.
    public func latestSucceededJob(ofKind other: String) async -> (id: String, summaryJSON: String)? {
        let jobs = await coordinator.state.list(limit: 10_000)
        guard let j = jobs.filter({ $0.kind == other && $0.state == .succeeded }).max(by: { $0.finishedAtMs < $1.finishedAtMs })
        else { return nil }
        return (j.id, j.summaryJson)
    }

    /// Every succeeded job of a kind (id and summary JSON), newest first: for kinds whose output lives in the job
    /// history, one run per key (e.g. `themes`).
    public func succeededJobs(ofKind other: String, limit: Int = 10_000) async -> [(id: String, summaryJSON: String)] {
        await coordinator.state.list(limit: limit).filter { $0.kind == other && $0.state == .succeeded }
            .sorted { $0.finishedAtMs > $1.finishedAtMs }.map { ($0.id, $0.summaryJson) }
    }

    /// Appends a version of a versioned document (the coordinator's document store; documents.proto), checked
    /// against `expectedVersion` like a client's write. The version records this job as its author's tool.
    public func putDocument(collection: String, id: String, expectedVersion: UInt32, body: [UInt8], author: String,
                            action: String, summary: String, title: String = "") async throws -> Chorus_V1_DocumentVersion {
        var p = Chorus_V1_DocumentPut()
        p.collection = collection; p.id = id; p.expectedVersion = expectedVersion; p.body = Data(body)
        p.author = author; p.action = action; p.summary = summary; p.jobID = jobID; p.title = title
        var req = Chorus_V1_Request()
        req.body = .documentPut(p)
        try RequestValidation.check(req)
        return try await coordinator.putDocument(p).meta
    }

    /// The documents of a collection, newest first (at most `limit`): what a kind that builds on other documents
    /// reads first (a replan reads every campaign's evaluations).
    public func documents(collection: String, limit: Int = 200) async throws -> [Chorus_V1_DocumentSummary] {
        var l = Chorus_V1_DocumentListRequest()
        l.collection = collection; l.limit = UInt32(clamping: max(1, limit))
        return try await coordinator.listDocuments(l).documents
    }

    /// One version of a document (0: the latest) with its history; nil when the document does not exist.
    public func document(collection: String, id: String, version: UInt32 = 0) async throws -> Chorus_V1_DocumentReply? {
        var g = Chorus_V1_DocumentGet()
        g.collection = collection; g.id = id; g.version = version; g.withHistory = true
        do { return try await coordinator.getDocument(g) } catch let e as ChorusError where e.code == .notFound && version == 0 { return nil }
    }

    /// Runs CPU-heavy driver work (model fits, bootstraps) on a thread of its own, so it never holds a thread of the
    /// cooperative pool that the coordinator's requests need (on 2 cores a blocked pool stalls the cluster).
    public static func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in
            let t = Thread { c.resume(returning: body()) }
            t.stackSize = 8 << 20
            t.start()
        }
    }

    /// Workers active in the cluster now (for a report).
    public func activeWorkerCount() async -> Int {
        await coordinator.state.nodeInfos().filter { $0.state == .active }.count
    }

    /// Sets the progress count (`chorus job status`) when the driver knows it better than the per-task count (an
    /// iterative job whose line searches run extra stages); nil: every planned task is done.
    public func setTasksDone(_ done: Int?) async throws {
        _ = try await coordinator.state.update(jobID) { j in
            j.tasksDone = done.map { UInt32(clamping: $0) } ?? j.tasksTotal
        }
    }

    /// Adds tasks to the progress total, for a stage not counted by `tasksPerPartition` at submit (so progress stays
    /// within 100%).
    public func addPlannedTasks(_ count: Int) async throws {
        _ = try await coordinator.state.update(jobID) { $0.tasksTotal += UInt32(clamping: max(0, count)) }
    }
}

extension Coordinator {
    /// A result a job kind stored with `JobContext.putResult` (read on the store queue: a RocksDB read blocks).
    func jobResult(_ r: Chorus_V1_JobResultGet) async throws -> Chorus_V1_JobResultReply {
        guard options.jobs[r.kind] != nil else {
            throw ChorusError(.notFound, "no job kind '\(r.kind.prefix(40))'",
                              hint: "`chorus job kinds` lists them")
        }
        let store = self.store
        let value = Array("jobdata/\(r.kind)/\(r.key)".utf8), prov = Array("jobprov/\(r.kind)/\(r.key)".utf8)
        return try await storeQueue.run {
            var reply = Chorus_V1_JobResultReply()
            if let v = try store.get(value) {
                reply.found = true
                reply.value = Data(v)
                reply.jobID = try store.get(prov).map { String(decoding: $0, as: UTF8.self) } ?? ""
            }
            return reply
        }
    }
}
