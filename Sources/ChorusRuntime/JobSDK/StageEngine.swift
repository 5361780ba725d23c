import ChorusModel
import ChorusWire
import Foundation
import Logging

// The coordinator half of the job SDK's runtime: runs a driver, and runs its stages over the partitions.

extension Coordinator {
    /// Runs a job of a registered kind: its driver, with a context bound to this job. Returns the summary.
    func runRegisteredJob(_ job: Chorus_V1_JobInfo, _ kind: any Job.Type) async throws -> String {
        let ctx = JobContext(coordinator: self, job: job, partitionCount: await state.map.partitionCount)
        return try await kind.drive(ctx)
    }

    /// One stage over every partition, one task message per worker: each message covers the ready partitions that
    /// worker is primary of (up to `maxBatch`), and the worker runs them in parallel on its cores. Results stay per
    /// partition, so a driver that merges in partition order gets the same sums whatever the number of workers.
    ///
    /// Retries and fencing are per partition, as they were with one message per partition: a partition whose
    /// result comes from a worker that no longer holds it is refused and run again on its new primary; membership
    /// churn (a moved partition, a dead or fenced worker) does not use up the attempts meant for real failures.
    /// At most two messages per worker are in flight, so a retried partition does not wait for a whole batch.
    func runJobStage(job: Chorus_V1_JobInfo, stage: String, broadcast: Broadcast?,
                     merge: (TaskOutput) throws -> Void) async throws {
        let partitionCount = await state.map.partitionCount
        var pending = Array(0..<partitionCount)
        var attempts: [UInt32: Int] = [:]
        var softRetries: [UInt32: Int] = [:]
        var notBefore: [UInt32: ContinuousClock.Instant] = [:]
        var inflight: [String: Int] = [:]
        var waitingSince: ContinuousClock.Instant?
        let taskTimeout = Int(job.params["task_timeout_s"] ?? "") ?? 1800
        let tracker = BroadcastTracker()
        typealias Batch = (node: String, partitions: [UInt32], result: Result<[Chorus_V1_TaskResult], any Error>)

        try await withThrowingTaskGroup(of: Batch.self) { group in
            var running = 0
            while !pending.isEmpty || running > 0 {
                let view = await state.dispatchView(pending, job: job.id)
                if view.cancelled {
                    group.cancelAll()
                    throw JobFailure(message: "cancelled")
                }
                // Group what can run now by primary.
                let now = ContinuousClock.now
                var byOwner: [String: (owner: (id: String, peer: Peer, cores: Int, incarnation: Int), parts: [UInt32])] = [:]
                var still: [UInt32] = []
                for p in pending {
                    if let nb = notBefore[p], nb > now { still.append(p); continue }
                    guard let owner = view.owners[p], inflight[owner.id, default: 0] < 2 else {
                        still.append(p); continue
                    }
                    byOwner[owner.id, default: (owner, [])].parts.append(p)
                }
                for (_, entry) in byOwner.sorted(by: { $0.key < $1.key }) {
                    let owner = entry.owner
                    let parts = entry.parts
                    inflight[owner.id, default: 0] += 1
                    running += 1
                    var t = Chorus_V1_RunTask()
                    t.jobID = job.id; t.kind = job.kind; t.stage = stage
                    t.partition = parts[0]
                    t.partitions = parts
                    t.mapVersion = view.mapVersion; t.params = job.params
                    t.attempt = UInt32(parts.map { attempts[$0, default: 0] }.max()! + 1)
                    let task = t
                    // A batch may take as long as its partitions one after the other on each core.
                    let rounds = (parts.count + max(1, owner.cores) - 1) / max(1, owner.cores)
                    let timeout = Duration.seconds(min(taskTimeout * max(1, rounds), 7 * 24 * 3600))
                    let recipient = Recipient(node: owner.id, incarnation: owner.incarnation)
                    let metrics = self.metrics
                    group.addTask {
                        let sent = ContinuousClock.now
                        do {
                            if let broadcast {
                                let peer = owner.peer
                                try await tracker.ensure(owner.id, owner.incarnation) {
                                    var b = Chorus_V1_JobBroadcast()
                                    b.jobID = job.id
                                    b.kind = job.kind
                                    b.stage = stage
                                    b.params = job.params
                                    b.payload = try broadcast.build(recipient)
                                    do {
                                        _ = try await peer.call(.jobBroadcast(b), timeout: .seconds(120))
                                        broadcast.delivered(recipient, true)
                                    } catch {
                                        broadcast.delivered(recipient, false)
                                        throw error
                                    }
                                }
                            }
                            guard case let .taskResults(r) = try await owner.peer.call(.runTask(task), timeout: timeout)
                            else { throw ChorusError(.internal, "unexpected reply to a task") }
                            guard r.results.count == parts.count,
                                  zip(r.results, parts).allSatisfy({ $0.partition == $1 }) else {
                                throw ChorusError(.internal, "worker \(owner.id) answered \(r.results.count) results for "
                                                  + "\(parts.count) partitions, or not in the order asked")
                            }
                            metrics.timer("chorus_cluster_task_duration_seconds", [("kind", job.kind)])
                                .recordNanoseconds((ContinuousClock.now - sent).nanoseconds)
                            metrics.counter("chorus_cluster_tasks_total", [("kind", job.kind), ("outcome", "ok")]).increment()
                            return (owner.id, parts, .success(r.results))
                        } catch {
                            metrics.counter("chorus_cluster_tasks_total", [("kind", job.kind), ("outcome", "error")]).increment()
                            if let e = error as? ChorusError, e.code == .unavailable {
                                tracker.forget(owner.id, owner.incarnation)
                            }
                            return (owner.id, parts, .failure(error))
                        }
                    }
                }
                pending = still
                if running == 0 {
                    // Nothing can run: some partitions have no live owner (or are backing off).
                    let since = waitingSince ?? .now
                    waitingSince = since
                    if ContinuousClock.now - since > .seconds(600) {
                        throw JobFailure(message: "partitions \(pending.prefix(8).map(String.init).joined(separator: ",")) "
                                         + "had no live owner for 10 minutes; start their worker again and resubmit")
                    }
                    _ = try? await state.update(job.id) { $0.stage = "\(stage): waiting for owners of \(pending.count) partition(s)" }
                    try await Task.sleep(for: .milliseconds(200))
                    continue
                }
                waitingSince = nil
                guard let (node, parts, result) = try await group.next() else { continue }
                running -= 1
                inflight[node, default: 1] -= 1
                // One outcome per partition: the batch's error applies to all of them.
                var outcomes: [(UInt32, Result<Chorus_V1_TaskResult, any Error>)] = []
                switch result {
                case let .success(rs):
                    for r in rs {
                        outcomes.append((r.partition, r.hasError ? .failure(Peer.error(r.error, role: "worker \(node)")) : .success(r)))
                    }
                case let .failure(error):
                    outcomes = parts.map { ($0, .failure(error)) }
                }
                var done: UInt32 = 0, retried: UInt32 = 0, fenced: UInt32 = 0
                let stillHeld = await state.held(by: node, outcomes.map(\.0))
                for (p, outcome) in outcomes {
                    switch outcome {
                    case let .success(r) where !stillHeld.contains(p):
                        // Fencing: the worker lost the partition while the task ran; its result may be stale.
                        logger.warning("task result refused: its worker no longer holds the partition", metadata: [
                            "job-id": "\(job.id)", "partition": "\(p)", "node": "\(node)", "result-map-version": "\(r.mapVersion)"])
                        fenced += 1
                        notBefore[p] = .now + .milliseconds(100)
                        pending.append(p)
                    case let .success(r):
                        try merge(TaskOutput(partition: p, payload: r.payload, recordsRead: r.recordsRead))
                        done += 1
                    case let .failure(error):
                        if let e = error as? ChorusError, e.code == .jobFailed, await state.isCancelled(job.id) {
                            throw JobFailure(message: "cancelled")
                        }
                        let churn = (error as? ChorusError).map { [.wrongOwner, .fenced, .unreachable, .unavailable].contains($0.code) } ?? false
                        if churn { softRetries[p, default: 0] += 1 }
                        let n = churn && softRetries[p]! <= 100 ? attempts[p, default: 0] : attempts[p, default: 0] + 1
                        attempts[p] = n
                        logger.warning("task failed; will retry", metadata: [
                            "job-id": "\(job.id)", "partition": "\(p)", "attempt": "\(n)", "error": "\(error)"])
                        if n >= options.maxTaskAttempts {
                            throw JobFailure(message: "partition \(p), stage \(stage) failed \(n) times; last error: \(error)")
                        }
                        retried += 1
                        // Churn (an owner moving, cut off or fenced) backs off too: a cut-off worker now fails
                        // requests within milliseconds, and 100 soft retries must cover minutes, not seconds.
                        let backoff = churn ? softRetries[p, default: 1] : n
                        notBefore[p] = .now + .milliseconds(250 * max(1, min(backoff, 8)))
                        pending.append(p)
                    }
                }
                let (d, rt, f) = (done, retried, fenced)
                if rt > 0 { metrics.counter("chorus_cluster_task_retries_total", [("kind", job.kind)]).increment(by: Int(rt)) }
                if f > 0 { metrics.counter("chorus_cluster_task_fenced_results_total", [("kind", job.kind)]).increment(by: Int(f)) }
                _ = try await state.update(job.id) {
                    $0.tasksDone += d; $0.taskRetries += rt; $0.fencedResults += f
                    if d > 0 { $0.stage = stage }
                }
            }
        }
    }
}
