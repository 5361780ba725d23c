import ChorusModel
import ChorusWire
import Foundation
import Synchronization

// The worker half of the job SDK's runtime: per-job state with a lifecycle the runtime owns, batched tasks, and
// cancellation.

/// The live job states of one worker. A state is created on first use (a broadcast or a task of the job), and
/// dropped when the coordinator releases the job (it ended or was cancelled) or when the process restarts. A job
/// released here stays refused for a while, so a late task cannot bring its state back.
final class WorkerJobTable: Sendable {
    struct Entry {
        let worker: any JobWorker
        let flag: CancellationFlag
        let created = ContinuousClock.now
    }
    private struct Table {
        var live: [String: Entry] = [:]
        /// Released job ids, oldest first (bounded).
        var released: [String] = []
        var releasedSet = Set<String>()
    }
    private let table = Mutex(Table())

    func entry(jobID: String, kind: String, params: [String: String], registry: JobRegistry,
               workerName: String) throws -> Entry {
        if let e = table.withLock({ $0.live[jobID] }) { return e }
        guard let job = registry[kind] else {
            throw ChorusError(.usage, "unknown job kind '\(kind)'",
                              hint: "this worker runs: \(registry.kinds.joined(separator: ", "))")
        }
        if table.withLock({ $0.releasedSet.contains(jobID) }) { throw TaskContext.cancelledError(jobID) }
        // Created outside the lock (a job's init may be slow); the first one stored wins.
        let made = try job.workerState(WorkerJobInfo(jobID: jobID, kind: kind, params: JobParams(params),
                                                     workerName: workerName))
        let fresh = Entry(worker: made, flag: CancellationFlag())
        return try table.withLock { t in
            if let e = t.live[jobID] { return e }
            if t.releasedSet.contains(jobID) { throw TaskContext.cancelledError(jobID) }
            t.live[jobID] = fresh
            return fresh
        }
    }

    /// Drops a job's state: running tasks see the cancellation flag, the state's `release()` frees its memory.
    /// Returns whether the job had state here.
    @discardableResult
    func release(_ jobID: String) -> Bool {
        let gone = table.withLock { t -> Entry? in
            if t.releasedSet.insert(jobID).inserted {
                t.released.append(jobID)
                if t.released.count > 4096 {
                    let old = t.released.removeFirst()
                    t.releasedSet.remove(old)
                }
            }
            return t.live.removeValue(forKey: jobID)
        }
        guard let gone else { return false }
        gone.flag.set()
        gone.worker.release()
        return true
    }

    /// Jobs with state on this worker (reported in heartbeats: `chorus node list` shows them as `job_states`).
    var liveJobs: [String] { table.withLock { $0.live.keys.sorted() } }

    /// Releases the state of jobs the coordinator no longer runs (a release this worker missed, or a broadcast
    /// of a job that never ran), if the state is older than `before` (the send time of the heartbeat whose reply
    /// listed `live`), so a job that started after that heartbeat keeps its state. Returns the jobs dropped.
    @discardableResult
    func releaseOrphans(live: Set<String>, before: ContinuousClock.Instant) -> [String] {
        let orphans = table.withLock { t in t.live.filter { !live.contains($0.key) && $0.value.created < before }.map(\.key) }
        for id in orphans { release(id) }
        return orphans.sorted()
    }
}

extension Worker {
    /// The jobs that have state on this worker now (created on first use, dropped at release).
    public var liveJobIDs: [String] { jobTable.liveJobs }

    /// A broadcast of a registered job kind.
    func receiveJobBroadcast(_ b: Chorus_V1_JobBroadcast) throws {
        let e = try jobTable.entry(jobID: b.jobID, kind: b.kind, params: b.params, registry: options.jobs,
                                   workerName: name)
        try e.worker.receive(JobBroadcast(jobID: b.jobID, stage: b.stage, payload: b.payload))
    }

    /// A task message covering several partitions this worker is primary of: they run in parallel (their blocking
    /// parts on the compute threads, one per core) and each gets its own result or error.
    func runJobTasks(_ t: Chorus_V1_RunTask) async throws -> Chorus_V1_TaskResults {
        try checkLease("tasks")
        if state.withLock({ $0.map.version }) < t.mapVersion { try await refreshMap() }
        let entry = try jobTable.entry(jobID: t.jobID, kind: t.kind, params: t.params, registry: options.jobs,
                                       workerName: name)
        let n = t.partitions.count
        state.withLock { $0.runningTasks += n }
        defer { state.withLock { $0.runningTasks -= n } }
        let delayMs = Int(t.params["debug_task_delay_ms"] ?? "") ?? 0
        let store = self.store
        let results = await withTaskGroup(of: (Int, Chorus_V1_TaskResult).self) { group in
            for (i, p) in t.partitions.enumerated() {
                group.addTask {
                    var r = Chorus_V1_TaskResult()
                    r.jobID = t.jobID; r.stage = t.stage; r.partition = p
                    do {
                        try self.checkPrimary([p], in: self.state.withLock { $0.map })
                        let ctx = TaskContext(jobID: t.jobID, kind: t.kind, stage: t.stage, partition: p,
                                              params: JobParams(t.params), attempt: t.attempt, workerName: self.name,
                                              data: PartitionView(partition: p, store: store),
                                              cancellation: entry.flag, worker: self)
                        if delayMs > 0 {
                            // Test knob: slow every task down so tests can disturb a running job (docs/cli.md).
                            // Sleeps in 50 ms steps so a cancelled job stops within the step.
                            let due = ContinuousClock.now + .milliseconds(min(delayMs, 60_000))
                            while ContinuousClock.now < due {
                                try ctx.checkCancelled()
                                try await Task.sleep(for: .milliseconds(50))
                            }
                        }
                        let out = try await entry.worker.run(ctx)
                        try ctx.checkCancelled()
                        // Fencing: a worker that lost its lease or the partition while the task ran returns no result.
                        try self.checkLease("task results")
                        let map = self.state.withLock { $0.map }
                        guard map.assignments[Int(p)].owner == self.nodeId else {
                            throw self.fence("worker \(self.name) lost partition \(p) while its task ran (map version \(map.version))")
                        }
                        r.payload = out.payload
                        r.recordsRead = out.recordsRead
                        r.mapVersion = map.version
                    } catch let e as ChorusError {
                        r.error = e.wire
                    } catch {
                        r.error = ChorusError(.internal, "\(error)").wire
                    }
                    return (i, r)
                }
            }
            var out = [Chorus_V1_TaskResult](repeating: .init(), count: n)
            for await (i, r) in group { out[i] = r }
            return out
        }
        if let since = entry.flag.since {
            // How long the job's running tasks took to stop after the release (the cancellation latency).
            logger.notice("tasks of a released job stopped", metadata: [
                "job-id": "\(t.jobID)", "partitions": "\(n)",
                "after-ms": "\(Int(((ContinuousClock.now - since).seconds * 1000).rounded()))"])
        }
        var reply = Chorus_V1_TaskResults()
        reply.results = results
        return reply
    }
}
