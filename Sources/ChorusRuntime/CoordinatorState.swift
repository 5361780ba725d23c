import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import SwiftProtobuf

/// Timing of membership (docs/operations.md): workers heartbeat every 500 ms; a worker is suspect after 2 s of
/// silence and dead after 5 s. A worker's own lease runs 3 s from the moment it sent its last acknowledged
/// heartbeat, so it stops accepting writes and tasks before the coordinator can declare it dead and move its
/// partitions.
public struct MembershipTiming: Sendable {
    public var heartbeatIntervalMs: Int64 = 500
    public var suspectAfterMs: Int64 = 2_000
    public var deadAfterMs: Int64 = 5_000
    public var leaseMs: Int64 = 3_000
    public init() {}
}

/// Limits of background partition moves.
public struct MoveLimits: Sendable {
    /// Moves in flight in the whole cluster.
    public var maxMoves = 4
    /// Moves in flight into one node.
    public var maxPerTarget = 2
    /// Copy throttle per move (bytes per second, 0 = unlimited).
    public var rateBytesPerSecond: UInt64 = 32 << 20
    public init() {}
}

/// A move the coordinator has started: a learner was added to `partition` at map version `version`.
struct PlannedMove: Sendable {
    var partition: UInt32
    var to: String
    var toPeer: Peer
    var from: String
    var fromPeer: Peer
    var fromAddress: String
    /// The source's CurveZMQ server key, which the learner dials it with ("" when plaintext).
    var fromPublicKey: String
    var leaving: String?
    var order: [String]
    var version: UInt64
}

