import ChorusModel
import Foundation

// The job SDK (docs/jobs.md, docs/architecture.md "Job SDK").
//
// A job kind is one type conforming to `Job`, in a folder of its own (Sources/ChorusJobs/<Kind>/), with its
// messages in proto/chorus/v1/jobs/<kind>.proto. It has two halves:
// - the driver (`drive`), which runs on the coordinator. It plans stages and merges their results through a
//   `JobContext`: run a stage over all partitions (with an optional broadcast), report progress, check for
//   cancellation. An iterative job is a loop in its driver.
// - the worker state (`workerState`), one object per job on each worker, created on first use (a broadcast or a
//   task) and dropped when the job ends, is cancelled or the worker restarts. Its `run` computes one partition of
//   one stage through a `TaskContext`: a read view of the partition, the compute threads, derived writes.
//
// The runtime owns everything else: dispatch to primaries (one message per worker per stage), broadcasts once per
// worker incarnation, retries, fencing, progress, persistence, replication of derived writes and cancellation. It
// names no job kind: the kinds reach it as a `JobRegistry` from the program that starts the process.

/// One job kind.
public protocol Job: Sendable {
    /// The kind's name in `chorus job submit KIND` and on the wire.
    static var kind: String { get }
    /// One line for `chorus job kinds`.
    static var about: String { get }
    /// The parameters it takes (the runtime adds `JobParameters.common`). Checked at submit: an unknown key or a
    /// bad value fails the submit with exit 64.
    static var parameters: [JobParameter] { get }
    /// Tasks per partition the job runs, for the progress denominator (a good estimate is enough).
    static func tasksPerPartition(_ params: JobParams) -> Int
    /// Checks at submit beyond the declared shapes (for example that a named model exists). Throw a usage or
    /// not-found `ChorusError` to refuse the job.
    static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws
    /// The coordinator side: runs the job's stages and returns its summary (a JSON object, shown by
    /// `chorus job status`).
    static func drive(_ ctx: JobContext) async throws -> String
    /// The worker side: this job's state on one worker.
    static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker
    /// Well-formed tasks and broadcasts of this kind, which the wire fuzzer (`chorus bench-fuzz`) mutates so its
    /// messages get past the first checks into the kind's own code. Default: each stage named here, no broadcast.
    static var fuzzSeeds: [FuzzSeed] { get }
    /// The job's summary for people (`chorus job status` without --json), from the JSON `drive` returned; nil:
    /// the CLI prints the JSON itself, indented.
    static func summaryText(_ summaryJSON: String) -> String?
    /// The parts of the user profile this kind writes (a JSON value per user under its own derived role):
    /// `chorus profile get` and `profile export` show each under its name, with the job that wrote it.
    static var profileSections: [ProfileSection] { get }
    /// True when the kind writes nothing back to the shards (only its result on the coordinator): an `analyst`
    /// key may submit it (docs/security.md). Default false.
    static var readOnly: Bool { get }
}

/// A part of the user profile that a job kind writes into the user's partition: the JSON object stored under
/// `[partition][role][user id]` is shown as the profile's key `name`.
public struct ProfileSection: Sendable {
    public let name: String
    public let role: UInt8
    /// Keys of the object that `profile export --format csv` writes, as columns "<name>_<key>" (appended after
    /// the profile's own columns, in registry order).
    public let csvFields: [String]
    /// The section's lines in `chorus profile get` (without --json), from its JSON object.
    public let describe: @Sendable ([String: Any]) -> [String]
    public init(_ name: String, role: UInt8, csvFields: [String] = [],
                describe: @escaping @Sendable ([String: Any]) -> [String]) {
        self.name = name; self.role = role; self.csvFields = csvFields; self.describe = describe
    }
}

extension Job {
    public static func tasksPerPartition(_ params: JobParams) -> Int { 1 }
    public static func checkSubmit(_ params: JobParams, _ ctx: SubmitContext) throws {}
    public static var fuzzSeeds: [FuzzSeed] { [] }
    public static func summaryText(_ summaryJSON: String) -> String? { nil }
    public static var profileSections: [ProfileSection] { [] }
    public static var readOnly: Bool { false }
}

/// One well-formed message of a kind for the wire fuzzer: a task of `stage` with `params`, and (when set) the
/// stage's broadcast payload.
public struct FuzzSeed: Sendable {
    public var stage: String
    public var params: [String: String]
    public var broadcast: Data?
    public init(stage: String, params: [String: String] = [:], broadcast: Data? = nil) {
        self.stage = stage; self.params = params; self.broadcast = broadcast
    }
}

