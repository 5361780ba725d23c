import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import SwiftProtobuf

/// Timing of membership. Heartbeats every 500 ms; suspect after 2 s of silence; dead after 5 s.
public struct MembershipTiming: Sendable {
    public var suspectAfterMs: Int64 = 2_000
    public var deadAfterMs: Int64 = 5_000
    public init() {}
}

/// The coordinator's durable state and membership, guarded by an actor. Everything it changes is written to the
/// coordinator's own RocksDB before the change is visible, so a restart keeps the map, members and job history.
actor CoordinatorState {
    struct Node {
        var info: Chorus_V1_NodeInfo
        var lastHeartbeatMs: Int64
        var peer: Peer?
        var incarnation: Int
    }

    let store: Store
    let coordinatorId: String
    let startedMs = nowMs()
    let timing: MembershipTiming
    private(set) var map = Chorus_V1_PartitionMap()
    private(set) var nodes: [String: Node] = [:]
    private(set) var jobs: [String: Chorus_V1_JobInfo] = [:]
    var cancelled = Set<String>()
    private var jobSeq = 0
    /// Partitions that hold data. They keep their owner until a partition move (issue 3) transfers them.
    private(set) var sealed = Set<UInt32>()

    init(store: Store, partitionCount requested: UInt32?, timing: MembershipTiming) throws {
        self.store = store
        self.timing = timing
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
        } else {
            let p = requested ?? 64
            guard p >= 1, p <= 65_536 else { throw ChorusError(.usage, "--partitions must be 1...65536") }
            map.version = 1
            map.partitionCount = p
            map.hash = StableHash.name
            map.assignments = (0..<p).map { var a = Chorus_V1_PartitionAssignment(); a.partition = $0; return a }
            try store.put(Array("map".utf8), try map.serializedBytes(), sync: true)
        }
        // Members come back as dead until they heartbeat again.
        var loadedNodes: [String: Node] = [:]
        try store.scan(prefix: Array("node/".utf8)) { _, v in
            var info = try Chorus_V1_NodeInfo(serializedBytes: UnsafeRawBufferPointer(v))
            info.state = .dead
            loadedNodes[info.id] = Node(info: info, lastHeartbeatMs: 0, peer: nil, incarnation: 0)
            return true
        }
        nodes = loadedNodes
        // Jobs that were running when the coordinator stopped are failed with a clear reason.
        var interrupted: [Chorus_V1_JobInfo] = []
        var loadedJobs: [String: Chorus_V1_JobInfo] = [:]
        try store.scan(prefix: Array("job/".utf8)) { _, v in
            var j = try Chorus_V1_JobInfo(serializedBytes: UnsafeRawBufferPointer(v))
            if j.state == .queued || j.state == .running {
                let was = j.state == .queued ? "queued" : "running"
                j.state = .failed
                j.error = "the coordinator restarted while this job was \(was); "
                    + "resubmit it (results of finished partitions were kept)"
                j.finishedAtMs = nowMs()
                interrupted.append(j)
            }
            loadedJobs[j.id] = j
            return true
        }
        for j in interrupted {
            loadedJobs[j.id] = j
            try store.put(Array("job/\(j.id)".utf8), try j.serializedBytes())
        }
        jobs = loadedJobs
        if let s = try store.get(Array("sealed".utf8)) {
            sealed = Set(String(decoding: s, as: UTF8.self).split(separator: ",").compactMap { UInt32($0) })
        }
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

    // MARK: membership

    func register(_ r: Chorus_V1_RegisterWorker) throws -> Chorus_V1_PartitionMap {
        guard !r.nodeID.isEmpty, r.address.hasPrefix("tcp://") || r.address.hasPrefix("ipc://") else {
            throw ChorusError(.usage, "register: node id and a tcp:// or ipc:// address are required")
        }
        var node = nodes[r.nodeID] ?? Node(info: Chorus_V1_NodeInfo(), lastHeartbeatMs: 0, peer: nil, incarnation: 0)
        if node.peer == nil || node.info.address != r.address {
            node.peer?.close()
            node.peer = try Peer(endpoint: r.address, role: "worker \(r.name)", sender: coordinatorId)
        }
        node.info.id = r.nodeID
        node.info.name = r.name
        node.info.address = r.address
        node.info.cores = max(1, r.cores)
        node.info.state = .active
        node.lastHeartbeatMs = nowMs()
        node.incarnation += 1
        nodes[r.nodeID] = node
        try persist(node: node.info)
        try rebalance()
        return mapWithNodes()
    }

    func heartbeat(_ h: Chorus_V1_Heartbeat) throws -> Chorus_V1_HeartbeatReply {
        guard var node = nodes[h.nodeID], node.peer != nil else {
            throw ChorusError(.notFound, "unknown worker \(h.nodeID): register first")
        }
        let wasDead = node.info.state == .dead
        node.lastHeartbeatMs = nowMs()
        node.info.state = .active
        node.info.bytesHeld = h.bytesHeld
        node.info.runningTasks = h.runningTasks
        nodes[h.nodeID] = node
        if wasDead { try persist(node: node.info) }
        var reply = Chorus_V1_HeartbeatReply()
        reply.mapVersion = map.version
        if h.mapVersion < map.version { reply.partitionMap = mapWithNodes() }
        return reply
    }

    /// Records that `partitions` now hold data on their owner. Refused for partitions the node does not own.
    func seal(_ r: Chorus_V1_SealPartitions) throws {
        for p in r.partitions {
            guard p < map.partitionCount else { throw ChorusError(.usage, "partition \(p) does not exist") }
            guard map.assignments[Int(p)].owner == r.nodeID else {
                throw ChorusError(.wrongOwner, "partition \(p) is owned by another node (map version \(map.version))")
            }
        }
        let before = sealed.count
        sealed.formUnion(r.partitions)
        if sealed.count != before {
            try store.put(Array("sealed".utf8), Array(sealed.sorted().map(String.init).joined(separator: ",").utf8),
                          sync: true)
        }
    }

    /// Marks silent nodes suspect or dead, and rebalances when a node died.
    func sweep() throws {
        let now = nowMs()
        var changed = false
        for (id, var n) in nodes where n.info.state != .dead {
            let age = now - n.lastHeartbeatMs
            if age > timing.deadAfterMs {
                n.info.state = .dead
                n.peer?.close()  // fails tasks in flight to it at once
                n.peer = nil
                nodes[id] = n
                try persist(node: n.info)
                changed = true
            } else if age > timing.suspectAfterMs, n.info.state != .suspect {
                n.info.state = .suspect
                nodes[id] = n
            } else if age <= timing.suspectAfterMs, n.info.state == .suspect {
                n.info.state = .active
                nodes[id] = n
            }
        }
        if changed { try rebalance() }
    }

    /// Recomputes placement; bumps and persists the map version when anything changed.
    func rebalance() throws {
        let live = nodes.values.filter { $0.info.state != .dead && $0.peer != nil }.map(\.info.id).sorted()
        let owners: [String?] = map.assignments.map { $0.owner.isEmpty ? nil : $0.owner }
        let sealed = self.sealed
        let planned = PartitionPlanner.plan(owners: owners, live: live) { !sealed.contains($0) }
        if planned != owners {
            for i in map.assignments.indices { map.assignments[i].owner = planned[i] ?? "" }
            map.version += 1
            try persistMap()
        }
    }

    func mapWithNodes() -> Chorus_V1_PartitionMap {
        var m = map
        m.nodes = nodeInfos()
        return m
    }

    func nodeInfos() -> [Chorus_V1_NodeInfo] {
        let now = nowMs()
        var counts: [String: UInt32] = [:]
        for a in map.assignments where !a.owner.isEmpty { counts[a.owner, default: 0] += 1 }
        return nodes.values.sorted { $0.info.name < $1.info.name || ($0.info.name == $1.info.name && $0.info.id < $1.info.id) }
            .map { n in
                var i = n.info
                i.partitions = counts[i.id] ?? 0
                i.heartbeatAgeMs = n.lastHeartbeatMs == 0 ? -1 : now - n.lastHeartbeatMs
                return i
            }
    }

    func status() -> Chorus_V1_ClusterStatus {
        var s = Chorus_V1_ClusterStatus()
        s.coordinatorID = coordinatorId
        s.mapVersion = map.version
        s.partitionCount = map.partitionCount
        s.unassignedPartitions = UInt32(map.assignments.filter {
            $0.owner.isEmpty || nodes[$0.owner]?.info.state == .dead
        }.count)
        s.nodes = nodeInfos()
        s.jobsRunning = UInt32(jobs.values.filter { $0.state == .running || $0.state == .queued }.count)
        s.jobsTotal = UInt32(jobs.count)
        s.uptimeMs = nowMs() - startedMs
        return s
    }

    /// The live peer that owns `partition` (nil while its owner is dead or missing) and its incarnation.
    func owner(of partition: UInt32) -> (id: String, peer: Peer, cores: Int, incarnation: Int)? {
        let o = map.assignments[Int(partition)].owner
        guard let n = nodes[o], n.info.state != .dead, let peer = n.peer else { return nil }
        return (o, peer, Int(n.info.cores), n.incarnation)
    }

    // MARK: jobs

    func createJob(kind: String, params: [String: String]) throws -> Chorus_V1_JobInfo {
        guard JobKinds.all.contains(kind) else {
            throw ChorusError(.usage, "unknown job kind '\(kind)'", hint: "known kinds: \(JobKinds.all.joined(separator: ", "))")
        }
        jobSeq += 1
        try store.put(Array("meta/job_seq".utf8), Array(String(jobSeq).utf8), sync: true)
        var j = Chorus_V1_JobInfo()
        j.id = "job-" + String(format: "%06d", jobSeq)
        j.kind = kind
        j.state = .queued
        j.params = params
        j.submittedAtMs = nowMs()
        j.tasksTotal = map.partitionCount * UInt32(JobKinds.stages(kind).count)
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

    func livePeers() -> [(String, Peer)] {
        nodes.values.compactMap { n in n.info.state != .dead ? n.peer.map { (n.info.id, $0) } : nil }
    }
}
