import ChorusData
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import SwiftProtobuf

// Job dependencies and pipelines (docs/pipelines.md).
//
// A job with `after` (job ids) stays queued until every one of them succeeded; then it is started with `runJob`,
// like any job. If one of them fails, the job fails, naming it; if one is cancelled, it is cancelled. Both
// propagate: a job after a failed job's dependent fails in the same pass. A pipeline is a set of such jobs
// created in one request, with a record under `pipeline/ID` in the coordinator's store naming the step of each.
//
// Who starts what: a job without `after` is started at submit (and after a coordinator restart) as before;
// a job with `after` is started only by the scheduler loop (`runScheduler`), once. A restart needs nothing more:
// the restart logic requeues queued and running jobs, and the loop starts the ones with `after` when their
// dependencies have succeeded, which may already be the case.

enum PipelineKeys {
    static let prefix = "pipeline/"
    static let seq = "meta/pipeline_seq"
    static func key(_ id: String) -> [UInt8] { Array((prefix + id).utf8) }
}

func ended(_ s: Chorus_V1_JobState) -> Bool { s == .succeeded || s == .failed || s == .cancelled }

extension Coordinator {
    /// Starts a just-created job now if it depends on nothing; a job with `after` is the scheduler's.
    func startWhenReady(_ job: Chorus_V1_JobInfo) {
        if job.after.isEmpty { Task { await self.runJob(job.id) } }
    }