/// A job's state on one worker. Calls come from many threads at once (one task per partition in parallel), so
/// keep mutable state behind a lock (`Mutex`).
public protocol JobWorker: AnyObject, Sendable {
    /// A broadcast of the job (sent once per worker incarnation and stage, before the stage's tasks). A payload
    /// that does not decode or fails the job's checks should throw `TaskContext.invalid(...)` (BAD_REQUEST).
    func receive(_ broadcast: JobBroadcast) throws
    /// Computes one partition of one stage. Runs on the async pool: put blocking work (store reads, CPU loops)
    /// in `task.compute { }`.
    func run(_ task: TaskContext) async throws -> TaskOutput
    /// Called once when the job ends, is cancelled, or is released for any reason. Free big buffers here.
    func release()
}

extension JobWorker {
    public func receive(_ broadcast: JobBroadcast) throws {}
    public func release() {}
}

/// What a worker knows about a job when it creates the job's state.
public struct WorkerJobInfo: Sendable {
    public let jobID: String
    public let kind: String
    public let params: JobParams
    /// The worker's name, for messages.
    public let workerName: String
    /// Public so a kind's worker state can be unit-tested without a cluster.
    public init(jobID: String, kind: String, params: JobParams, workerName: String) {
        self.jobID = jobID; self.kind = kind; self.params = params; self.workerName = workerName
    }
}

/// A broadcast as a job's worker state receives it.
public struct JobBroadcast: Sendable {
    public let jobID: String
    public let stage: String
    public let payload: Data
    public init(jobID: String, stage: String, payload: Data) {
        self.jobID = jobID; self.stage = stage; self.payload = payload
    }
}

/// One partition's result of one stage: the job's own message, serialized, and how many records it read.
public struct TaskOutput: Sendable {
    public var partition: UInt32
    public var payload: Data
    public var recordsRead: UInt64
    public init(partition: UInt32 = 0, payload: Data = Data(), recordsRead: UInt64 = 0) {
        self.partition = partition; self.payload = payload; self.recordsRead = recordsRead
    }
}

/// A job's parameters as checked and normalized at submit (defaults are not filled in: read them with a
/// default, the same one the declaration documents).
public struct JobParams: Sendable, Equatable {
    public let raw: [String: String]
    public init(_ raw: [String: String]) { self.raw = raw }

    public subscript(_ key: String) -> String? { raw[key] }
    public func string(_ key: String, _ fallback: String) -> String { raw[key] ?? fallback }
    public func int(_ key: String, _ fallback: Int) -> Int { raw[key].flatMap { Int($0) } ?? fallback }
    public func int64(_ key: String, _ fallback: Int64) -> Int64 { raw[key].flatMap { Int64($0) } ?? fallback }
    public func double(_ key: String, _ fallback: Double) -> Double {
        raw[key].flatMap { Double($0) }.flatMap { $0.isFinite ? $0 : nil } ?? fallback
    }
    public func bool(_ key: String, _ fallback: Bool) -> Bool {
        switch raw[key] { case "true": return true; case "false": return false; default: return fallback }
    }
    /// `as_of` (unix seconds), or now.
    public var asOf: Int64 { int64("as_of", Int64(Date().timeIntervalSince1970)) }
}

/// What `checkSubmit` may look at on the coordinator.
public struct SubmitContext: Sendable {
    /// Whether the coordinator stores a model under this name (version 0 = any version).
    public let modelExists: @Sendable (_ name: String, _ version: UInt32) throws -> Bool
}

/// The job kinds a process knows: given by the program that starts the coordinator and workers
/// (`chorus` passes `StandardJobs.registry`; a test may add its own kinds).
public struct JobRegistry: Sendable {
    public let jobs: [any Job.Type]
    public init(_ jobs: [any Job.Type]) {
        var seen = Set<String>()
        for j in jobs { precondition(seen.insert(j.kind).inserted, "job kind \(j.kind) registered twice") }
        var roles = Set<UInt8>()
        for s in jobs.flatMap({ $0.profileSections }) {
            precondition(roles.insert(s.role).inserted, "profile role \(s.role) declared twice")
            precondition(!s.name.isEmpty && s.name.utf8.allSatisfy { (0x61...0x7A).contains($0) || $0 == 0x5F },
                         "profile section name '\(s.name)' is not lower_snake_case")
        }
        self.jobs = jobs
    }
    public subscript(_ kind: String) -> (any Job.Type)? { jobs.first { $0.kind == kind } }
    public var kinds: [String] { jobs.map { $0.kind } }
    /// The kinds an analyst may submit (`Job.readOnly`).
    public var readOnlyKinds: Set<String> { Set(jobs.filter { $0.readOnly }.map { $0.kind }) }
    /// Every kind's profile sections, in registry order.
    public var profileSections: [ProfileSection] { jobs.flatMap { $0.profileSections } }
    public static let empty = JobRegistry([])
}
