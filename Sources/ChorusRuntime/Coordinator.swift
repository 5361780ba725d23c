import ChorusAnalytics
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import Logging
import Synchronization
import SwiftProtobuf

public struct CoordinatorOptions: Sendable {
    public var bind: String
    public var dataDir: String
    public var partitions: UInt32?
    /// Replication factor R for a new cluster (default 2); fixed once the cluster exists.
    public var replication: UInt32?
    public var timing = MembershipTiming()
    public var moves = MoveLimits()
    public var maxTaskAttempts = 8
    /// The job kinds this coordinator runs (the `chorus` program passes `StandardJobs.registry`).
    public var jobs = JobRegistry.empty
    /// Refuse an approval of a document version by its own author (`chorus coordinator --block-self-approval`).
    public var blockSelfApproval = false
    /// CURVE keys and allow-list, or plaintext (`--insecure`).
    public var security = NodeSecurity.insecure
    /// A new cluster stores pseudonymous user ids made with the secret of this fingerprint (`--pseudonymous-ids`).
    public var pseudonymFingerprint: String?
    public init(bind: String, dataDir: String, partitions: UInt32? = nil, replication: UInt32? = nil) {
        self.bind = bind; self.dataDir = dataDir; self.partitions = partitions; self.replication = replication
    }
}

/// The coordinator: membership, the partition map, the job history, and the job engine.
public final class Coordinator: Sendable {
    let state: CoordinatorState
    let server: RequestServer
    let logger: Logger
    let options: CoordinatorOptions
    let store: Store
    /// The allow-list of keys (nil when plaintext).
    let access: AccessControl?
    public var endpoint: String { server.endpoint }
    /// The cluster's metrics (`/metrics` of `--http`); the cluster's state is read in `metricsExposition()`.
    public let metrics = NodeMetrics()
    /// The status page's alerts and when they were read (`latestAlerts`).
    let statusPageAlerts = Mutex<(at: ContinuousClock.Instant, json: String)?>(nil)
    let startedAt = ContinuousClock.now

