import ChorusModel
import ChorusWire
import Foundation
import SwiftProtobuf

/// The client side of the CLI: talks to the coordinator and, for data, directly to partition owners.
///
/// `timeout` bounds every public operation end to end: the calls one method makes (a partition map, then the
/// primary, then a retry on the new primary) share it, and no call waits longer than what is left of it. So a
/// command fails within its `--timeout` whatever is down. Streaming operations (`watch`, `exportProfiles`)
/// apply it to each reply.
public final class ChorusClient: Sendable {
    public let coordinatorAddress: String
    let coordinator: Peer
    public let timeout: Duration
    let workerPeers: WorkerPeers

    /// `security` is this client's key (and the coordinator's public key), or plaintext.
    public init(coordinator: String, timeout: Duration = .seconds(4), security: NodeSecurity) throws {
        coordinatorAddress = coordinator
        self.coordinator = try Peer(endpoint: coordinator, role: "coordinator", security: security)
        workerPeers = WorkerPeers(security: security, sender: "client")
        self.timeout = timeout
    }

    public func close() {
        coordinator.close()
        workerPeers.closeAll()
    }

    /// `chorus keys reload`: what the coordinator and each worker did.
    public func reloadKeys() async throws -> String {
        guard case let .admin(a) = try await coordinator.call(.keysReload(.init()), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return a.message
    }

    /// `chorus audit`: the audit log's entries at or after `sinceMs`, the newest `limit`, oldest first.
    public func auditLog(sinceMs: Int64, limit: UInt32) async throws -> [Chorus_V1_AuditRecord] {
        var q = Chorus_V1_AuditQuery()
        q.sinceMs = sinceMs
        q.limit = limit
        guard case let .audit(log) = try await coordinator.call(.audit(q), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return log.entries
    }

    public func clusterStatus() async throws -> Chorus_V1_ClusterStatus {
        guard case let .clusterStatus(s) = try await coordinator.call(.clusterStatus(.init()), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return s
    }

    public func partitionMap() async throws -> Chorus_V1_PartitionMap {
        try await partitionMap(Deadline(timeout))
    }

    func partitionMap(_ deadline: Deadline) async throws -> Chorus_V1_PartitionMap {
        guard case let .partitionMap(m) = try await coordinator.call(.partitionMap(.init()), timeout: deadline.left) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        // Routing indexes `assignments` by partition number: the reply is checked like any map from a socket.
        try RequestValidation.partitionMapShape(m, "partition_map reply")
        return m
    }

    /// The partition map once every partition has an owner. Right after workers register, the coordinator takes
    /// a planning round (it plans every 300 ms) to place the partitions: this waits for it, within the client's
    /// timeout, and otherwise says truthfully what is missing.
    public func partitionMapWithOwners() async throws -> Chorus_V1_PartitionMap {
        let due = ContinuousClock.now + timeout
        while true {
            let map = try await partitionMap()
            let unowned = map.assignments.filter { $0.owner.isEmpty }.count
            if unowned == 0 { return map }
            if ContinuousClock.now >= due {
                let live = map.nodes.filter { $0.state != .dead }.count
                if live == 0 {
                    throw ChorusError(.unavailable, "no worker has joined the cluster, so its \(unowned) partitions "
                                      + "have no owner", hint: "start at least one worker (`chorus worker`)")
                }
                throw ChorusError(.unavailable, "\(unowned) of \(map.partitionCount) partitions still have no owner "
                                  + "although \(live) worker(s) joined: the coordinator has not placed them yet",
                                  hint: "wait until `chorus cluster status` says ready, or pass a longer --timeout")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Drains, undrains or removes a worker; returns the coordinator's message and the cluster status after it.
    public func nodeAdmin(_ node: String, _ action: Chorus_V1_NodeAction, force: Bool = false) async throws
        -> Chorus_V1_AdminReply {
        var a = Chorus_V1_NodeAdmin()
        a.node = node
        a.action = action
        a.force = force
        guard case let .admin(r) = try await coordinator.call(.nodeAdmin(a), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return r
    }

    /// Top-n recommendations for a user from the latest `als` job (seen items excluded).
    public func recommend(userId: String, n: Int) async throws -> Chorus_V1_Recommendations {
        var r = Chorus_V1_RecommendRequest()
        r.userID = userId
        r.n = try itemCount(n)
        guard case let .recommendations(out) = try await coordinator.call(.recommend(r), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return out
    }

    /// The n content items closest to `contentId` in the latest `als` job's factor space.
    public func similar(contentId: String, n: Int) async throws -> Chorus_V1_Recommendations {
        var r = Chorus_V1_SimilarRequest()
        r.contentID = contentId
        r.n = try itemCount(n)
        guard case let .recommendations(out) = try await coordinator.call(.similar(r), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return out
    }

    /// 1...1000 items (the coordinator's cap); 0 would mean "the default" on the wire, so it is refused here.
    private func itemCount(_ n: Int) throws -> UInt32 {
        guard (1...1000).contains(n) else { throw ChorusError(.usage, "n must be between 1 and 1000 (got \(n))") }
        return UInt32(n)
    }

    /// Asks the coordinator to plan now and start whatever moves balance the cluster.
    public func rebalance() async throws -> Chorus_V1_AdminReply {
        guard case let .admin(r) = try await coordinator.call(.rebalance(.init()), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return r
    }

    public func submit(kind: String, params: [String: String]) async throws -> Chorus_V1_JobInfo {
        var s = Chorus_V1_SubmitJob()
        s.kind = kind
        s.params = params
        return try job(try await coordinator.call(.submitJob(s), timeout: timeout))
    }

    public func jobStatus(_ id: String) async throws -> Chorus_V1_JobInfo {
        var r = Chorus_V1_JobRef(); r.id = id
        return try job(try await coordinator.call(.jobStatus(r), timeout: timeout))
    }

    public func cancel(_ id: String) async throws -> Chorus_V1_JobInfo {
        var r = Chorus_V1_JobRef(); r.id = id
        return try job(try await coordinator.call(.jobCancel(r), timeout: timeout))
    }

    public func jobs(limit: Int) async throws -> [Chorus_V1_JobInfo] {
        var l = Chorus_V1_JobListRequest(); l.limit = UInt32(limit)
        guard case let .jobList(list) = try await coordinator.call(.jobList(l), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return list.jobs
    }

    /// Polls a job until it ends, calling `update` on every change.
    public func watch(_ id: String, every: Duration = .milliseconds(300),
                      update: (Chorus_V1_JobInfo) -> Void) async throws -> Chorus_V1_JobInfo {
        var last: Chorus_V1_JobInfo?
        while true {
            let j = try await jobStatus(id)
            if j != last { update(j) }
            last = j
            if [.succeeded, .failed, .cancelled].contains(j.state) { return j }
            try await Task.sleep(for: every)
        }
    }

    private func job(_ body: ResponseBody) throws -> Chorus_V1_JobInfo {
        guard case let .job(j) = body else { throw ChorusError(.internal, "unexpected reply") }
        return j
    }

    func owner(_ map: Chorus_V1_PartitionMap, _ partition: UInt32) throws -> Peer {
        let owner = map.assignments[Int(partition)].owner
        guard !owner.isEmpty, let node = map.nodes.first(where: { $0.id == owner }) else {
            throw ChorusError(.unavailable, "partition \(partition) has no owner yet", hint: "start a worker")
        }
        if node.state == .dead {
            throw ChorusError(.unavailable, "partition \(partition) is on worker \(node.name), which is dead",
                              hint: "restart that worker")
        }
        return try workerPeers.peer(node)
    }

    /// Calls the primary of `partition`; when it refuses (the partition just moved or failed over) or cannot be
    /// reached, refreshes the map and tries the new primary, until `deadline`.
    func onPrimary(_ partition: UInt32, _ body: RequestBody, deadline: Deadline) async throws -> ResponseBody {
        var attempt = 0
        while true {
            attempt += 1
            let map = try await partitionMap(deadline)
            do {
                return try await owner(map, partition).call(body, timeout: deadline.left)
            } catch let e as ChorusError where [.wrongOwner, .fenced, .unreachable].contains(e.code) {
                let pause = Duration.milliseconds(min(100 * attempt, 1000))
                guard deadline.left > pause + .milliseconds(50) else { throw e }
                try await Task.sleep(for: pause)
            }
        }
    }

    /// A result a job kind stored on the coordinator (`JobContext.putResult(key, ...)`): its bytes and the job
    /// that wrote it, or nil when no job of the kind has stored it yet.
    public func jobResult(kind: String, key: String) async throws -> (value: [UInt8], jobID: String)? {
        var g = Chorus_V1_JobResultGet()
        g.kind = kind
        g.key = key
        guard case let .jobResult(r) = try await coordinator.call(.jobResult(g), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return r.found ? ([UInt8](r.value), r.jobID) : nil
    }

    /// Reads one user's global profile from the primary of the user's partition.
    public func profile(userId: String) async throws -> Chorus_V1_ProfileReply {
        let deadline = Deadline(timeout)
        let map = try await partitionMap(deadline)
        let p = Placement(partitionCount: map.partitionCount).partition(of: userId)
        var g = Chorus_V1_ProfileGet()
        g.userID = userId
        g.partition = p
        guard case let .profile(r) = try await onPrimary(p, .profileGet(g), deadline: deadline) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return r
    }

    /// The content records of `ids`, each read from the primary of its partition (in parallel, within `timeout`,
    /// or `within` when shorter: what is left of a command's own budget). Ids without a record are left out.
    public func contents(_ ids: [String], within: Duration? = nil) async throws -> [String: ContentRecord] {
        let deadline = Deadline(min(timeout, within ?? timeout))
        let map = try await partitionMap(deadline)
        let placement = Placement(partitionCount: map.partitionCount)
        return try await withThrowingTaskGroup(of: ContentRecord?.self) { group in
            for id in Set(ids) {
                group.addTask {
                    var g = Chorus_V1_ProfileGet()
                    g.userID = id
                    g.partition = placement.partition(of: id)
                    g.kind = "content"
                    guard case let .profile(r) = try await self.onPrimary(g.partition, .profileGet(g), deadline: deadline)
                    else { throw ChorusError(.internal, "unexpected reply") }
                    return r.found ? try JSONDecoder().decode(ContentRecord.self, from: Data(r.profileJson.utf8)) : nil
                }
            }
            var out: [String: ContentRecord] = [:]
            for try await c in group { if let c { out[c.id] = c } }
            return out
        }
    }

    /// Streams every stored profile (JSON objects), partition by partition, in pages.
    public func exportProfiles(_ body: (String) throws -> Void) async throws -> Int {
        let map = try await partitionMap(Deadline(timeout))
        var n = 0
        for p in 0..<map.partitionCount {
            var after = ""
            repeat {
                var s = Chorus_V1_ProfileScan()
                s.partition = p; s.after = after; s.limit = 2000
                guard case let .profileScan(r) = try await onPrimary(p, .profileScan(s), deadline: Deadline(timeout)) else {
                    throw ChorusError(.internal, "unexpected reply")
                }
                for j in r.profilesJson { try body(j); n += 1 }
                after = r.nextAfter
            } while !after.isEmpty
        }
        return n
    }
}

/// The end of one client operation: every call it makes waits at most what is left.
struct Deadline: Sendable {
    let end: ContinuousClock.Instant
    init(_ timeout: Duration) { end = .now + timeout }
    /// What is left (at least 1 ms, so a call past the end fails at once with the peer's timeout error).
    var left: Duration { max(.milliseconds(1), end - .now) }
}

/// One Peer per worker address, created on first use.
final class WorkerPeers: Sendable {
    /// By address and server key (a worker restarted with a new key gets a new connection).
    private let peers = Mutex<[String: Peer]>([:])
    let security: NodeSecurity
    let sender: String

    init(security: NodeSecurity, sender: String) {
        self.security = security
        self.sender = sender
    }

    func peer(_ node: Chorus_V1_NodeInfo) throws -> Peer {
        try peers.withLock { d in
            let key = node.address + " " + node.publicKey
            if let p = d[key] { return p }
            // A worker at this address with another key (it was restarted with a new one): drop the old peer.
            for (k, old) in d where k.hasPrefix(node.address + " ") {
                old.close()
                d.removeValue(forKey: k)
            }
            let p = try Peer(endpoint: node.address, role: "worker \(node.name)", sender: sender, security: security,
                             serverKey: node.publicKey)
            d[key] = p
            return p
        }
    }

    func closeAll() { peers.withLock { d in d.values.forEach { $0.close() }; d.removeAll() } }
}

import Synchronization