    /// Starts jobs whose dependencies succeeded and ends those whose dependencies failed, every 200 ms.
    func runScheduler() async {
        var started = Set<String>()
        while !Task.isCancelled {
            do {
                let ready = try await state.schedule(claimed: started)
                for id in ready {
                    started.insert(id)
                    logger.info("job starting: its dependencies succeeded", metadata: ["job-id": "\(id)"])
                    Task { await self.runJob(id) }
                }
                if started.count > 10_000 { started = await state.stillQueued(started) }
            } catch {
                logger.error("job scheduling failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    func submitPipeline(_ p: Chorus_V1_SubmitPipeline) async throws -> Chorus_V1_PipelineInfo {
        let spec = PipelineSpec(name: p.name, steps: p.steps.map {
            PipelineSpec.Step(name: $0.name, kind: $0.kind, params: $0.params, after: $0.after)
        })
        try spec.validate(source: "pipeline")
        let info = try await state.createPipeline(spec, registry: options.jobs, check: submitCheck)
        logger.info("pipeline submitted", metadata: ["pipeline-id": "\(info.id)", "steps": "\(info.steps.count)"])
        for s in info.steps { startWhenReady(s.job) }
        return try await state.pipeline(info.id)
    }
}

extension CoordinatorState {
    /// Creates a job that starts after `after` (job ids). Unknown ids are a usage error (exit 64): nothing is
    /// created.
    func createJob(kind: String, params: [String: String], after given: [String], registry: JobRegistry,
                   check: (any Job.Type, JobParams) throws -> Void) throws -> Chorus_V1_JobInfo {
        var after: [String] = []
        for id in given where !after.contains(id) {
            guard jobs[id] != nil else {
                throw ChorusError(.usage, "no job '\(id)' to run after", hint: "see `chorus job list` for the job ids")
            }
            after.append(id)
        }
        let j = try createJob(kind: kind, params: params, registry: registry, check: check)
        guard !after.isEmpty else { return j }
        return try update(j.id) { j in
            j.after = after
            j.stage = waitingText(after)
        }
    }

    func waitingText(_ after: [String]) -> String {
        let open = after.filter { jobs[$0].map { !ended($0.state) } ?? false }
        return open.isEmpty ? "starting" : "waiting for " + open.joined(separator: ", ")
    }

    /// One scheduling pass, in job id order (a dependency is always older than its dependent, so a failure
    /// reaches the whole chain in one pass). Returns the queued jobs whose dependencies all succeeded and that
    /// are not in `claimed`; fails or cancels the ones with a dependency that did not succeed.
    func schedule(claimed: Set<String>) throws -> [String] {
        var ready: [String] = []
        for id in jobs.keys.sorted() {
            guard let j = jobs[id], j.state == .queued, !j.after.isEmpty, !claimed.contains(id) else { continue }
            var blocker: Chorus_V1_JobInfo?
            var missing: String?
            for d in j.after {
                guard let dep = jobs[d] else { missing = d; break }
                if dep.state == .failed || dep.state == .cancelled { blocker = dep; break }
            }
            if let missing {
                _ = try update(id) { j in
                    j.state = .failed; j.finishedAtMs = nowMs(); j.stage = "dependency failed"
                    j.error = "dependency \(missing) does not exist"
                }
            } else if let dep = blocker {
                let what = dep.pipelineStep.isEmpty ? dep.id : "\(dep.id) (step \(dep.pipelineStep))"
                let cancelled = dep.state == .cancelled
                _ = try update(id) { j in
                    j.state = cancelled ? .cancelled : .failed
                    j.finishedAtMs = nowMs()
                    j.stage = cancelled ? "dependency cancelled" : "dependency failed"
                    j.error = cancelled ? "dependency \(what) was cancelled"
                        : "dependency \(what) failed: \(dep.error.isEmpty ? "no reason given" : dep.error)"
                }
                if cancelled { self.cancelled.insert(id) }
            } else if j.after.allSatisfy({ jobs[$0]?.state == .succeeded }) {
                ready.append(id)
            } else {
                let text = waitingText(j.after)
                if j.stage != text { _ = try update(id) { $0.stage = text } }
            }
        }
        return ready
    }

    func stillQueued(_ ids: Set<String>) -> Set<String> { ids.filter { jobs[$0]?.state == .queued } }

    /// Jobs to start at once after a restart: the resumable ones without dependencies.
    var resumableNow: [String] { resumable.filter { jobs[$0]?.after.isEmpty ?? true } }

    // MARK: pipelines

    /// Creates every step's job (after checking all of them, so a bad step creates nothing) and stores the
    /// pipeline record. Jobs are created dependencies first; none is started here.
    func createPipeline(_ spec: PipelineSpec, registry: JobRegistry,
                        check: (any Job.Type, JobParams) throws -> Void) throws -> Chorus_V1_PipelineInfo {
        for s in spec.steps {
            do {
                let params = try JobParameters.validate(kind: s.kind, params: s.params, registry: registry)
                if let kind = registry[s.kind] { try check(kind, JobParams(params)) }
            } catch let e as ChorusError {
                throw ChorusError(e.code, "step '\(s.name)': \(e.message)", hint: e.hint)
            }
        }
        let order = try spec.order(source: "pipeline")
        var seq = 0
        if let s = try store.get(Array(PipelineKeys.seq.utf8)) { seq = Int(String(decoding: s, as: UTF8.self)) ?? 0 }
        seq += 1
        try store.put(Array(PipelineKeys.seq.utf8), Array(String(seq).utf8), sync: true)
        let id = "pipe-" + String(format: "%06d", seq)
        var jobIds: [String: String] = [:]
        for i in order {
            let s = spec.steps[i]
            let j = try createJob(kind: s.kind, params: s.params, after: s.after.compactMap { jobIds[$0] },
                                  registry: registry, check: check)
            _ = try update(j.id) { $0.pipeline = id; $0.pipelineStep = s.name }
            jobIds[s.name] = j.id
        }
        var info = Chorus_V1_PipelineInfo()
        info.id = id
        info.name = spec.name
        info.submittedAtMs = nowMs()
        info.steps = spec.steps.map { s in
            var step = Chorus_V1_PipelineStep()
            step.name = s.name
            step.kind = s.kind
            step.params = s.params
            step.after = s.after
            step.jobID = jobIds[s.name] ?? ""
            return step
        }
        try store.put(PipelineKeys.key(id), try info.serializedBytes(), sync: true)
        return withJobs(info)
    }

    /// The stored record with each step's job as it is now and the pipeline's state.
    func withJobs(_ stored: Chorus_V1_PipelineInfo) -> Chorus_V1_PipelineInfo {
        var p = stored
        for i in p.steps.indices { if let j = jobs[p.steps[i].jobID] { p.steps[i].job = j } }
        let states = p.steps.map(\.job.state)
        if !states.allSatisfy(ended) {
            p.state = states.contains { $0 != .queued } ? .running : .queued
        } else if states.allSatisfy({ $0 == .succeeded }) {
            p.state = .succeeded
        } else {
            p.state = states.contains(.failed) ? .failed : .cancelled
        }
        return p
    }

    func pipeline(_ id: String) throws -> Chorus_V1_PipelineInfo {
        guard let bytes = try store.get(PipelineKeys.key(id)) else {
            throw ChorusError(.notFound, "no pipeline '\(id)'", hint: "see `chorus pipeline list`")
        }
        return withJobs(try Chorus_V1_PipelineInfo(serializedBytes: bytes))
    }

    func pipelines(limit: Int) throws -> [Chorus_V1_PipelineInfo] {
        var all: [Chorus_V1_PipelineInfo] = []
        try store.scan(prefix: Array(PipelineKeys.prefix.utf8)) { _, v in
            all.append(try Chorus_V1_PipelineInfo(borrowing: UnsafeRawBufferPointer(v)))
            return true
        }
        return all.sorted { $0.id > $1.id }.prefix(limit).map(withJobs)
    }
}