    public init(options: CoordinatorOptions, logger: Logger) throws {
        self.options = options
        self.logger = logger
        do {
            store = try Store(path: options.dataDir + "/coordinator")
        } catch {
            throw ChorusError(.storage, "\(error)")
        }
        do {
            let moved = try SentimentResultKeys.migrate(store)
            if moved > 0 {
                logger.notice("moved the sentiment results to their job SDK keys", metadata: ["records": "\(moved)"])
            }
        } catch {
            throw ChorusError(.storage, "cannot migrate the stored sentiment results: \(error)")
        }
        state = try CoordinatorState(store: store, partitionCount: options.partitions,
                                     replicationFactor: options.replication, timing: options.timing,
                                     limits: options.moves, security: options.security,
                                     pseudonymFingerprint: options.pseudonymFingerprint)
        access = try options.security.allowListPath.map(AccessControl.init(path:))
        if access != nil { HandshakeDenials.log(to: logger) }
        server = try RequestServer(bind: options.bind, security: options.security, access: access)
        (mapChanges, mapChanged) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The coordinator's blocking store writes outside `CoordinatorState` (models, the ALS serving model, sentiment
    /// alerts and series, job drivers' results through `JobContext`) run here, on a thread of its own, never on the Swift cooperative pool: a synced put blocks
    /// for an fsync, and on 2 cores two of them used to leave nothing to answer heartbeats. The queue is serial,
    /// which also serializes model stores (a new version number is the latest + 1, read and written in one job).
    let storeQueue = BlockingQueue(label: "coord.store")

    /// The item factors of the latest `als` job, for `recommend` and `similar`.
    let servingModel = Mutex<ALSServingModel?>(nil)

    /// Signals the map pusher; coalesces bursts of changes into one push of the newest map.
    let mapChanges: AsyncStream<Void>
    let mapChanged: AsyncStream<Void>.Continuation
    /// Counts ended moves, so the planner starts the next one at once instead of at its next 300 ms round.
    let movesEnded = Atomic<UInt64>(0)

    public func run() async {
        logger.info("coordinator listening", metadata: ["endpoint": "\(endpoint)"])
        await loadShippedModel()
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.server.serve(logger: self.logger, metrics: self.metrics,
                                        readOnlyKinds: self.options.jobs.readOnlyKinds,
                                        observe: { await self.audit($0, $1, $2) }) { try await self.handle($0) }
            }
            group.addTask {
                while !Task.isCancelled {
                    do {
                        let changed = try await self.state.sweep()
                        let notes = await self.state.takeSweepNotes()
                        for n in notes { self.logger.warning("\(n)") }
                        if changed {
                            if notes.isEmpty {
                                self.logger.warning("worker declared dead or read-only; its partitions failed over to replicas")
                            }
                            self.mapChanged.yield()
                        }
                    } catch {
                        self.logger.error("membership sweep failed", metadata: ["error": "\(error)"])
                    }
                    try? await Task.sleep(for: .milliseconds(250))
                }
            }
            group.addTask { await self.reconcileLoop() }
            group.addTask { await self.pushLoop() }
            group.addTask { await self.runScheduler() }  // jobs with `after` (Pipelines.swift)
            for id in await self.state.resumableNow {
                self.logger.notice("resuming job after a coordinator restart", metadata: ["job-id": "\(id)"])
                group.addTask { await self.runJob(id) }
            }
        }
    }

    /// Plans and starts partition moves every 300 ms (and right after each one ends).
    func reconcileLoop() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                do {
                    let before = await state.map.version
                    let started = try await state.reconcile()
                    if await state.map.version != before { mapChanged.yield() }
                    for m in started {
                        logger.info("partition move started", metadata: [
                            "partition": "\(m.partition)", "from": "\(m.from)", "to": "\(m.to)",
                            "leaving": "\(m.leaving ?? "-")"])
                        group.addTask { await self.runMove(m) }
                    }
                } catch {
                    logger.error("planning failed", metadata: ["error": "\(error)"])
                }
                // Next round after 300 ms, or as soon as a move ends (a slot is free, and the map changed).
                let ended = movesEnded.load(ordering: .acquiring)
                for _ in 0..<30 where movesEnded.load(ordering: .acquiring) == ended && !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
        }
    }

    /// Runs one move: make sure the primary forwards new writes to the learner, have the learner copy the
    /// partition from the primary, then flip the map. Any failure drops the learner (its partial copy is deleted
    /// by the learner when it sees the map) and leaves the old holders serving.
    func runMove(_ m: PlannedMove) async {
        do {
            // 1. The primary must hold the learner's map version with no write in flight from an older one.
            let deadline = ContinuousClock.now + .seconds(15)
            while await state.applied(m.from) < m.version {
                if ContinuousClock.now > deadline {
                    throw ChorusError(.unavailable, "primary \(m.from) did not apply map version \(m.version)")
                }
                let push = await state.mapWithNodes()
                if case let .mapPush(r) = try await m.fromPeer.call(.mapPush(push), timeout: .seconds(5)) {
                    await state.noteApplied(m.from, r.appliedVersion)
                }
                if await state.applied(m.from) < m.version { try await Task.sleep(for: .milliseconds(50)) }
            }
            // 2. The learner copies (throttled); new writes reach it through replication meanwhile.
            var c = Chorus_V1_CopyPartition()
            c.partition = m.partition
            c.sourceID = m.from
            c.sourceAddress = m.fromAddress
            c.sourcePublicKey = m.fromPublicKey
            c.mapVersion = m.version
            c.rateBytesPerS = options.moves.rateBytesPerSecond
            guard case let .copyPartition(reply) = try await m.toPeer.call(.copyPartition(c), timeout: .seconds(6 * 3600))
            else { throw ChorusError(.internal, "unexpected reply to copy_partition") }
            // 3. Flip.
            if try await state.completeMove(m) {
                metrics.counter("chorus_cluster_moves_finished_total", [("outcome", "done")]).increment()
                logger.info("partition move done", metadata: [
                    "partition": "\(m.partition)", "to": "\(m.to)", "keys": "\(reply.keys)", "bytes": "\(reply.bytes)",
                    "files": "\(reply.files)", "replayed-writes": "\(reply.replayedWrites)"])
            } else {
                logger.warning("partition move dropped: the learner left the map meanwhile",
                               metadata: ["partition": "\(m.partition)", "to": "\(m.to)"])
            }
        } catch {
            metrics.counter("chorus_cluster_moves_finished_total", [("outcome", "failed")]).increment()
            logger.warning("partition move failed; the old holders keep serving", metadata: [
                "partition": "\(m.partition)", "to": "\(m.to)", "error": "\(error)"])
            try? await state.abortMove(m)
        }
        movesEnded.add(1, ordering: .releasing)
        mapChanged.yield()
    }

    /// Pushes the newest map to every live worker after changes (heartbeats would bring it within 500 ms too).
    func pushLoop() async {
        for await _ in mapChanges {
            let map = await state.mapWithNodes()
            let peers = await state.livePeers()
            await withDiscardingTaskGroup { group in
                for (id, peer) in peers {
                    group.addTask {
                        if case let .mapPush(r)? = try? await peer.call(.mapPush(map), timeout: .seconds(2)) {
                            await self.state.noteApplied(id, r.appliedVersion)
                        }
                    }
                }
            }
        }
    }

    /// Stops accepting requests. Cancel the task running `run()` and await it, then call `closeStore()`.
    public func shutdown() { server.close() }

    /// Closes RocksDB. Call only after `run()` has returned.
    public func closeStore() { store.close() }

    /// The cluster status, with the requests this coordinator refused as invalid.
    func status() async -> Chorus_V1_ClusterStatus {
        var s = await state.status()
        s.rejected = server.rejected
        return s
    }

    func handle(_ req: Chorus_V1_Request) async throws -> ResponseBody {
        switch req.body {
        case let .registerWorker(r):
            let map = try await state.register(r)
            logger.info("worker registered", metadata: ["node-id": "\(r.nodeID)", "name": "\(r.name)",
                                                        "address": "\(r.address)"])
            var reply = Chorus_V1_RegisterReply()
            reply.partitionMap = map
            reply.heartbeatIntervalMs = UInt32(options.timing.heartbeatIntervalMs)
            mapChanged.yield()  // other workers learn the (possibly new) address
            return .registerWorker(reply)
        case let .keysReload(r):
            return .admin(try await reloadKeys(r))
        case let .audit(q):
            return .audit(try await auditLog(q))
        case let .nodeAdmin(a):
            var reply = Chorus_V1_AdminReply()
            reply.message = try await state.admin(a)
            logger.notice("node admin", metadata: ["node": "\(a.node)", "action": "\(a.action)", "result": "\(reply.message)"])
            mapChanged.yield()
            reply.status = await status()
            return .admin(reply)
        case .rebalance:
            let before = await state.map.version
            let started = try await state.reconcile()
            for m in started { Task { await self.runMove(m) } }
            if await state.map.version != before { mapChanged.yield() }
            var reply = Chorus_V1_AdminReply()
            let planned = await state.plannedCopies()
            let after = await state.map.version
            reply.message = started.isEmpty && planned == 0 && before == after
                ? "already balanced: nothing to move"
                : "started \(started.count) move(s); \(planned) more planned"
            reply.status = await status()
            return .admin(reply)
        case let .heartbeat(h): return .heartbeat(try await state.heartbeat(h))
        case .sealPartitions:
            return .ack(.init())  // deprecated no-op
        case let .recommend(r): return .recommendations(try await recommend(r))
        case let .similar(r): return .recommendations(try similar(r))
        case let .modelList(r): return .modelList(try listModels(r))
        case let .sentimentQuery(q): return .sentiment(try sentimentQuery(q))
        case let .jobResult(r): return .jobResult(try await jobResult(r))
        case let .documentPut(r): return .document(try await putDocument(r))
        case let .documentGet(r): return .document(try await getDocument(r))
        case let .documentList(r): return .documentList(try await listDocuments(r))
        case let .documentApprove(r): return .document(try await approveDocument(r))
        case let .documentEvent(r): return .document(try await documentEvent(r))
        case let .modelGet(r): return .model(try getModel(r))
        case let .modelPut(r):
            var reply = Chorus_V1_ModelReply()
            reply.summary = try await storeModel(try SentimentModelFile.decode([UInt8](r.file)), name: r.name.isEmpty ? nil : r.name)
            return .model(reply)
        case .clusterStatus: return .clusterStatus(await status())
        case .partitionMap: return .partitionMap(await state.mapWithNodes())
        case let .submitJob(s):
            let job = try await state.createJob(kind: s.kind, params: s.params, after: s.after,
                                                registry: options.jobs, check: submitCheck)
            logger.info("job submitted", metadata: ["job-id": "\(job.id)", "kind": "\(job.kind)"])
            startWhenReady(job)
            return .job(job)
        case let .jobStatus(j): return .job(try await state.job(j.id))
        case let .jobCancel(j):
            let job = try await state.cancel(j.id)
            // Workers stop the job's running tasks and drop its state now, not when the driver notices.
            if job.state == .cancelled { await releaseOnWorkers(job.id) }
            return .job(job)
        case let .jobList(l):
            var list = Chorus_V1_JobList()
            list.jobs = await state.list(limit: Int(l.limit == 0 ? 50 : l.limit))
            return .jobList(list)
        case let .submitPipeline(p): return .pipeline(try await submitPipeline(p))
        case let .pipelineStatus(p): return .pipeline(try await state.pipeline(p.id))
        case let .pipelineList(l):
            var list = Chorus_V1_PipelineList()
            list.pipelines = try await state.pipelines(limit: Int(l.limit == 0 ? 50 : l.limit))
            return .pipelineList(list)
        default:
            throw ChorusError(.usage, "the coordinator does not serve this request; send it to a worker")
        }
    }
}

