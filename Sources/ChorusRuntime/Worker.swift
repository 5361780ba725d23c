import ChorusAnalytics
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import Logging
import Synchronization
import SwiftProtobuf

/// Options of one worker process.
public struct WorkerOptions: Sendable {
    public var coordinator: String
    public var bind: String
    public var advertise: String?
    public var dataDir: String
    public var name: String?
    public var cores: Int
    /// How long an acknowledged heartbeat keeps this worker allowed to serve writes and tasks (ms). Must stay
    /// below the coordinator's dead timeout (5 s); see docs/operations.md.
    public var leaseMs = 3_000
    /// Free space on the data directory's disk below which the worker warns and takes no new partition copies,
    /// and above which a read-only store (after a full disk) is reopened (`--min-free-mib`).
    public var minFreeBytes: UInt64 = 512 << 20
    /// The job kinds this worker runs (the `chorus` program passes `StandardJobs.registry`).
    public var jobs = JobRegistry.empty
    /// After its first registration, clear a drain left on this node (`--undrain-on-start`): for deployments that
    /// drain a worker whenever it stops (a Kubernetes preStop hook, a systemd ExecStop), so that a restarted
    /// worker takes partitions again. It also cancels an operator's drain of a worker that restarts mid-drain.
    public var undrainOnStart = false
    /// CURVE keys and allow-list, or plaintext (`--insecure`).
    public var security = NodeSecurity.insecure

    public init(coordinator: String, bind: String, advertise: String? = nil, dataDir: String, name: String? = nil,
                cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.coordinator = coordinator; self.bind = bind; self.advertise = advertise
        self.dataDir = dataDir; self.name = name; self.cores = max(1, cores)
    }
}

/// A worker: holds a RocksDB shard of partitions, applies write batches and runs per-partition tasks.
public final class Worker: Sendable {
    public let nodeId: String
    public let name: String
    public let endpoint: String
    let options: WorkerOptions
    let store: Store
    let server: RequestServer
    let coordinator: Peer
    /// This worker's metrics (`/metrics` of `--http`); state gauges are read in `metricsExposition()`.
    public let metrics = NodeMetrics()
    let startedAt = ContinuousClock.now
    let logger: Logger
    /// Serial queue for write batches: duplicate detection must see earlier batches.
    let writeQueue = BlockingQueue(label: "chorus.worker.writes")
    /// Concurrent queue for tasks and reads (RocksDB reads are thread-safe).
    let computeQueue = BlockingQueue(label: "chorus.worker.compute", concurrent: true)
    /// Background compaction of deleted partitions (gives their disk space back).
    let maintenanceQueue = BlockingQueue(label: "chorus.worker.maintenance")

    struct State {
        var map = Chorus_V1_PartitionMap()
        var nonEmpty = Set<UInt32>()
        var runningTasks = 0
        var registered = false
        /// The coordinator has acknowledged the undrain of `options.undrainOnStart`.
        var undrainDone = false
        /// Writes and tasks are refused after this instant (see `MembershipTiming.leaseMs`).
        var leaseUntil: ContinuousClock.Instant?
        /// Copies this worker is receiving, by partition.
        var copies: [UInt32: Chorus_V1_MoveProgress] = [:]
        /// Replicated writes into partitions this worker is a new learner of, kept until their copy is ingested
        /// (Worker+Moves.swift): ingested files overwrite what the store holds, so these are applied again after.
        var catchUp: [UInt32: CatchUpLog] = [:]
        /// SST files written for move targets (`partition_file`), by file id, until fetched or stale.
        var outgoing: [String: OutgoingFile] = [:]
        /// Dropped partitions waiting for their compaction (`compactAway`).
        var compactionPending = Set<UInt32>()
        var compactionScheduled = false
        var lastDropAt: ContinuousClock.Instant?
        var fenced: UInt64 = 0
        var clusterId: String?
        /// Copies whose replicated writes from this primary get no reply, by node id: since when (the sending of
        /// the first unanswered write of the streak) and the last failure. Reported in heartbeats once the streak
        /// spans 3 s (a replica restarting within that is not reported), for 10 s after its last failure (a copy
        /// the coordinator dropped gets no more writes from here, so a success may never clear it).
        var unreachableCopies: [String: (since: ContinuousClock.Instant, last: ContinuousClock.Instant)] = [:]
    }
    let state = Mutex(State())
    /// Per-job state of the job kinds in `options.jobs` (the job SDK).
    let jobTable = WorkerJobTable()
    /// Shared WAL fsyncs for acknowledged writes.
    let commit: GroupCommit
    /// Sequence numbers of the change markers written with each batch (ChangeMarkers.swift).
    let changeSequence = ChangeSequence()
    /// Peers to other workers (replication and partition copies), by address.
    let workerPeers: WorkerPeers
    /// The allow-list of keys (nil when plaintext).
    let access: AccessControl?
    /// What was last logged about the disk (Worker+Storage.swift).
    let storageLog = Mutex(StorageLogState())