/// The coordinator's durable state and membership, guarded by an actor. Everything it changes is written to the
/// coordinator's own RocksDB before the change is visible, so a restart keeps the map, members and job history.
///
/// Its methods run on a thread of its own (`executor`), not on the Swift cooperative pool: they make synced
/// RocksDB writes (map, members, job progress), and on 2 cores a pool thread blocked in fsync is half the pool,
/// so heartbeats can stall behind them (see `ThreadExecutor`). The methods stay synchronous: no await inside one,
/// so each map change is still applied and persisted in one piece, in the order callers reach the actor.
/// Only `init` (loading at start, before the coordinator serves anything) runs on the caller's thread.
actor CoordinatorState {
    /// The name of the thread every method of this actor, and so every store call it makes, runs on (for `top -H`).
    static let threadName = "coord.state"

    nonisolated let executor = ThreadExecutor(label: CoordinatorState.threadName)
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    struct Node {
        var info: Chorus_V1_NodeInfo
        var lastHeartbeatMs: Int64
        var peer: Peer?
        var incarnation: Int
        var appliedVersion: UInt64 = 0
        var progress: [UInt32: Chorus_V1_MoveProgress] = [:]
        var withData = Set<UInt32>()
        /// Copies this worker, as a primary, reported it cannot reach (Heartbeat.unreachable_copies).
        var unreachable = Set<String>()
    }

    let store: Store
    let coordinatorId: String
    let startedMs = nowMs()
    let timing: MembershipTiming
    let limits: MoveLimits
    private(set) var map = Chorus_V1_PartitionMap()
    private(set) var nodes: [String: Node] = [:]
    private(set) var jobs: [String: Chorus_V1_JobInfo] = [:]
    var cancelled = Set<String>()
    private var jobSeq = 0
    private(set) var moves: [UInt32: Chorus_V1_MoveInfo] = [:]
    /// Jobs that were queued or running when the coordinator last stopped; `Coordinator.run` starts them again.
    private(set) var resumable: [String] = []
    private(set) var lastRecoveredMs: Int64 = 0
    private var degraded = false

    /// The coordinator's key, which it dials workers with.
    let security: NodeSecurity

    init(store: Store, partitionCount requested: UInt32?, replicationFactor requestedR: UInt32?,
         timing: MembershipTiming, limits: MoveLimits, security: NodeSecurity, pseudonymFingerprint: String? = nil) throws {
        self.store = store
        self.security = security
        self.timing = timing
        self.limits = limits
        if let id = try store.get(Array("meta/coordinator_id".utf8)) {
            coordinatorId = String(decoding: id, as: UTF8.self)
        } else {
            coordinatorId = "c-" + UUID().uuidString.lowercased().prefix(8)
            try store.put(Array("meta/coordinator_id".utf8), Array(coordinatorId.utf8), sync: true)
        }
        if let m = try store.get(Array("map".utf8)) {
            map = try Chorus_V1_PartitionMap(serializedBytes: m)
            if let requested, requested != map.partitionCount {
                throw ChorusError(.usage, "this cluster was created with \(map.partitionCount) partitions, "
                                  + "not \(requested)", hint: "the partition count is fixed at creation; drop --partitions")
            }
            if map.replicationFactor == 0 { map.replicationFactor = 1 }  // a cluster created before replication
            if let pseudonymFingerprint, pseudonymFingerprint != map.pseudonymFingerprint {
                throw ChorusError(.usage, map.pseudonymFingerprint.isEmpty
                                  ? "this cluster was created with plaintext user ids; it cannot switch to pseudonymous ones"
                                  : "this cluster was created with pseudonym fingerprint \(map.pseudonymFingerprint), not \(pseudonymFingerprint)",
                                  hint: "pseudonymous ids are chosen when the cluster is created; drop --pseudonymous-ids")
            }
            if let requestedR, requestedR != map.replicationFactor {
                throw ChorusError(.usage, "this cluster was created with replication factor \(map.replicationFactor), "
                                  + "not \(requestedR)", hint: "R is fixed at creation; drop --replication")
            }
            // Moves in flight died with the previous coordinator: drop their learners (workers delete the partial
            // copies when they see the new map) and let the planner start them again.
            if map.assignments.contains(where: { !$0.learners.isEmpty }) {
                map.version += 1
                for i in map.assignments.indices where !map.assignments[i].learners.isEmpty {
                    map.assignments[i].learners = []
                    map.assignments[i].epoch = map.version
                }
            }
        } else {
            let p = requested ?? 64
            guard p >= 1, p <= 65_536 else { throw ChorusError(.usage, "--partitions must be 1...65536") }
            let r = requestedR ?? 2
            guard r >= 1, r <= 5 else { throw ChorusError(.usage, "--replication must be 1...5") }
            map.version = 1
            map.partitionCount = p
            map.replicationFactor = r
            map.hash = StableHash.name
            map.pseudonymFingerprint = pseudonymFingerprint ?? ""
            map.assignments = (0..<p).map { var a = Chorus_V1_PartitionAssignment(); a.partition = $0; return a }
        }
        map.clusterID = coordinatorId
        try store.put(Array("map".utf8), try map.serializedBytes(), sync: true)
        // Members come back as they were, with a fresh grace period: they must heartbeat (and re-register) within
        // the dead timeout, or they are declared dead as usual.
        var loadedNodes: [String: Node] = [:]
        let now = nowMs()
        try store.scan(prefix: Array("node/".utf8)) { _, v in
            var info = try Chorus_V1_NodeInfo(borrowing: UnsafeRawBufferPointer(v))
            if info.state != .dead { info.state = .suspect }
            loadedNodes[info.id] = Node(info: info, lastHeartbeatMs: info.state == .dead ? 0 : now, peer: nil,
                                        incarnation: 0)
            return true
        }
        nodes = loadedNodes
        degraded = map.assignments.contains { !$0.owner.isEmpty }  // nobody is live until workers re-register
        // Jobs that were queued or running are resumed: they start again from their first stage (every task is
        // idempotent: it recomputes its partition and overwrites the previous result).
        var loadedJobs: [String: Chorus_V1_JobInfo] = [:]
        var resumed: [String] = []
        try store.scan(prefix: Array("job/".utf8)) { _, v in
            var j = try Chorus_V1_JobInfo(borrowing: UnsafeRawBufferPointer(v))
            if j.state == .queued || j.state == .running {
                j.state = .queued
                j.stage = "resuming after a coordinator restart"
                j.tasksDone = 0
                j.progress = 0
                resumed.append(j.id)
            }
            loadedJobs[j.id] = j
            return true
        }
        jobs = loadedJobs
        resumable = resumed.sorted()
        for id in resumable { try store.put(Array("job/\(id)".utf8), try loadedJobs[id]!.serializedBytes()) }
        if let s = try store.get(Array("meta/job_seq".utf8)) { jobSeq = Int(String(decoding: s, as: UTF8.self)) ?? 0 }
    }

    // MARK: persistence

    private func persistMap() throws {
        try store.put(Array("map".utf8), try map.serializedBytes(), sync: true)
    }

    private func persist(node: Chorus_V1_NodeInfo) throws {
        var n = node
        n.heartbeatAgeMs = 0
        try store.put(Array("node/\(n.id)".utf8), try n.serializedBytes(), sync: true)
    }

    func persist(job: Chorus_V1_JobInfo) throws {
        jobs[job.id] = job
        try store.put(Array("job/\(job.id)".utf8), try job.serializedBytes())
    }

    /// Applies `change` to the map; when it changed anything, bumps the version, stamps the changed partitions'
    /// epochs and persists (synced) before anyone can see the new map.
    @discardableResult
    private func changeMap(_ change: (inout [Chorus_V1_PartitionAssignment]) -> Void) throws -> Bool {
        var a = map.assignments
        change(&a)
        guard a != map.assignments else { return false }
        let v = map.version + 1
        for i in a.indices where a[i] != map.assignments[i] { a[i].epoch = v }
        map.assignments = a
        map.version = v
        try persistMap()
        noteReplication()
        return true
    }

    // MARK: membership

    func register(_ r: Chorus_V1_RegisterWorker) throws -> Chorus_V1_PartitionMap {
        guard !r.nodeID.isEmpty, r.address.hasPrefix("tcp://") || r.address.hasPrefix("ipc://") else {
            throw ChorusError(.usage, "register: node id and a tcp:// or ipc:// address are required")
        }
        var node = nodes[r.nodeID] ?? Node(info: Chorus_V1_NodeInfo(), lastHeartbeatMs: 0, peer: nil, incarnation: 0)
        if node.peer == nil || node.info.address != r.address || node.info.publicKey != r.publicKey {
            node.peer?.close()
            node.peer = try Peer(endpoint: r.address, role: "worker \(r.name)", sender: coordinatorId, security: security,
                                 serverKey: r.publicKey)
        }
        node.info.id = r.nodeID
        node.info.name = r.name
        node.info.address = r.address
        node.info.publicKey = r.publicKey
        node.info.cores = max(1, r.cores)
        node.info.state = .active
        node.lastHeartbeatMs = nowMs()
        node.incarnation += 1
        node.appliedVersion = 0
        node.progress = [:]
        nodes[r.nodeID] = node
        try persist(node: node.info)
        noteReplication()
        return mapWithNodes()
    }

    func heartbeat(_ h: Chorus_V1_Heartbeat) throws -> Chorus_V1_HeartbeatReply {
        guard var node = nodes[h.nodeID], node.peer != nil else {
            throw ChorusError(.notFound, "unknown worker \(h.nodeID): register first")
        }
        node.lastHeartbeatMs = nowMs()
        if node.info.state == .suspect || node.info.state == .dead { node.info.state = .active }
        node.info.bytesHeld = h.bytesHeld
        node.info.runningTasks = h.runningTasks
        node.info.jobStates = h.jobStates
        node.info.fenced = h.fenced
        node.info.rejected = h.rejected
        node.info.storage = h.storage
        node.unreachable = Set(h.unreachableCopies)
        node.appliedVersion = h.appliedVersion
        node.progress = Dictionary(h.moves.map { ($0.partition, $0) }, uniquingKeysWith: { a, _ in a })
        node.withData = Set(h.nonemptyPartitions)
        nodes[h.nodeID] = node
        var reply = Chorus_V1_HeartbeatReply()
        reply.mapVersion = map.version
        if h.mapVersion < map.version { reply.partitionMap = mapWithNodes() }
        if !h.jobStates.isEmpty {
            reply.liveJobs = h.jobStates.filter { id in jobs[id].map { $0.state == .queued || $0.state == .running } ?? false }
            reply.listsLiveJobs = true
        }
        return reply
    }

    /// Records the map version a worker reported after a map push.
    func noteApplied(_ node: String, _ version: UInt64) {
        if var n = nodes[node], version > n.appliedVersion {
            n.appliedVersion = version
            nodes[node] = n
        }
    }

    /// Marks silent nodes suspect or dead. A dead node is dropped from every partition at once: where it was
    /// primary, its first in-sync replica is promoted. The planner then re-replicates in the background.
    /// Returns true when the map changed.
    @discardableResult
    func sweep() throws -> Bool {
        let now = nowMs()
        var died: [String] = []
        // More than half of the live workers (of at least 3) silent at once is more likely the coordinator cut off
        // from them than that many crashes: failing them all over would drop every replica and copy everything
        // again after the heal. Failover then waits up to `massSilenceHoldMs` more (their leases have run out, so
        // they refuse writes meanwhile); past that it goes ahead as usual.
        let live = nodes.values.filter { $0.info.state != .dead && $0.peer != nil }
        let silent = live.filter { now - $0.lastHeartbeatMs > timing.deadAfterMs }
        var hold = false
        if live.count >= 3, silent.count * 2 > live.count {
            if massSilenceSinceMs == nil {
                massSilenceSinceMs = now
                sweepNotes.append("\(silent.count) of \(live.count) workers stopped heartbeating at once: probably this "
                                  + "coordinator is cut off from them; holding their failover for up to "
                                  + "\(Self.massSilenceHoldMs / 1000) s")
            }
            hold = now - massSilenceSinceMs! < Self.massSilenceHoldMs
        } else {
            massSilenceSinceMs = nil
        }
        for (id, var n) in nodes where n.info.state != .dead {
            let age = now - n.lastHeartbeatMs
            if age > timing.deadAfterMs, hold {
                if n.info.state != .suspect {
                    n.info.state = .suspect
                    nodes[id] = n
                }
            } else if age > timing.deadAfterMs {
                n.info.state = .dead
                n.peer?.close()  // fails calls in flight to it at once
                n.peer = nil
                n.progress = [:]
                nodes[id] = n
                try persist(node: n.info)
                died.append(id)
            } else if age > timing.suspectAfterMs, n.info.state != .suspect {
                n.info.state = .suspect
                nodes[id] = n
            }
        }
        let handedOff = try handOffReadOnly()
        let shrunk = try dropUnreachableCopies()
        guard !died.isEmpty else { return handedOff || shrunk }
        noteReplication()
        // Moves to or from a dead node fail on their own (its connection was just closed, or the learner's chunk
        // requests time out) and clean up then; forgetting them here could start a second move of the same
        // partition while the first one still runs.
        return try dropHolders(Set(died)) || handedOff || shrunk
    }

    /// How long a mass silence (see `sweep`) holds failover back.
    static let massSilenceHoldMs: Int64 = 30_000
    private var massSilenceSinceMs: Int64?

    /// Notes for the coordinator's log, drained by the sweep loop.
    private(set) var sweepNotes: [String] = []
    func takeSweepNotes() -> [String] {
        defer { sweepNotes = [] }
        return sweepNotes
    }

    /// A live primary that cannot reach one of its copies (a network partition between workers, while both still
    /// reach the coordinator) reports it; the copy is dropped from the partitions that primary leads, so their
    /// writes go on with the copies left, and the planner re-replicates (onto a reachable worker, or onto the
    /// same one after the heal). Like a dead worker, but per primary: the copy keeps what it leads itself.
    private func dropUnreachableCopies() throws -> Bool {
        var dropped: [String: [UInt32]] = [:]
        let changed = try changeMap { a in
            for i in a.indices {
                let owner = a[i].owner
                guard !owner.isEmpty, isLive(owner), let gone = nodes[owner]?.unreachable, !gone.isEmpty else { continue }
                let before = a[i].replicas.count + a[i].learners.count
                a[i].replicas.removeAll { gone.contains($0) && $0 != owner }
                a[i].learners.removeAll { gone.contains($0) && $0 != owner }
                if a[i].replicas.count + a[i].learners.count != before { dropped["\(owner)", default: []].append(a[i].partition) }
            }
        }
        for (owner, parts) in dropped.sorted(by: { $0.key < $1.key }) {
            let name = nodes[owner]?.info.name ?? owner
            let them = (nodes[owner]?.unreachable ?? []).map { nodes[$0]?.info.name ?? $0 }.sorted().joined(separator: ", ")
            sweepNotes.append("\(name) cannot reach \(them): dropped as copies of the \(parts.count) partitions \(name) "
                              + "leads (\(parts.prefix(12).map(String.init).joined(separator: ","))\(parts.count > 12 ? ",…" : "")); "
                              + "the planner re-replicates")
        }
        return changed
    }

    /// Live workers whose store is read-only (a full disk).
    func readOnlyNodes() -> Set<String> {
        Set(nodes.values.filter { $0.info.state != .dead && $0.peer != nil && $0.info.storage.state == .readOnly }
            .map(\.info.id))
    }

    /// A read-only worker gives up every partition that has another live, writable in-sync copy: where it was
    /// primary, that copy is promoted (no data moves), and it stops being a replica or a learner, so writes go on
    /// without it. A partition whose only copy it holds stays with it: reads are served, writes are refused with
    /// "disk full" until the planner has moved the partition away or the worker has room again.
    private func handOffReadOnly() throws -> Bool {
        let full = readOnlyNodes()
        guard !full.isEmpty else { return false }
        func writable(_ n: String) -> Bool { isLive(n) && !full.contains(n) }
        return try changeMap { a in
            for i in a.indices {
                a[i].learners.removeAll { full.contains($0) }
                if a[i].replicas.contains(where: { full.contains($0) }), writable(a[i].owner) {
                    a[i].replicas.removeAll { full.contains($0) }
                }
                if full.contains(a[i].owner), let j = a[i].replicas.firstIndex(where: writable) {
                    a[i].owner = a[i].replicas.remove(at: j)
                    a[i].replicas.removeAll { full.contains($0) }
                }
            }
        }
    }

    /// Removes `gone` from every partition's holders, promoting the next in-sync replica where a primary went.
    /// A partition whose only holder is gone keeps it as owner: its data lives nowhere else.
    private func dropHolders(_ gone: Set<String>) throws -> Bool {
        try changeMap { a in
            for i in a.indices {
                a[i].learners.removeAll { gone.contains($0) }
                a[i].replicas.removeAll { gone.contains($0) }
                if gone.contains(a[i].owner), !a[i].replicas.isEmpty {
                    a[i].owner = a[i].replicas.removeFirst()
                }
            }
        }
    }

    func isLive(_ id: String) -> Bool {
        guard let n = nodes[id] else { return false }
        return n.info.state != .dead && n.peer != nil
    }

    /// In-sync holders of each partition, primary first (learners excluded).
    func holders() -> [[String]] {
        map.assignments.map { a in a.owner.isEmpty ? [] : [a.owner] + a.replicas }
    }

    /// True when `node` is the primary or an in-sync replica of `partition` in the current map.
    func holds(_ node: String, _ partition: UInt32) -> Bool {
        let a = map.assignments[Int(partition)]
        return a.owner == node || a.replicas.contains(node)
    }

    private func noteReplication() {
        let under = !underReplicated().isEmpty
        if degraded && !under { lastRecoveredMs = nowMs() }
        degraded = under
    }

    /// Partitions with fewer than R live in-sync copies.
    func underReplicated() -> [UInt32] {
        let r = Int(map.replicationFactor)
        return map.assignments.filter { a in
            let live = (a.owner.isEmpty ? [] : [a.owner] + a.replicas).filter { isLive($0) }.count
            return live < r
        }.map(\.partition)
    }

    // MARK: planning

    /// The planner's inputs: nodes that may take data (live, not draining, store writable), live draining or
    /// read-only nodes, which keep a partition until it has R copies without them, and nodes low on disk, which
    /// keep what they hold but take no new copies.
    func placementNodes() -> (eligible: [String], retiring: Set<String>, frozen: Set<String>) {
        let live = nodes.values.filter { $0.info.state != .dead && $0.peer != nil }
        let leaving = live.filter { $0.info.draining || $0.info.storage.state == .readOnly }
        return (live.filter { !$0.info.draining && $0.info.storage.state != .readOnly }.map(\.info.id).sorted(),
                Set(leaving.map(\.info.id)),
                Set(live.filter { $0.info.storage.state == .low }.map(\.info.id)))
    }

    /// One planning round: applies changes that need no data copy (first assignment of never-used partitions,
    /// leadership hand-offs, dropping surplus holders), adds learners for new moves within the limits, and returns
    /// the moves to run. Partitions with a move in flight are left alone.
    func reconcile() throws -> [PlannedMove] {
        // Right after a coordinator restart, wait until the known workers re-registered (or their grace ran out),
        // so that a slow re-registration does not look like a reason to move data.
        if nowMs() - startedMs < timing.deadAfterMs,
           nodes.values.contains(where: { $0.info.state != .dead && $0.peer == nil }) { return [] }
        let (eligible, retiring, frozen) = placementNodes()
        guard !eligible.isEmpty else { return [] }
        let current = holders()
        let r = Int(map.replicationFactor)
        let target = ReplicaPlanner.plan(current: current, eligible: eligible, replicationFactor: r, retiring: retiring,
                                         frozen: frozen)
        var inFlight = moves.count
        var perTarget: [String: Int] = [:]
        for m in moves.values { perTarget[m.to, default: 0] += 1 }
        var started: [(UInt32, String, String?, [String])] = []
        // Under-replicated partitions first, then the rest in partition order.
        let order = current.indices.sorted { (current[$0].count, $0) < (current[$1].count, $1) }
        try changeMap { a in
            for i in order {
                let p = UInt32(i)
                guard moves[p] == nil, target[i] != current[i] else { continue }
                if a[i].owner.isEmpty {
                    // Never used: no data anywhere, assign directly.
                    a[i].owner = target[i][0]
                    a[i].replicas = Array(target[i].dropFirst())
                    continue
                }
                let liveHolders = current[i].filter { isLive($0) }
                guard !liveHolders.isEmpty else { continue }  // its data is only on a dead node: wait for it
                let adds = target[i].filter { !current[i].contains($0) }
                let removes = current[i].filter { !target[i].contains($0) }
                if adds.isEmpty {
                    // Leadership hand-off and surplus holders: in-sync copies, so no data moves.
                    var h = current[i].filter { !removes.contains($0) || target[i].isEmpty }
                    h.sort { (target[i].firstIndex(of: $0) ?? 99) < (target[i].firstIndex(of: $1) ?? 99) }
                    if let first = h.first {
                        a[i].owner = first
                        a[i].replicas = Array(h.dropFirst())
                    }
                    continue
                }
                guard inFlight < limits.maxMoves else { continue }
                guard let to = adds.first(where: { perTarget[$0, default: 0] < limits.maxPerTarget }) else { continue }
                guard isLive(a[i].owner) else { continue }
                a[i].learners = [to]
                inFlight += 1
                perTarget[to, default: 0] += 1
                started.append((p, to, removes.first, target[i]))
            }
        }
        var planned: [PlannedMove] = []
        for (p, to, leaving, order) in started {
            let from = map.assignments[Int(p)].owner
            guard let toPeer = nodes[to]?.peer, let fromNode = nodes[from], let fromPeer = fromNode.peer else { continue }
            var info = Chorus_V1_MoveInfo()
            info.partition = p
            info.from = from
            info.to = to
            info.leaving = leaving ?? ""
            info.startedAtMs = nowMs()
            info.reason = leaving.map { nodes[$0]?.info.draining == true ? "drain" : "rebalance" } ?? "re-replicate"
            moves[p] = info
            planned.append(PlannedMove(partition: p, to: to, toPeer: toPeer, from: from, fromPeer: fromPeer,
                                       fromAddress: fromNode.info.address, fromPublicKey: fromNode.info.publicKey,
                                       leaving: leaving, order: order,
                                       version: map.version))
        }
        return planned
    }

    /// How many copies the planner still wants beyond the moves in flight.
    func plannedCopies() -> Int {
        let (eligible, retiring, frozen) = placementNodes()
        guard !eligible.isEmpty else { return 0 }
        let current = holders()
        let target = ReplicaPlanner.plan(current: current, eligible: eligible,
                                         replicationFactor: Int(map.replicationFactor), retiring: retiring,
                                         frozen: frozen)
        return max(0, ReplicaPlanner.copies(from: current, to: target) - moves.count)
    }

    /// The learner finished copying: it becomes an in-sync holder and the leaving node (if any) gives the partition
    /// up, in one map change. Fails if the learner was dropped meanwhile (it died, or the coordinator restarted).
    func completeMove(_ m: PlannedMove) throws -> Bool {
        defer { moves[m.partition] = nil }
        let i = Int(m.partition)
        guard map.assignments[i].learners.contains(m.to), isLive(m.to) else { return false }
        try changeMap { a in
            a[i].learners.removeAll { $0 == m.to }
            var h = [a[i].owner] + a[i].replicas + [m.to]
            if let l = m.leaving { h.removeAll { $0 == l } }
            h = h.filter { !$0.isEmpty }
            h.sort { (m.order.firstIndex(of: $0) ?? 99) < (m.order.firstIndex(of: $1) ?? 99) }
            a[i].owner = h[0]
            a[i].replicas = Array(h.dropFirst())
        }
        return true
    }

    func abortMove(_ m: PlannedMove) throws {
        moves[m.partition] = nil
        let i = Int(m.partition)
        try changeMap { a in a[i].learners.removeAll { $0 == m.to } }
    }

    func applied(_ node: String) -> UInt64 { nodes[node]?.appliedVersion ?? 0 }

    // MARK: operator commands

    func resolve(_ ref: String) throws -> String {
        if nodes[ref] != nil { return ref }
        let byName = nodes.values.filter { $0.info.name == ref }
        if byName.count == 1 { return byName[0].info.id }
        if byName.count > 1 {
            throw ChorusError(.usage, "more than one node is named '\(ref)'", hint: "use the node id from `chorus node list`")
        }
        throw ChorusError(.notFound, "no node '\(ref)'", hint: "see `chorus node list`")
    }

    func admin(_ r: Chorus_V1_NodeAdmin) throws -> String {
        let id = try resolve(r.node)
        var n = nodes[id]!
        let held = map.assignments.filter { $0.owner == id || $0.replicas.contains(id) || $0.learners.contains(id) }.count
        switch r.action {
        case .drain:
            // Like a decommission that would leave fewer nodes than the replication factor: refused, because the
            // node could never hand its partitions off without taking them below R copies.
            let rf = Int(map.replicationFactor)
            let eligible = placementNodes().eligible
            let blocked = ReplicaPlanner.drainBlocked(node: id, current: holders(), eligible: eligible,
                                                      replicationFactor: rf).count
            let others = eligible.filter { $0 != id }.compactMap { nodes[$0]?.info.name }.sorted()
            let room = others.isEmpty ? "no other worker is live and not draining"
                : "only \(others.count) other worker\(others.count == 1 ? " is" : "s are") live and not draining "
                    + "(\(others.joined(separator: ", ")))"
            if blocked > 0 && !r.force {
                throw ChorusError(.usage, "cannot drain \(n.info.name): its \(blocked) partitions need \(rf) copies on "
                                  + "other workers (replication factor \(rf)), and \(room)",
                                  hint: "start another worker (or undrain one) first; --force drains anyway, and "
                                  + "\(n.info.name) then keeps the copies that have nowhere to go and stays draining, "
                                  + "not drained, until there is room")
            }
            n.info.draining = true
            nodes[id] = n
            try persist(node: n.info)
            if blocked > 0 {
                return "draining \(n.info.name) (forced): \(room), so it keeps the copies that R=\(rf) needs and "
                    + "stays draining until another worker joins; it is not safe to stop before it says drained"
            }
            return "draining \(n.info.name): \(held) partition copies will move off it in the background; "
                + "watch `chorus node list` until it says drained"
        case .undrain:
            n.info.draining = false
            nodes[id] = n
            try persist(node: n.info)
            return "\(n.info.name) takes partitions again; `chorus cluster rebalance` is automatic"
        case .remove:
            if isLive(id) {
                // A stopped worker is only known to be gone once it has been silent for the dead timeout.
                let silentMs = max(0, nowMs() - nodes[id]!.lastHeartbeatMs)
                let leftMs = max(0, timing.deadAfterMs - silentMs)
                throw ChorusError(.usage, "\(n.info.name) is still running (last heartbeat "
                                  + String(format: "%.1f", Double(silentMs) / 1000) + " s ago)",
                                  hint: held > 0 ? "drain it (chorus node drain \(n.info.name)), stop it, then remove it"
                                    : "if you just stopped it, it is declared dead "
                                    + String(format: "%.0f", Double(timing.deadAfterMs) / 1000) + " s after its last "
                                    + "heartbeat, in " + String(format: "%.1f", Double(leftMs) / 1000) + " s: run this "
                                    + "again then, or add --wait; otherwise stop its process first")
            }
            if held > 0 {
                guard r.force, n.info.state == .dead else {
                    throw ChorusError(.usage, "\(n.info.name) still holds \(held) partition copies",
                                      hint: n.info.state == .dead
                                        ? "it is dead: --force drops its copies (replicas elsewhere take over)"
                                        : "drain it first: chorus node drain \(n.info.name)")
                }
                _ = try dropHolders([id])
            }
            n.peer?.close()
            nodes[id] = nil
            var wb = WriteBatch()
            wb.delete(Array("node/\(id)".utf8))
            try store.write(wb, sync: true)
            return "removed \(n.info.name) (\(id))"
        default:
            throw ChorusError(.usage, "unknown node action")
        }
    }

    func mapWithNodes() -> Chorus_V1_PartitionMap {
        var m = map
        m.nodes = nodeInfos()
        return m
    }

    func nodeInfos() -> [Chorus_V1_NodeInfo] {
        let now = nowMs()
        var prim: [String: UInt32] = [:], rep: [String: UInt32] = [:], learn: [String: UInt32] = [:]
        var held: [String: Set<UInt32>] = [:]
        let unowned = map.assignments.contains { $0.owner.isEmpty }
        for a in map.assignments {
            if !a.owner.isEmpty { prim[a.owner, default: 0] += 1 }
            for r in a.replicas { rep[r, default: 0] += 1 }
            for l in a.learners { learn[l, default: 0] += 1 }
            for n in [a.owner] + a.replicas + a.learners { held[n, default: []].insert(a.partition) }
        }
        return nodes.values.sorted { $0.info.name < $1.info.name || ($0.info.name == $1.info.name && $0.info.id < $1.info.id) }
            .map { n in
                var i = n.info
                i.primaries = prim[i.id] ?? 0
                i.replicas = rep[i.id] ?? 0
                i.learners = learn[i.id] ?? 0
                i.partitions = i.primaries + i.replicas
                i.heartbeatAgeMs = n.lastHeartbeatMs == 0 ? -1 : now - n.lastHeartbeatMs
                i.strayPartitions = UInt32(n.withData.subtracting(held[i.id] ?? []).count)
                if i.state == .active {
                    if i.draining {
                        // The planner keeps a draining node's copies until R exist without it, so holding nothing
                        // means every partition it held has R copies elsewhere.
                        i.state = i.partitions + i.learners == 0 ? .drained : .draining
                    } else if i.partitions == 0 && (i.learners > 0 || unowned) {
                        // Registered, but no partition is served by it yet: its first copies are on their way,
                        // or the planner has not placed the partitions yet (it runs every 300 ms).
                        i.state = .joining
                    }
                }
                return i
            }
    }

    func status() -> Chorus_V1_ClusterStatus {
        var s = Chorus_V1_ClusterStatus()
        s.coordinatorID = coordinatorId
        s.mapVersion = map.version
        s.partitionCount = map.partitionCount
        s.replicationFactor = map.replicationFactor
        s.unassignedPartitions = UInt32(map.assignments.filter { $0.owner.isEmpty || !isLive($0.owner) }.count)
        s.underReplicated = underReplicated()
        s.nodes = nodeInfos()
        s.moves = moves.values.sorted { $0.partition < $1.partition }.map { m in
            var m = m
            if let p = nodes[m.to]?.progress[m.partition] {
                m.keysCopied = p.keysCopied
                m.bytesCopied = p.bytesCopied
                m.keysTotal = p.keysTotal
                m.bytesTotal = p.bytesTotal
            }
            return m
        }
        s.movesPlanned = UInt32(plannedCopies())
        s.lastRecoveredMs = lastRecoveredMs
        s.jobsRunning = UInt32(jobs.values.filter { $0.state == .running || $0.state == .queued }.count)
        s.jobsTotal = UInt32(jobs.count)
        s.uptimeMs = nowMs() - startedMs
        return s
    }

    /// How many jobs are in each state, for metrics.
    func jobCounts() -> [Chorus_V1_JobState: Int] {
        var out: [Chorus_V1_JobState: Int] = [:]
        for j in jobs.values { out[j.state, default: 0] += 1 }
        return out
    }

    /// The live primary of `partition` (nil while it has none) and its incarnation.
    func owner(of partition: UInt32) -> (id: String, peer: Peer, cores: Int, incarnation: Int)? {
        let o = map.assignments[Int(partition)].owner
        guard let n = nodes[o], n.info.state != .dead, let peer = n.peer else { return nil }
        return (o, peer, Int(n.info.cores), n.incarnation)
    }

    /// What the stage engine needs to dispatch, in one call (each call to this actor is a hop to its thread):
    /// the live primary of each partition (absent while it has none), the map version, and whether the job was
    /// cancelled.
    func dispatchView(_ partitions: [UInt32], job: String)
        -> (owners: [UInt32: (id: String, peer: Peer, cores: Int, incarnation: Int)], mapVersion: UInt64, cancelled: Bool) {
        var owners: [UInt32: (id: String, peer: Peer, cores: Int, incarnation: Int)] = [:]
        for p in partitions { if let o = owner(of: p) { owners[p] = o } }
        return (owners, map.version, cancelled.contains(job))
    }

    /// Which of `partitions` `node` still holds (as primary or in-sync replica): the fencing check for a batch.
    func held(by node: String, _ partitions: [UInt32]) -> Set<UInt32> {
        Set(partitions.filter { holds(node, $0) })
    }

    // MARK: jobs

    func createJob(kind: String, params given: [String: String], registry: JobRegistry = .empty,
                   check: (any Job.Type, JobParams) throws -> Void = { _, _ in }) throws -> Chorus_V1_JobInfo {
        // Unknown kinds, unknown keys and bad values fail the submit (exit 64), before anything is stored.
        let params = try JobParameters.validate(kind: kind, params: given, registry: registry)
        // validate() refused kinds the registry lacks.
        guard let registered = registry[kind] else { throw ChorusError(.usage, "unknown job kind '\(kind)'") }
        try check(registered, JobParams(params))
        jobSeq += 1
        try store.put(Array("meta/job_seq".utf8), Array(String(jobSeq).utf8), sync: true)
        var j = Chorus_V1_JobInfo()
        j.id = "job-" + String(format: "%06d", jobSeq)
        j.kind = kind
        j.state = .queued
        j.params = params
        j.submittedAtMs = nowMs()
        let perPartition = max(1, registered.tasksPerPartition(JobParams(params)))
        j.tasksTotal = map.partitionCount * UInt32(min(perPartition, 1_000_000))
        try persist(job: j)
        return j
    }

    func job(_ id: String) throws -> Chorus_V1_JobInfo {
        guard let j = jobs[id] else { throw ChorusError(.notFound, "no job '\(id)'", hint: "see `chorus job list`") }
        return j
    }

    func update(_ id: String, _ body: (inout Chorus_V1_JobInfo) -> Void) throws -> Chorus_V1_JobInfo {
        guard var j = jobs[id] else { throw ChorusError(.notFound, "no job '\(id)'") }
        body(&j)
        if j.tasksTotal > 0 { j.progress = Double(j.tasksDone) / Double(j.tasksTotal) }
        try persist(job: j)
        return j
    }

    func cancel(_ id: String) throws -> Chorus_V1_JobInfo {
        let j = try job(id)
        if j.state == .queued || j.state == .running {
            cancelled.insert(id)
            return try update(id) { $0.state = .cancelled; $0.finishedAtMs = nowMs(); $0.error = "cancelled by request" }
        }
        return j
    }

    func isCancelled(_ id: String) -> Bool { cancelled.contains(id) }

    func list(limit: Int) -> [Chorus_V1_JobInfo] {
        Array(jobs.values.sorted { $0.id > $1.id }.prefix(limit))
    }

    /// For tests: whether this method, like every method of the actor and the store calls they make, runs on the
    /// actor's own thread.
    func runsOnStateThread() -> Bool { executor.isCurrentThread }

    func livePeers() -> [(String, Peer)] {
        nodes.values.compactMap { n in n.info.state != .dead ? n.peer.map { (n.info.id, $0) } : nil }
    }
}