// MARK: - Job engine

/// Tracks which nodes (by incarnation) already hold a job's broadcast catalog.
/// A stage's broadcast goes to each worker incarnation once. Tasks dispatched to the same worker at the same time
/// share that one send (they used to send it once each: with four tasks in flight, four copies of every factor
/// side per worker per half-iteration). A failed send is forgotten, so the next task sends it again.
final class BroadcastTracker: Sendable {
    private let sends = Mutex<[String: Task<Void, any Error>]>([:])

    func ensure(_ node: String, _ inc: Int, _ send: @escaping @Sendable () async throws -> Void) async throws {
        let key = "\(node)#\(inc)"
        let task = sends.withLock { s in
            if let t = s[key] { return t }
            let t = Task { try await send() }
            s[key] = t
            return t
        }
        do {
            try await task.value
        } catch {
            sends.withLock { s in if s[key] == task { s.removeValue(forKey: key) } }
            throw error
        }
    }

    func forget(_ node: String, _ inc: Int) { _ = sends.withLock { $0.removeValue(forKey: "\(node)#\(inc)") } }
}

extension Coordinator {
    struct JobFailure: Error { let message: String }

    func runJob(_ id: String) async {
        do {
            let job = try await state.update(id) { $0.state = .running; $0.startedAtMs = nowMs() }
            let report: String
            if let kind = options.jobs[job.kind] {
                report = try await runRegisteredJob(job, kind)
            } else {
                throw JobFailure(message: "this coordinator does not run job kind '\(job.kind)'")
            }
            _ = try await state.update(id) { j in
                if j.state == .running {
                    j.state = .succeeded
                    j.summaryJson = report
                    j.finishedAtMs = nowMs()
                    j.stage = "done"
                }
            }
            logger.info("job succeeded", metadata: ["job-id": "\(id)"])
        } catch let f as JobFailure {
            logger.warning("job failed", metadata: ["job-id": "\(id)", "error": "\(f.message)"])
            _ = try? await state.update(id) { j in
                if j.state == .running || j.state == .queued {
                    j.state = .failed; j.error = f.message; j.finishedAtMs = nowMs()
                }
            }
        } catch {
            logger.error("job failed", metadata: ["job-id": "\(id)", "error": "\(error)"])
            _ = try? await state.update(id) { j in
                if j.state == .running || j.state == .queued {
                    j.state = .failed; j.error = "\(error)"; j.finishedAtMs = nowMs()
                }
            }
        }
        // Workers drop the job's broadcast data.
        await releaseOnWorkers(id)
    }

    /// A kind's own submit checks (`Job.checkSubmit`), with what they may look at on the coordinator.
    func submitCheck(_ kind: any Job.Type, _ params: JobParams) throws {
        try kind.checkSubmit(params, SubmitContext(modelExists: { [self] name, version in
            try self.modelExists(name: name, version: version)
        }))
    }

    /// Tells every live worker that a job ended: its running tasks stop and its per-job state is dropped.
    func releaseOnWorkers(_ id: String) async {
        await withDiscardingTaskGroup { group in
            for (_, peer) in await state.livePeers() {
                group.addTask {
                    var r = Chorus_V1_JobRef()
                    r.id = id
                    _ = try? await peer.call(.jobRelease(r), timeout: .seconds(2))
                }
            }
        }
    }
}