    public init(options: WorkerOptions, logger: Logger) throws {
        self.options = options
        self.nodeId = try Self.loadOrMintNodeId(dataDir: options.dataDir)
        self.name = options.name ?? "worker-\(nodeId.prefix(8))"
        var log = logger
        log[metadataKey: "node-id"] = "\(nodeId)"
        self.logger = log
        do {
            store = try Store(path: options.dataDir + "/shard")
        } catch {
            throw ChorusError(.storage, "\(error)")
        }
        commit = GroupCommit(store: store)
        access = try options.security.allowListPath.map(AccessControl.init(path:))
        if access != nil { HandshakeDenials.log(to: self.logger) }
        server = try RequestServer(bind: options.bind, security: options.security, access: access)
        workerPeers = WorkerPeers(security: options.security, sender: nodeId)
        let adv = options.advertise ?? server.endpoint.replacingOccurrences(of: "0.0.0.0", with: "127.0.0.1")
        endpoint = adv
        coordinator = try Peer(endpoint: options.coordinator, role: "coordinator", sender: nodeId, security: options.security)
        // Files of moves that were in flight when this process stopped: never resumed, so never needed.
        try? FileManager.default.removeItem(atPath: options.dataDir + "/" + Self.transferDirName)
        let known = try Self.partitionsWithData(store)
        let cluster = try? String(contentsOfFile: options.dataDir + "/cluster-id", encoding: .utf8)
        state.withLock {
            $0.nonEmpty = known
            $0.clusterId = cluster?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// Which partitions hold any key (one seek per non-empty partition).
    static func partitionsWithData(_ store: Store) throws -> Set<UInt32> {
        var out = Set<UInt32>()
        var from = ShardKeys.prefix(partition: 0)
        while true {
            var next: UInt32?
            try store.scan(from: from, to: nil) { key, _ in
                next = UInt32(key[0]) << 24 | UInt32(key[1]) << 16 | UInt32(key[2]) << 8 | UInt32(key[3])
                return false
            }
            guard let n = next else { break }
            out.insert(n)
            if n == UInt32.max { break }
            from = ShardKeys.prefix(partition: n + 1)
        }
        return out
    }

    static func loadOrMintNodeId(dataDir: String) throws -> String {
        let path = dataDir + "/node-id"
        do {
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
            if let s = try? String(contentsOfFile: path, encoding: .utf8) {
                let id = s.trimmingCharacters(in: .whitespacesAndNewlines)
                if !id.isEmpty { return id }
            }
            let id = "w-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "")
            try id.write(toFile: path, atomically: true, encoding: .utf8)
            return id
        } catch {
            throw ChorusError(.storage, "cannot use data dir \(dataDir): \(error.localizedDescription)")
        }
    }

    /// Serves requests and keeps the registration alive until cancelled.
    /// Registered with the coordinator, with a heartbeat acknowledged within the lease (3 s): what `/readyz` and
    /// `chorus_worker_registered` report. False while the coordinator is unreachable.
    public var isRegistered: Bool {
        state.withLock { $0.registered && ($0.leaseUntil.map { $0 > ContinuousClock.now } ?? false) }
    }

    public func run() async {
        logger.info("worker listening", metadata: ["endpoint": "\(endpoint)", "name": "\(name)"])
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.server.serve(logger: self.logger, metrics: self.metrics,
                                        readOnlyKinds: self.options.jobs.readOnlyKinds) { try await self.handle($0) }
            }
            group.addTask { await self.heartbeatLoop() }
            group.addTask { await self.storageWatchLoop() }
        }
    }

    /// Stops accepting requests. Cancel the task running `run()` and await it, then call `closeStore()`.
    public func shutdown() {
        server.close()
        coordinator.close()
        workerPeers.closeAll()
    }

    /// Closes RocksDB. Call only after `run()` has returned, when no request can touch the store.
    public func closeStore() {
        maintenanceQueue.drain()
        store.close()
    }

    // MARK: membership

    func heartbeatLoop() async {
        var backoff: Duration = .milliseconds(200)
        var tick = 0
        while !Task.isCancelled {
            let registered = state.withLock { $0.registered }
            let sent = ContinuousClock.now
            do {
                if !registered {
                    var r = Chorus_V1_RegisterWorker()
                    r.nodeID = nodeId; r.name = name; r.address = endpoint; r.cores = UInt32(options.cores)
                    r.publicKey = options.security.publicKey
                    guard case let .registerWorker(reply) = try await coordinator.call(.registerWorker(r),
                                                                                        timeout: .seconds(3)) else {
                        throw ChorusError(.internal, "unexpected reply to register")
                    }
                    try await applyMap(reply.partitionMap)
                    state.withLock { $0.registered = true; $0.leaseUntil = sent + .milliseconds(options.leaseMs) }
                    logger.info("registered with coordinator",
                                metadata: ["map-version": "\(reply.partitionMap.version)",
                                           "partitions": "\(held(reply.partitionMap).count)"])
                    backoff = .milliseconds(200)
                } else {
                    var hb = Chorus_V1_Heartbeat()
                    let s = state.withLock { ($0.map.version, $0.nonEmpty, $0.runningTasks, $0.copies, $0.fenced) }
                    hb.nodeID = nodeId; hb.mapVersion = s.0; hb.nonemptyPartitions = s.1.sorted()
                    hb.runningTasks = UInt32(s.2)
                    hb.appliedVersion = s.0
                    hb.moves = s.3.values.sorted { $0.partition < $1.partition }
                    hb.fenced = s.4
                    hb.rejected = server.rejected
                    hb.jobStates = jobTable.liveJobs
                    hb.bytesHeld = store.approximateBytes()
                    hb.storage = storageHealth()
                    hb.unreachableCopies = state.withLock { s in
                        s.unreachableCopies = s.unreachableCopies.filter { ContinuousClock.now - $0.value.last < .seconds(10) }
                        return s.unreachableCopies.filter { $0.value.last - $0.value.since >= .seconds(3) }.keys.sorted()
                    }
                    guard case let .heartbeat(reply) = try await coordinator.call(.heartbeat(hb),
                                                                                   timeout: .seconds(2)) else {
                        throw ChorusError(.internal, "unexpected reply to heartbeat")
                    }
                    if reply.hasPartitionMap { try await applyMap(reply.partitionMap) }
                    if reply.listsLiveJobs {
                        let dropped = jobTable.releaseOrphans(live: Set(reply.liveJobs), before: sent)
                        if !dropped.isEmpty {
                            logger.info("dropped the state of jobs the coordinator no longer runs",
                                        metadata: ["jobs": "\(dropped.joined(separator: ","))"])
                        }
                    }
                    state.withLock { $0.leaseUntil = sent + .milliseconds(options.leaseMs) }
                    backoff = .milliseconds(200)
                }
                if options.undrainOnStart, !state.withLock({ $0.undrainDone }) {
                    // Once, right after the first registration: retried later, it could cancel a drain an
                    // operator started after this worker came up.
                    state.withLock { $0.undrainDone = true }
                    var a = Chorus_V1_NodeAdmin()
                    a.node = nodeId; a.action = .undrain
                    do {
                        guard case let .admin(done) = try await coordinator.call(.nodeAdmin(a), timeout: .seconds(3)) else {
                            throw ChorusError(.internal, "unexpected reply to undrain")
                        }
                        logger.notice("undrained at start (--undrain-on-start)", metadata: ["result": "\(done.message)"])
                    } catch {
                        logger.warning("--undrain-on-start: the undrain failed; run `chorus node undrain \(name)` if this worker was drained",
                                       metadata: ["error": "\(error)"])
                    }
                }
                tick += 1
                if tick % 4 == 0 { try await collectGarbage() }
                try await Task.sleep(for: .milliseconds(500))
            } catch is CancellationError {
                return
            } catch let e as ChorusError where e.code == .notFound {
                logger.warning("coordinator does not know this worker; re-registering")
                state.withLock { $0.registered = false }
            } catch let e as ChorusError where e.code == .usage && e.message.contains("cluster") {
                logger.critical("\(e.message)")
                try? await Task.sleep(for: .seconds(5))
            } catch let e as ChorusError where e.code == .invalidInput {
                // A reply that fails validation (e.g. a malformed map): kept out, and asked for again later.
                logger.error("refused the coordinator's reply", metadata: ["error": "\(e.message.prefix(300))"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            } catch {
                if Task.isCancelled { return }
                logger.warning("coordinator unreachable; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }

    /// Partitions this worker holds in `map` in any role (primary, replica or learner).
    func held(_ map: Chorus_V1_PartitionMap) -> Set<UInt32> {
        Set(map.assignments.filter { $0.owner == nodeId || $0.replicas.contains(nodeId) || $0.learners.contains(nodeId) }
            .map(\.partition))
    }

    /// Adopts a newer map. Runs on the write queue, so every write checked against the old map has finished
    /// locally before the new one is visible. Data of partitions this worker no longer holds is deleted, and so
    /// is any leftover of a partition it is about to receive as a learner (the copy starts from nothing).
    func applyMap(_ m: Chorus_V1_PartitionMap) async throws {
        let (held, knownCluster) = state.withLock { ($0.map, $0.clusterId) }
        if let known = knownCluster, !m.clusterID.isEmpty, known != m.clusterID {
            throw ChorusError(.usage, "this worker's data belongs to cluster \(known), but the coordinator runs cluster "
                              + "\(m.clusterID); refusing to join",
                              hint: "point --coordinator at the right cluster, or start with an empty --data dir")
        }
        // Maps arrive from a socket (pushes, register and heartbeat replies): validated before anything changes, so
        // every map this worker holds has one assignment per partition, in partition order, and the partition
        // count never changes; `checkPrimary` and the other lookups by partition rely on it.
        try RequestValidation.partitionMap(m, held: held, clusterId: knownCluster)
        if knownCluster == nil, !m.clusterID.isEmpty {
            try? m.clusterID.write(toFile: options.dataDir + "/cluster-id", atomically: true, encoding: .utf8)
            state.withLock { $0.clusterId = m.clusterID }
        }
        let store = self.store
        let me = nodeId
        let dropped: [UInt32] = try await writeQueue.run { [self] in
            let (old, nonEmpty, copying) = state.withLock { ($0.map, $0.nonEmpty, Set($0.copies.keys)) }
            if m.version == old.version, !m.nodes.isEmpty, m.nodes != old.nodes {
                // Same placement, new member details (a worker restarted on a new address).
                state.withLock { $0.map.nodes = m.nodes }
                return []
            }
            // Only forward, and (re-checked here, against the map held now) never to another partition count.
            guard m.version > old.version, old.version == 0 || old.partitionCount == m.partitionCount else { return [] }
            let keep = Set(m.assignments.filter { $0.owner == me || $0.replicas.contains(me) || $0.learners.contains(me) }
                .map(\.partition))
            let wasLearner = Set(old.assignments.filter { $0.learners.contains(me) }.map(\.partition))
            let newLearner = Set(m.assignments.filter { $0.learners.contains(me) }.map(\.partition)).subtracting(wasLearner)
            var drop = nonEmpty.subtracting(keep).union(newLearner.intersection(nonEmpty)).subtracting(copying).sorted()
            if !drop.isEmpty {
                var wb = WriteBatch()
                for p in drop {
                    let pre = ShardKeys.prefix(partition: p)
                    wb.deleteRange(from: pre, to: Store.prefixEnd(pre) ?? [0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
                }
                do {
                    try store.write(wb, sync: true)
                } catch let e as StorageError where e.readOnly || e.diskFull {
                    // A read-only store still adopts the map (or its lease would run out): the data stays as stray
                    // partitions, deleted by `collectGarbage` once writes resume.
                    noteReadOnly(e)
                    drop = []
                }
            }
            state.withLock { s in
                s.map = m
                s.nonEmpty.subtract(drop)
                // A new learner records replicated writes from now on, until its copy is ingested.
                for p in newLearner { s.catchUp[p] = CatchUpLog() }
                for p in Array(s.catchUp.keys) where !m.assignments[Int(p)].learners.contains(me) { s.catchUp[p] = nil }
            }
            return drop
        }
        if !dropped.isEmpty {
            compactAway(dropped)
            logger.info("deleted partitions this worker no longer holds",
                        metadata: ["partitions": "\(dropped.map(String.init).joined(separator: ","))",
                                   "map-version": "\(m.version)"])
        }
    }

    /// Deletes leftovers of partitions not held (for example data written by a write that was checked against an
    /// older map, or an abandoned copy).
    func collectGarbage() async throws {
        let (map, nonEmpty, copying) = state.withLock { ($0.map, $0.nonEmpty, Set($0.copies.keys)) }
        guard map.version > 0 else { return }
        let stray = nonEmpty.subtracting(held(map)).subtracting(copying)
        guard !stray.isEmpty, store.readOnlyReason == nil else { return }
        let store = self.store
        let me = nodeId
        try await writeQueue.run { [self] in
            let now = state.withLock { $0.map }
            let keep = Set(now.assignments.filter { $0.owner == me || $0.replicas.contains(me) || $0.learners.contains(me) }
                .map(\.partition))
            var wb = WriteBatch()
            var gone: [UInt32] = []
            for p in stray where !keep.contains(p) {
                let pre = ShardKeys.prefix(partition: p)
                wb.deleteRange(from: pre, to: Store.prefixEnd(pre) ?? [0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
                gone.append(p)
            }
            try store.write(wb, sync: true)
            state.withLock { $0.nonEmpty.subtract(gone) }
        }
        compactAway(stray.sorted())
    }

    /// Compacts deleted partition ranges in the background, one partition at a time (a range spanning held
    /// partitions would overlap the memtable and make RocksDB switch the WAL outside the store's write lock).
    ///
    /// Partitions dropped in a burst (a drain hands over dozens within seconds) are compacted together once no
    /// partition was dropped for `compactionQuiet`, adjacent ones as one range: SST files span several partitions,
    /// so compacting them one by one rewrote the same files again and again, and competed with the moves for CPU.
    func compactAway(_ partitions: [UInt32]) {
        guard !partitions.isEmpty else { return }
        let start = state.withLock { s -> Bool in
            s.compactionPending.formUnion(partitions)
            s.lastDropAt = .now
            if s.compactionScheduled { return false }
            s.compactionScheduled = true
            return true
        }
        guard start else { return }
        let store = self.store
        Task { [self] in
            while true {
                let since = state.withLock { ContinuousClock.now - ($0.lastDropAt ?? .now) }
                if since >= Self.compactionQuiet { break }
                try? await Task.sleep(for: Self.compactionQuiet - since)
            }
            let parts = state.withLock { s -> [UInt32] in
                let p = s.compactionPending.sorted()
                s.compactionPending = []
                s.compactionScheduled = false
                return p
            }
            maintenanceQueue.submit {
                for (first, last) in Self.runs(parts) {
                    let from = ShardKeys.prefix(partition: first)
                    let to = last == UInt32.max ? [0xFF, 0xFF, 0xFF, 0xFF, 0xFF] : ShardKeys.prefix(partition: last + 1)
                    store.compactRange(from: from, to: to)
                }
            }
        }
    }

    /// Dropped partitions are compacted this long after the last drop.
    static let compactionQuiet: Duration = .seconds(2)

    /// Sorted partition numbers as runs of consecutive ones: [1, 2, 3, 7] → [(1, 3), (7, 7)].
    static func runs(_ sorted: [UInt32]) -> [(UInt32, UInt32)] {
        var out: [(UInt32, UInt32)] = []
        for p in sorted {
            if let last = out.last, last.1 &+ 1 == p, last.1 != UInt32.max { out[out.count - 1].1 = p } else { out.append((p, p)) }
        }
        return out
    }

    /// Refreshes the partition map from the coordinator (used when a peer holds a newer one).
    func refreshMap() async throws {
        guard case let .partitionMap(map) = try await coordinator.call(.partitionMap(.init()), timeout: .seconds(3))
        else { return }
        try await applyMap(map)
    }

    /// Refuses work once the lease ran out: the coordinator may already have moved this worker's partitions.
    func checkLease(_ what: String) throws {
        let ok = state.withLock { s in s.leaseUntil.map { ContinuousClock.now < $0 } ?? false }
        if !ok {
            state.withLock { $0.fenced += 1 }
            throw ChorusError(.fenced, "worker \(name) refuses \(what): its lease expired (no heartbeat "
                              + "acknowledged by the coordinator for \(options.leaseMs) ms)")
        }
    }

    func fence(_ message: String) -> ChorusError {
        state.withLock { $0.fenced += 1 }
        return ChorusError(.fenced, message)
    }

    /// Throws unless this worker is the primary of every partition in `map`.
    func checkPrimary(_ partitions: Set<UInt32>, in map: Chorus_V1_PartitionMap) throws {
        for p in partitions.sorted() {
            if p >= map.partitionCount {
                throw ChorusError(.usage, "partition \(p) does not exist (partition count \(map.partitionCount))")
            }
            if map.assignments[Int(p)].owner != nodeId {
                state.withLock { $0.fenced += 1 }
                throw ChorusError(.wrongOwner, "worker \(name) is not the primary of partition \(p) "
                                  + "(map version \(map.version))")
            }
        }
    }

    // MARK: requests

    /// The registered kind of a task or broadcast (BAD_REQUEST naming the field otherwise).
    func knownJob(_ kind: String, _ field: String) throws -> any Job.Type {
        guard let job = options.jobs[kind] else {
            throw RequestValidation.invalid(field, "unknown job kind '\(kind.prefix(60))' (this worker runs "
                                            + "\(options.jobs.kinds.joined(separator: ", ")))")
        }
        return job
    }

    func handle(_ req: Chorus_V1_Request) async throws -> ResponseBody {
        switch req.body {
        case let .writeBatch(b): return .writeBatch(try await write(b))
        case let .replicaWrite(r): return .ack(try await replicaWrite(r))
        case let .replicaBatch(r): return .ack(try await replicaBatch(r))
        case let .runTask(t):
            let job = try knownJob(t.kind, "run_task.kind")
            try RequestValidation.declaredParams(t.params, job.parameters + JobParameters.common,
                                                 kind: t.kind, field: "run_task.params")
            guard !t.partitions.isEmpty else {
                throw RequestValidation.invalid("run_task.partitions", "a task of job kind \(t.kind) names no partitions")
            }
            return .taskResults(try await runJobTasks(t))
        case let .jobBroadcast(b):
            let job = try knownJob(b.kind, "job_broadcast.kind")
            try RequestValidation.declaredParams(b.params, job.parameters + JobParameters.common,
                                                 kind: b.kind, field: "job_broadcast.params")
            try receiveJobBroadcast(b)
            return .ack(.init())
        case let .jobRelease(r):
            jobTable.release(r.id)
            return .ack(.init())
        case let .profileGet(g): return .profile(try await profileGet(g))
        case let .profileScan(s): return .profileScan(try await profileScan(s))
        case .partitionMap:
            return .partitionMap(state.withLock { $0.map })
        case .keysReload:
            return .admin(try reloadKeys())
        case let .mapPush(m):
            try await applyMap(m)
            var r = Chorus_V1_MapPushReply()
            r.mapVersion = state.withLock { $0.map.version }
            r.appliedVersion = r.mapVersion
            return .mapPush(r)
        case let .partitionChunk(c): return .partitionChunk(try await partitionChunk(c))
        case let .copyPartition(c): return .copyPartition(try await copyPartition(c))
        case let .partitionFile(f): return .partitionFile(try await partitionFile(f))
        case let .fileChunk(f): return .fileChunk(try await fileChunk(f))
        case let .userHistory(r): return .userHistory(try await userHistory(r))
        default:
            throw ChorusError(.usage, "a worker does not serve this request; send it to the coordinator")
        }
    }

    func write(_ batch: Chorus_V1_WriteBatch) async throws -> Chorus_V1_WriteReply {
        // Validate everything before writing anything: the batch is all-or-nothing.
        for put in batch.puts {
            guard (1...9).contains(put.role.rawValue) else {
                throw ChorusError(.usage, "put with unknown role \(put.role.rawValue)")
            }
            guard !put.keyID.isEmpty, put.keyID.count <= 1024 else {
                throw ChorusError(.usage, "put with an empty or oversized key id")
            }
            let ok: Bool
            switch put.role {
            case .user: ok = (try? Chorus_V1_User(serializedBytes: put.value)) != nil
            case .content: ok = (try? Chorus_V1_Content(serializedBytes: put.value)) != nil
            case .interactionByUser, .interactionByContent:
                // A NaN value would poison every sum a job takes over it (and JSON cannot encode the result).
                guard let i = try? Chorus_V1_Interaction(serializedBytes: put.value) else { ok = false; break }
                if !i.value.isFinite { throw RequestValidation.invalid("write_batch.puts.value", "interaction \(i.id.prefix(60)) has a non-finite value") }
                ok = true
            case .labelledText:
                guard let t = try? Chorus_V1_LabelledText(serializedBytes: put.value) else { ok = false; break }
                if !t.weight.isFinite { throw RequestValidation.invalid("write_batch.puts.value", "labelled text with a non-finite weight") }
                ok = true
            case .spend:
                // The same rules as the parser's: a day or a week, spend and outcomes finite and never negative.
                guard let m = try? Chorus_V1_Spend(serializedBytes: put.value) else { ok = false; break }
                if m.period != .day && m.period != .week {
                    throw RequestValidation.invalid("write_batch.puts.value", "spend of \(m.channel.prefix(60)) on \(m.date.prefix(20)) has no period (day or week)")
                }
                for (name, v) in [("spend", m.spend), ("impressions", m.impressions), ("clicks", m.clicks),
                                  ("conversions", m.conversions), ("revenue", m.revenue)] where !(v.isFinite && v >= 0) {
                    throw RequestValidation.invalid("write_batch.puts.value", "spend of \(m.channel.prefix(60)) on \(m.date.prefix(20)) has \(name) \(v) (must be finite and ≥ 0)")
                }
                ok = true
            case .outcome:
                // The parser's rules: a known event and arm, a version, a finite value ≥ 0, a count ≥ 1.
                guard let m = try? Chorus_V1_Outcome(serializedBytes: put.value) else { ok = false; break }
                let what = "outcome of \(m.user.prefix(60)) in campaign \(m.campaign.prefix(60))"
                if OutcomeEvent(rawValue: m.event) == nil || !SpendRecord.arms.contains(m.arm) || m.version == 0 || m.count == 0 {
                    throw RequestValidation.invalid("write_batch.puts.value", "\(what) has an unknown event or arm, no version or a zero count")
                }
                if !(m.value.isFinite && m.value >= 0) {
                    throw RequestValidation.invalid("write_batch.puts.value", "\(what) has value \(m.value) (must be finite and ≥ 0)")
                }
                ok = true
            default: ok = (try? Chorus_V1_Follow(serializedBytes: put.value)) != nil
            }
            if !ok { throw ChorusError(.usage, "put value does not decode as its role's record type") }
        }
        try checkLease("writes")
        if state.withLock({ $0.map.version }) < batch.mapVersion { try await refreshMap() }
        let parts = Set(batch.puts.map(\.partition))
        let store = self.store
        try checkWritable()
        let (counted, copies, map, ticket) = try await writeQueue.run { [self] () throws -> (Chorus_V1_WriteReply, [String: WriteBatch], Chorus_V1_PartitionMap, UInt64) in
            // Checked against the map inside the write queue: a map change cannot slip in between.
            let map = state.withLock { $0.map }
            try checkPrimary(parts, in: map)
            // The other copies (replicas and learners) of each partition written: none with R=1.
            var copiesOf: [UInt32: [String]] = [:]
            for p in parts {
                let a = map.assignments[Int(p)]
                let nodes = (a.replicas + a.learners).filter { $0 != nodeId }
                if !nodes.isEmpty { copiesOf[p] = nodes }
            }
            // What each copy receives: the rows written here, in the same order, as one RocksDB batch per copy.
            var copies: [String: WriteBatch] = [:]
            var reply = Chorus_V1_WriteReply()
            var rows: [(key: [UInt8], value: [UInt8], partition: UInt32)] = []
            rows.reserveCapacity(batch.puts.count)
            var seen: [[UInt8]: [UInt8]] = [:]  // counted keys written earlier in this same batch
            // Change markers of the users and content this batch writes (one per id and kind), for the
            // incremental features job.
            var changes = ChangeMarkers.Collector()
            for put in batch.puts {
                let key = ShardKeys.key(partition: put.partition, role: ShardKeys.role(put.role), id: [UInt8](put.keyID))
                let value = [UInt8](put.value)
                // Only the counted copy needs the duplicate check; the other copy of a record is
                // written as is (rewriting identical bytes changes nothing).
                if put.counted {
                    if try (seen[key] ?? store.get(key)) == value {
                        reply.duplicates += 1
                        // A resend after a copy did not confirm: that copy may have missed the marker too.
                        if batch.resend { changes.add(partition: put.partition, role: put.role, keyID: put.keyID) }
                        // Still sent to the copies: an earlier attempt may have stopped before reaching them.
                        for n in copiesOf[put.partition] ?? [] { copies[n, default: WriteBatch()].put(key, value) }
                        continue
                    }
                    seen[key] = value
                    reply.stored += 1
                }
                rows.append((key, value, put.partition))
                changes.add(partition: put.partition, role: put.role, keyID: put.keyID)
            }
            let recordRows = rows.count
            if !changes.isEmpty { rows += changes.rows(sequence: changeSequence.next()) }
            // Sorted inserts are cheaper for the memtable skip list. Equal keys keep their order (last wins).
            let order = rows.indices.sorted { rows[$0].key.lexicographicallyPrecedes(rows[$1].key)
                || (rows[$0].key == rows[$1].key && $0 < $1) }
            var wb = WriteBatch()
            for i in order {
                wb.put(rows[i].key, rows[i].value)
                for n in copiesOf[rows[i].partition] ?? [] { copies[n, default: WriteBatch()].put(rows[i].key, rows[i].value) }
            }
            reply.written = UInt32(recordRows)
            try storageWrite { try store.write(wb) }
            let ticket = commit.noteWritten()
            state.withLock { $0.nonEmpty.formUnion(parts) }
            return (reply, copies, map, ticket)
        }
        // The local fsync (shared with other batches) and the copies run at the same time.
        async let durable: Void = waitDurable(ticket)
        var reply = counted
        do {
            try await forward(prepared: copies, map: map)
        } catch let e as ChorusError where e.code == .unavailable && batch.acceptUnconfirmed {
            // Written and counted here; the sender resends until the copies confirm. An error instead would make
            // its retry count these records as duplicates of themselves.
            reply.copiesUnconfirmed = e.message
        }
        try await durable
        metrics.counter("chorus_worker_write_batches_total").increment()
        metrics.counter("chorus_worker_records_stored_total").increment(by: Int(reply.stored))
        metrics.counter("chorus_worker_duplicate_records_total").increment(by: Int(reply.duplicates))
        metrics.counter("chorus_worker_rows_written_total").increment(by: Int(reply.written))
        return reply
    }

    /// Sends each copy the rows it holds of what the primary just wrote, as a prepared RocksDB batch
    /// (`replica_batch`): the copy checks the keys' partitions and applies the batch without decoding a record.
    func forward(prepared copies: [String: WriteBatch], map: Chorus_V1_PartitionMap) async throws {
        guard !copies.isEmpty else { return }
        var requests: [String: RequestBody] = [:]
        for (node, wb) in copies {
            var rb = Chorus_V1_ReplicaBatch()
            rb.mapVersion = map.version
            rb.primary = nodeId
            rb.batch = Data(wb.prepared())
            rb.count = UInt32(wb.count)
            requests[node] = .replicaBatch(rb)
        }
        try await send(requests, map: map)
    }

    /// Sends what the primary just wrote to every replica and learner of the partitions involved, in parallel,
    /// and returns once all of them wrote it durably. A copy that cannot be confirmed fails the whole request, so
    /// the client retries it (the retry is idempotent) once the map no longer lists the missing node.
    func forward(_ ops: [Chorus_V1_ReplicaOp], map: Chorus_V1_PartitionMap) async throws {
        var byNode: [String: [Chorus_V1_ReplicaOp]] = [:]
        for op in ops {
            let a = map.assignments[Int(op.partition)]
            for n in a.replicas + a.learners where n != nodeId { byNode[n, default: []].append(op) }
        }
        guard !byNode.isEmpty else { return }
        var requests: [String: RequestBody] = [:]
        for (node, nodeOps) in byNode {
            var rw = Chorus_V1_ReplicaWrite()
            rw.mapVersion = map.version
            rw.primary = nodeId
            rw.ops = nodeOps
            requests[node] = .replicaWrite(rw)
        }
        try await send(requests, map: map)
    }

    /// Sends one replication request to each copy in parallel, and returns once all of them wrote it durably. A copy
    /// that cannot be confirmed fails the whole request (see `forward`).
    private func send(_ requests: [String: RequestBody], map: Chorus_V1_PartitionMap) async throws {
        let byNode = requests
        let infos = Dictionary(map.nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var missing: [String] = []
        let failures = Locked<[String]>([])
        let silent = Locked<Set<String>>([])
        let sent = ContinuousClock.now
        await withDiscardingTaskGroup { group in
            for (node, request) in byNode {
                guard let info = infos[node] else { missing.append(node); continue }
                group.addTask { [workerPeers] in
                    do {
                        _ = try await workerPeers.peer(info).call(request, timeout: .seconds(5))
                    } catch {
                        failures.withLock { $0.append("\(info.name) (\(node)): \(error)") }
                        if let e = error as? ChorusError, e.code == .unreachable { silent.withLock { _ = $0.insert(node) } }
                    }
                }
            }
        }
        let failed = failures.withLock { $0 }
        let unreachable = silent.withLock { $0 }
        let newly = state.withLock { s -> Set<String> in
            let now = ContinuousClock.now
            let before = Set(s.unreachableCopies.filter { $0.value.last - $0.value.since >= .seconds(3) }.keys)
            for n in byNode.keys where !unreachable.contains(n) { s.unreachableCopies[n] = nil }
            for n in unreachable { s.unreachableCopies[n] = (s.unreachableCopies[n]?.since ?? sent, now) }
            return Set(s.unreachableCopies.filter { $0.value.last - $0.value.since >= .seconds(3) }.keys).subtracting(before)
        }
        if !newly.isEmpty {
            logger.warning("""
                copies did not answer a replicated write; reporting them to the coordinator, which drops them as \
                copies of the partitions this worker leads
                """,
                           metadata: ["nodes": "\(newly.sorted().map { infos[$0]?.name ?? $0 }.joined(separator: ","))"])
        }
        if !missing.isEmpty || !failed.isEmpty {
            // A newer map may list the copy elsewhere, or at a new address after a restart.
            try? await refreshMap()
            throw ChorusError(.unavailable, "not every replica confirmed the write: "
                              + (missing.map { "\($0): not in the map" } + failed).joined(separator: "; "),
                              hint: "retry: the coordinator replaces unreachable replicas within seconds")
        }
    }

    /// Before a replicated write: a valid lease, a map at least as new as the sender's, a writable store.
    private func admitReplicated(mapVersion: UInt64) async throws {
        try checkLease("replicated writes")
        if state.withLock({ $0.map.version }) < mapVersion { try await refreshMap() }
        try checkWritable()
    }

    /// Throws unless `primary` is the primary of partition `p` in `map`, with this worker as a replica or learner.
    private func checkCopy(_ p: UInt32, primary: String, senderVersion: UInt64, in map: Chorus_V1_PartitionMap) throws {
        guard p < map.partitionCount else { throw ChorusError(.usage, "partition \(p) does not exist") }
        let a = map.assignments[Int(p)]
        guard a.owner == primary, a.replicas.contains(nodeId) || a.learners.contains(nodeId) else {
            throw fence("stale primary: \(primary) is not the primary of partition \(p) "
                        + "with \(name) as a copy in map version \(map.version) (sender's version \(senderVersion))")
        }
    }

    /// A replica or learner applies what its primary wrote, if the sender still is the primary in its map.
    func replicaWrite(_ r: Chorus_V1_ReplicaWrite) async throws -> Chorus_V1_Ack {
        try await admitReplicated(mapVersion: r.mapVersion)
        let store = self.store
        let ticket = try await writeQueue.run { [self] () throws -> UInt64 in
            let map = state.withLock { $0.map }
            var parts = Set<UInt32>()
            var wb = WriteBatch()
            for op in r.ops {
                if !parts.contains(op.partition) {
                    try checkCopy(op.partition, primary: r.primary, senderVersion: r.mapVersion, in: map)
                    parts.insert(op.partition)
                }
                guard op.key.count >= 5, ShardKeys.partition(ofKey: op.key) == op.partition else {
                    throw ChorusError(.usage, "replicated key outside its partition")
                }
                if op.delete { wb.delete([UInt8](op.key)) }
                else if op.rangeEnd.isEmpty { wb.put([UInt8](op.key), [UInt8](op.value)) }
                else { wb.deleteRange(from: [UInt8](op.key), to: [UInt8](op.rangeEnd)) }
            }
            try storageWrite { try store.write(wb) }
            state.withLock { s in
                s.nonEmpty.formUnion(parts)
                if !s.catchUp.isEmpty {
                    for op in r.ops where s.catchUp[op.partition] != nil { s.catchUp[op.partition]!.record(op) }
                }
            }
            return commit.noteWritten()
        }
        try await waitDurable(ticket)
        metrics.counter("chorus_worker_replica_batches_total").increment()
        metrics.counter("chorus_worker_replica_rows_total").increment(by: r.ops.count)
        return Chorus_V1_Ack()
    }

    /// A replica or learner applies the puts its primary wrote, sent as a prepared RocksDB batch, if the sender
    /// still is the primary of every partition in it in this worker's map. The batch is checked whole first (only
    /// puts, the entry count, every key's partition); it is then written as is.
    func replicaBatch(_ r: Chorus_V1_ReplicaBatch) async throws -> Chorus_V1_Ack {
        try await admitReplicated(mapVersion: r.mapVersion)
        let store = self.store
        let ticket = try await writeQueue.run { [self] () throws -> UInt64 in
            // Parsed whole on the write queue's thread (it is linear in the batch's bytes, and a batch may be large).
            let facts: PreparedBatch.Facts
            do {
                facts = try r.batch.withUnsafeBytes { try PreparedBatch.check($0) }
            } catch {
                throw RequestValidation.invalid("replica_batch.batch", "\(error)")
            }
            guard facts.entries == Int(r.count) else {
                throw RequestValidation.invalid("replica_batch.count", "says \(r.count) puts, the batch holds \(facts.entries)")
            }
            let map = state.withLock { $0.map }
            for p in facts.partitions {
                try checkCopy(p, primary: r.primary, senderVersion: r.mapVersion, in: map)
            }
            try storageWrite { try r.batch.withUnsafeBytes { try store.write(prepared: $0) } }
            let moving = state.withLock { s in
                s.nonEmpty.formUnion(facts.partitions)
                return Set(facts.partitions.filter { s.catchUp[$0] != nil })
            }
            if !moving.isEmpty {
                // A partition being copied to this worker: its move replays these writes after the ingest.
                var ops: [Chorus_V1_ReplicaOp] = []
                _ = try r.batch.withUnsafeBytes { rep in
                    try PreparedBatch.check(rep) { key, value in
                        guard let p = ShardKeys.partition(ofKey: key), moving.contains(p) else { return }
                        var op = Chorus_V1_ReplicaOp()
                        op.partition = p
                        op.key = Data(key)
                        op.value = Data(value)
                        ops.append(op)
                    }
                }
                state.withLock { s in
                    for op in ops where s.catchUp[op.partition] != nil { s.catchUp[op.partition]!.record(op) }
                }
            }
            return commit.noteWritten()
        }
        try await waitDurable(ticket)
        metrics.counter("chorus_worker_replica_batches_total").increment()
        metrics.counter("chorus_worker_replica_rows_total").increment(by: Int(r.count))
        return Chorus_V1_Ack()
    }

    /// Writes derived data (task results) of partitions this worker is primary of, and replicates it.
    func writeDerived(_ ops: [Chorus_V1_ReplicaOp]) async throws {
        guard !ops.isEmpty else { return }
        let store = self.store
        let parts = Set(ops.map(\.partition))
        let (map, ticket) = try await writeQueue.run { [self] () throws -> (Chorus_V1_PartitionMap, UInt64) in
            let map = state.withLock { $0.map }
            try checkPrimary(parts, in: map)
            var wb = WriteBatch()
            for op in ops {
                if op.delete { wb.delete([UInt8](op.key)) }
                else if op.rangeEnd.isEmpty { wb.put([UInt8](op.key), [UInt8](op.value)) }
                else { wb.deleteRange(from: [UInt8](op.key), to: [UInt8](op.rangeEnd)) }
            }
            try storageWrite { try store.write(wb) }
            state.withLock { $0.nonEmpty.formUnion(parts) }
            return (map, commit.noteWritten())
        }
        async let durable: Void = waitDurable(ticket)
        try await forward(ops, map: map)
        try await durable
    }

    // MARK: partition moves

    /// Serves one chunk of a partition to a move target, from the primary's store.
    func partitionChunk(_ c: Chorus_V1_PartitionChunkRequest) async throws -> Chorus_V1_PartitionChunk {
        try await checkMoveSource(c.partition, mapVersion: c.mapVersion)
        let store = self.store
        let maxBytes = Int(c.maxBytes == 0 ? 1 << 20 : min(c.maxBytes, 16 << 20))
        return try await computeQueue.run {
            var out = Chorus_V1_PartitionChunk()
            let pre = ShardKeys.prefix(partition: c.partition)
            let from = c.after.isEmpty ? pre : [UInt8](c.after) + [0]
            var bytes = 0
            var more = false
            try store.scan(from: from, to: Store.prefixEnd(pre)) { key, value in
                if bytes >= maxBytes { more = true; return false }
                var kv = Chorus_V1_KeyValue()
                kv.key = Data(key)
                kv.value = Data(value)
                bytes += key.count + value.count
                out.rows.append(kv)
                return true
            }
            out.done = !more
            out.nextAfter = out.rows.last?.key ?? Data()
            if c.after.isEmpty && more {
                // The first chunk also says how big the partition is, so the move can show a percentage and an
                // ETA. Counting reads the whole range once; a partition too big to count within 2 s is left
                // uncounted (0) rather than delaying the copy.
                var keys: UInt64 = 0, total: UInt64 = 0
                let due = ContinuousClock.now + .seconds(2)
                var complete = true
                try store.scan(from: pre, to: Store.prefixEnd(pre)) { key, value in
                    keys += 1
                    total += UInt64(key.count + value.count)
                    if keys % 4096 == 0 && ContinuousClock.now > due { complete = false; return false }
                    return true
                }
                if complete { out.keysTotal = keys; out.bytesTotal = total }
            } else if c.after.isEmpty {
                out.keysTotal = UInt64(out.rows.count)
                out.bytesTotal = UInt64(bytes)
            }
            return out
        }
    }

    func profileGet(_ g: Chorus_V1_ProfileGet) async throws -> Chorus_V1_ProfileReply {
        try checkPrimary([g.partition], in: state.withLock { $0.map })
        let store = self.store
        let sections = options.jobs.profileSections
        return try await computeQueue.run {
            var r = Chorus_V1_ProfileReply()
            let id = Array(g.userID.utf8)
            if g.kind == "content" {
                // The content record itself (for titles in `recommend` and `similar`), as ContentRecord JSON.
                if let v = try store.get(ShardKeys.key(partition: g.partition, role: ShardKeys.role(.content), id: id)) {
                    let c = Wire.decode(try Chorus_V1_Content(serializedBytes: v))
                    r.found = true
                    r.profileJson = String(decoding: try JSONEncoder().encode(c), as: UTF8.self)
                }
                return r
            }
            if g.kind == "content-sentiment" {
                if let v = try store.get(ShardKeys.key(partition: g.partition, role: ShardKeys.Derived.contentSentiment, id: id)) {
                    r.found = true
                    r.profileJson = String(decoding: v, as: UTF8.self)
                }
                return r
            }
            if let v = try store.get(ShardKeys.key(partition: g.partition, role: ShardKeys.Derived.userSentiment, id: id)) {
                r.sentimentJson = String(decoding: v, as: UTF8.self)
            }
            if let p = try store.get(ShardKeys.key(partition: g.partition, role: ShardKeys.Derived.profile.rawValue, id: id)) {
                r.found = true
                r.profileJson = String(decoding: p, as: UTF8.self)
            }
            if let f = try store.get(ShardKeys.key(partition: g.partition, role: ShardKeys.Derived.userFactors, id: id)) {
                // [rank u16 LE][float32 LE × width]; width = rank + 1 when the last float is the bias.
                let rank = f.count >= 2 ? Int(f[0]) | Int(f[1]) << 8 : 0
                let v = FloatPacking.unpack(Data(f.dropFirst(2)))
                let biasLast = v.count == rank + 1
                r.embedding = biasLast ? Array(v.dropLast()) : v
                if biasLast { r.bias = v.last ?? 0 }
            }
            if let t = try store.get(ShardKeys.key(partition: g.partition, role: ShardKeys.Derived.userRecommendations, id: id)) {
                r.recommendationsJson = String(decoding: t, as: UTF8.self)
            }
            // Provenance: the job that last wrote each part (the job SDK records it per partition and role).
            let parts: [(String, UInt8)] = [("profile", ShardKeys.Derived.profile.rawValue), ("embedding", ShardKeys.Derived.userFactors),
                                            ("recommendations", ShardKeys.Derived.userRecommendations),
                                            ("sentiment", ShardKeys.Derived.userSentiment)]
            for (name, role) in parts {
                if let job = try store.get(ShardKeys.provenanceKey(partition: g.partition, role: role)) {
                    r.producedBy[name] = String(decoding: job, as: UTF8.self)
                }
            }
            // The parts job kinds declare (Job.profileSections), each with the job that wrote it.
            for sec in sections {
                guard let v = try store.get(ShardKeys.key(partition: g.partition, role: sec.role, id: id)) else { continue }
                r.sectionsJson[sec.name] = String(decoding: v, as: UTF8.self)
                if let job = try store.get(ShardKeys.provenanceKey(partition: g.partition, role: sec.role)) {
                    r.producedBy[sec.name] = String(decoding: job, as: UTF8.self)
                }
            }
            if let u = try store.get(ShardKeys.key(partition: g.partition, role: ShardKeys.role(.user), id: id)),
               let rec = try? Chorus_V1_User(serializedBytes: u) {
                r.userJson = (try? rec.jsonString()) ?? ""
            }
            return r
        }
    }

    func profileScan(_ s: Chorus_V1_ProfileScan) async throws -> Chorus_V1_ProfileScanReply {
        try checkPrimary([s.partition], in: state.withLock { $0.map })
        let store = self.store
        let limit = Int(s.limit == 0 ? 1000 : min(s.limit, 10000))
        let sections = options.jobs.profileSections
        return try await computeQueue.run {
            var r = Chorus_V1_ProfileScanReply()
            let prefix = ShardKeys.prefix(partition: s.partition, role: ShardKeys.Derived.profile.rawValue)
            let from = s.after.isEmpty ? prefix : prefix + Array(s.after.utf8) + [0]
            var last = ""
            try store.scan(from: from, to: Store.prefixEnd(prefix)) { key, value in
                let id = Array(key.dropFirst(5))
                // With the user's sentiment and stored recommendations (`profile get` shows them too), spliced in
                // as JSON values: {"...profile...","sentiment":{…},"recommendations":[…]}.
                var json = Array(value)
                var extra: [UInt8] = []
                if let v = try store.get(ShardKeys.key(partition: s.partition, role: ShardKeys.Derived.userSentiment, id: id)) {
                    extra += Array(#","sentiment":"#.utf8) + v
                }
                if let v = try store.get(ShardKeys.key(partition: s.partition, role: ShardKeys.Derived.userRecommendations, id: id)) {
                    extra += Array(#","recommendations":"#.utf8) + v
                }
                for sec in sections {
                    if let v = try store.get(ShardKeys.key(partition: s.partition, role: sec.role, id: id)) {
                        extra += Array(",\"\(sec.name)\":".utf8) + v
                    }
                }
                if !extra.isEmpty, json.count > 2, json.last == UInt8(ascii: "}") { json.insert(contentsOf: extra, at: json.count - 1) }
                r.profilesJson.append(String(decoding: json, as: UTF8.self))
                last = String(decoding: id, as: UTF8.self)
                return r.profilesJson.count < limit
            }
            r.nextAfter = r.profilesJson.count < limit ? "" : last
            return r
        }
    }
}
