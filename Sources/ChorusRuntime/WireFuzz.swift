import ChorusModel
import ChorusStorage
import ChorusTransport
import ChorusWire
import Foundation
import Synchronization
import SwiftProtobuf

/// Sends `WireFuzzer` requests to live processes and tallies the replies (`chorus bench-fuzz`, the fuzz test and
/// bench/fuzz.sh). It does not decide whether a process crashed: the caller checks its processes afterwards;
/// `unresponsive` lists the targets that no longer answer a plain request at the end.
public enum WireFuzz {
    public struct Target: Sendable {
        public var name: String
        public var endpoint: String
        public var coordinator: Bool
        /// A worker's CurveZMQ public key (from the map); the coordinator's comes from the security settings.
        public var serverKey: String?
        public init(name: String, endpoint: String, coordinator: Bool, serverKey: String? = nil) {
            self.name = name; self.endpoint = endpoint; self.coordinator = coordinator; self.serverKey = serverKey
        }
    }

    /// Request types a worker serves; the rest go to the coordinator (partition_map: both).
    static let workerRequests: Set<String> = ["write_batch", "run_task", "profile_get", "profile_scan", "job_broadcast",
                                              "job_release", "replica_write", "copy_partition", "partition_chunk",
                                              "map_push", "user_history", "partition_map"]

    public struct Report: Codable, Sendable {
        public var seed: UInt64
        public var messages = 0
        public var seconds = 0.0
        /// Sent as one frame and awaited / truncated / with a flipped byte / with extra frames (not awaited).
        public var whole = 0, truncated = 0, flipped = 0, extraFrames = 0
        /// Replies by error code name ("ok" for a normal reply, "no_reply" after the timeout).
        public var replies: [String: Int] = [:]
        /// Per request type: replies by code.
        public var byRequest: [String: [String: Int]] = [:]
        /// BAD_REQUEST replies / awaited requests.
        public var badRequestRate = 0.0
        public var unresponsive: [String] = []

        enum CodingKeys: String, CodingKey {
            case seed, messages, seconds, whole, truncated, flipped, replies, unresponsive
            case extraFrames = "extra_frames", byRequest = "by_request", badRequestRate = "bad_request_rate"
        }
    }

    /// Sends up to `messages` requests (fewer if `seconds` runs out), `concurrency` in flight. Three in four go to a
    /// process that serves their type (so they get past the dispatch and into the handler), the rest to any target.
    /// `dictionary` adds strings for the generator (e.g. the cluster id).
    ///
    /// On a secure cluster every message goes over CURVE, so it reaches the server's code after the handshake.
    /// `securities` are the keys to send with: the first for client requests; a second one (a worker key) sends
    /// the cluster-internal types, so they get past the role check into their handlers. One in ten messages
    /// goes with the other key, to exercise the refusal.
    public static func run(targets: [Target], securities: [NodeSecurity], messages: Int, seed: UInt64, seconds: Double,
                           concurrency: Int = 16, dictionary: [String] = [], seeds: [Int: [Chorus_V1_Request]] = [:],
                           timeout: Duration = .seconds(5)) async throws -> Report {
        let keys = securities.isEmpty ? [NodeSecurity.insecure] : securities
        // clientsBy[k][i]: target i with key k.
        let clientsBy: [[DealerClient]] = try keys.map { security in
            try targets.map { t in
                let curve = try security.curveClient(serverKey: t.coordinator ? security.coordinatorKey : t.serverKey,
                                                     peerRole: t.coordinator ? "coordinator" : "worker", endpoint: t.endpoint)
                return try DealerClient(connect: t.endpoint, curve: curve, correlate: responseCorrelationId)
            }
        }
        let clients = clientsBy[0]
        defer { clientsBy.joined().forEach { $0.close() } }
        var fuzzer = WireFuzzer(seed: seed, dictionary: dictionary)
        fuzzer.seeds = seeds
        var report = Report(seed: seed)
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        var correlation: UInt64 = 1 << 40
        await withTaskGroup(of: (String, String).self) { group in
            var inFlight = 0
            func tally(_ r: (String, String)) {
                report.replies[r.1, default: 0] += 1
                report.byRequest[r.0, default: [:]][r.1, default: 0] += 1
            }
            while report.messages < messages && ContinuousClock.now < deadline {
                var req = fuzzer.request()
                correlation += 1
                req.correlationID = correlation  // unique, so the reply can be matched
                report.messages += 1
                guard let bytes: [UInt8] = try? req.serializedBytes() else { continue }
                let kind = req.body.map(caseName) ?? "no_body"
                let serving = targets.indices.filter { i in
                    targets[i].coordinator ? kind != "partition_map" || i % 2 == 0 : Self.workerRequests.contains(kind)
                }
                let pick = !serving.isEmpty && fuzzer.chance(0.75) ? serving[fuzzer.below(serving.count)]
                    : fuzzer.below(targets.count)
                var k = 0
                if keys.count > 1 {
                    let internalType = AccessPolicy.rule(req, readOnlyKinds: []) == .internal
                    k = internalType != fuzzer.chance(0.1) ? 1 : 0
                }
                let client = clientsBy[k][pick]
                switch fuzzer.frames(bytes) {
                case let .truncated(b): report.truncated += 1; client.post(frames: [b])
                case let .flipped(b): report.flipped += 1; client.post(frames: [b])
                case let .extra(f): report.extraFrames += 1; client.post(frames: f)
                case let .whole(b):
                    report.whole += 1
                    if inFlight >= concurrency, let r = await group.next() { inFlight -= 1; tally(r) }
                    inFlight += 1
                    let id = correlation
                    group.addTask {
                        do {
                            let reply = try await client.request(b, correlationId: id, timeout: timeout)
                            guard let resp = try? Chorus_V1_Response(serializedBytes: reply) else { return (kind, "undecodable_reply") }
                            if case let .error(e)? = resp.body { return (kind, codeName(e.code)) }
                            return (kind, resp.body == nil ? "empty" : "ok")
                        } catch {
                            return (kind, "no_reply")
                        }
                    }
                }
            }
            for await r in group { tally(r) }
        }
        report.seconds = (ContinuousClock.now - start).seconds
        report.badRequestRate = report.whole == 0 ? 0 : Double(report.replies["bad_request"] ?? 0) / Double(report.whole)
        // Still serving: a plain partition_map request to every target.
        for (i, t) in targets.enumerated() {
            var ping = Chorus_V1_Request()
            ping.protocolVersion = Wire.protocolVersion
            ping.correlationID = 7 + UInt64(i)
            ping.sender = "fuzz"
            ping.body = .partitionMap(.init())
            let ok: Bool
            if let b: [UInt8] = try? ping.serializedBytes(),
               let reply = try? await clients[i].request(b, correlationId: ping.correlationID, timeout: .seconds(10)),
               let resp = try? Chorus_V1_Response(serializedBytes: reply), case .partitionMap? = resp.body {
                ok = true
            } else {
                ok = false
            }
            if !ok { report.unresponsive.append(t.name) }
        }
        return report
    }

    /// Valid requests the fuzzer mutates (`WireFuzzer.seeds`), by body field number. None of them, nor a mutation
    /// of one or two fields, can take a real worker out of the cluster: the map is old and of another cluster, no
    /// registration, admin or job submission is among them, and copies name a source nobody listens on.
    public static func seeds(partitions: UInt32, clusterId: String, jobs: JobRegistry = .empty) -> [Int: [Chorus_V1_Request]] {
        func req(_ body: Chorus_V1_Request.OneOf_Body) -> Chorus_V1_Request {
            var r = Chorus_V1_Request()
            r.protocolVersion = Wire.protocolVersion
            r.sender = "fuzz"
            r.body = body
            return r
        }
        let ps = (0..<max(1, partitions)).map { $0 }
        var out: [Int: [Chorus_V1_Request]] = [:]
        // run_task and job_broadcast: every kind on the job SDK gives its own seeds (`Job.fuzzSeeds`), as one task
        // message for one partition and the stage's broadcast with the kind's payload.
        var sdkBroadcasts: [Chorus_V1_Request] = []
        for job in jobs.jobs {
            for seed in job.fuzzSeeds {
                var t = Chorus_V1_RunTask()
                t.jobID = "fuzz-" + job.kind; t.kind = job.kind; t.stage = seed.stage
                t.partition = ps[Int(StableHash.fnv1a64(Array((job.kind + seed.stage).utf8)) % UInt64(ps.count))]
                t.partitions = [t.partition]
                t.params = seed.params
                out[19, default: []].append(req(.runTask(t)))
                if let payload = seed.broadcast {
                    var b = Chorus_V1_JobBroadcast()
                    b.jobID = t.jobID; b.kind = job.kind; b.stage = seed.stage; b.params = seed.params; b.payload = payload
                    sdkBroadcasts.append(req(.jobBroadcast(b)))
                }
            }
        }
        out[22] = sdkBroadcasts
        // Reads on each partition.
        out[20] = ps.prefix(8).map { p in var g = Chorus_V1_ProfileGet(); g.userID = "u1"; g.partition = p; return req(.profileGet(g)) }
        out[21] = ps.prefix(8).map { p in var g = Chorus_V1_ProfileScan(); g.partition = p; g.limit = 5; return req(.profileScan(g)) }
        out[33] = ps.prefix(8).map { p in var g = Chorus_V1_UserHistoryRequest(); g.userID = "u1"; g.partition = p; return req(.userHistory(g)) }
        out[29] = ps.prefix(8).map { p in
            var c = Chorus_V1_PartitionChunkRequest(); c.partition = p; c.maxBytes = 4096
            return req(.partitionChunk(c))
        }
        out[47] = ps.prefix(8).map { p in
            var f = Chorus_V1_PartitionFileRequest(); f.partition = p; f.maxBytes = 4096
            return req(.partitionFile(f))
        }
        var chunk = Chorus_V1_FileChunkRequest(); chunk.fileID = "fuzz-file"; chunk.maxBytes = 4096
        out[48] = [req(.fileChunk(chunk))]
        // A write of one user and its replication.
        var put = Chorus_V1_Put()
        put.partition = ps[0]; put.role = .user; put.keyID = Data("fuzz-user".utf8); put.counted = true
        var user = Chorus_V1_User(); user.id = "fuzz-user"
        put.value = (try? user.serializedData()) ?? Data()
        var wb = Chorus_V1_WriteBatch(); wb.puts = [put]
        // And one of a week's channel spend, whose numbers the worker checks (finite, ≥ 0, a known period).
        let spendRecord = SpendRecord(channel: "fuzz", date: "2025-09-01", period: .week, spend: 100, impressions: 1000,
                                      clicks: 10, conversions: 1, revenue: 20)
        var spendPut = Chorus_V1_Put()
        spendPut.partition = ps[0]; spendPut.role = .spend; spendPut.keyID = Data(spendRecord.identityKey.utf8)
        spendPut.counted = true
        spendPut.value = (try? Wire.encode(spendRecord).serializedData()) ?? Data()
        var spendBatch = Chorus_V1_WriteBatch(); spendBatch.puts = [spendPut]
        out[14] = [req(.writeBatch(wb)), req(.writeBatch(spendBatch))]
        var op = Chorus_V1_ReplicaOp()
        op.partition = ps[0]; op.key = Data(ShardKeys.key(partition: ps[0], role: 1, id: Array("fuzz-user".utf8))); op.value = put.value
        var rw = Chorus_V1_ReplicaWrite(); rw.primary = "fuzz"; rw.ops = [op]
        out[25] = [req(.replicaWrite(rw))]
        var prepared = WriteBatch()
        prepared.put([UInt8](op.key), [UInt8](op.value))
        var rb = Chorus_V1_ReplicaBatch(); rb.primary = "fuzz"; rb.batch = Data(prepared.prepared()); rb.count = 1
        out[49] = [req(.replicaBatch(rb))]
        // A well-shaped map, version 1 (older than any the cluster holds) and of another cluster: a mutation of one
        // field cannot make it one a worker adopts. (A valid newer map of the cluster's own id would be adopted
        // and would take the worker's partitions away: that needs authentication to refuse, not validation.)
        var map = Chorus_V1_PartitionMap()
        map.version = 1; map.partitionCount = UInt32(ps.count); map.clusterID = "fuzz-other-" + clusterId
        map.replicationFactor = 1
        map.assignments = ps.map { p in var a = Chorus_V1_PartitionAssignment(); a.partition = p; return a }
        out[30] = [req(.mapPush(map))]
        var copy = Chorus_V1_CopyPartition()
        copy.partition = ps[0]; copy.sourceID = "fuzz"; copy.sourceAddress = "tcp://127.0.0.1:9"
        out[28] = [req(.copyPartition(copy))]
        // Coordinator reads.
        var rec = Chorus_V1_RecommendRequest(); rec.userID = "u1"; rec.n = 5
        var sim = Chorus_V1_SimilarRequest(); sim.contentID = "i1"; sim.n = 5
        var sq = Chorus_V1_SentimentQuery(); sq.what = "series"; sq.key = "topic:tech"
        var mg = Chorus_V1_ModelRequest(); mg.name = "sentiment-default"
        out[31] = [req(.recommend(rec))]
        out[32] = [req(.similar(sim))]
        out[37] = [req(.sentimentQuery(sq))]
        var jr = Chorus_V1_JobResultGet(); jr.kind = "segments"; jr.key = "table"
        out[41] = [req(.jobResult(jr))]
        out[35] = [req(.modelGet(mg))]
        // Documents, in a collection of the fuzzer's own.
        var dp = Chorus_V1_DocumentPut(); dp.collection = "fuzz"; dp.id = "d1"; dp.body = Data("{}".utf8)
        dp.author = "fuzz"; dp.action = "create"
        var dg = Chorus_V1_DocumentGet(); dg.collection = "fuzz"; dg.id = "d1"; dg.withHistory = true
        var dl = Chorus_V1_DocumentListRequest(); dl.collection = "fuzz"
        var da = Chorus_V1_DocumentApprove(); da.collection = "fuzz"; da.id = "d1"; da.version = 1; da.by = "fuzz2"
        var de = Chorus_V1_DocumentEvent(); de.collection = "fuzz"; de.id = "d1"; de.who = "fuzz"; de.action = "export"
        out[42] = [req(.documentPut(dp))]
        out[43] = [req(.documentGet(dg))]
        out[44] = [req(.documentList(dl))]
        out[45] = [req(.documentApprove(da))]
        out[46] = [req(.documentEvent(de))]
        return out
    }

    /// "register_worker", "map_push", ... (the oneof case, from its Swift name).
    static func caseName(_ body: Chorus_V1_Request.OneOf_Body) -> String {
        let label = Mirror(reflecting: body).children.first?.label ?? "\(body)"
        return label.reduce(into: "") { s, c in
            if c.isUppercase { s += "_" + c.lowercased() } else { s.append(c) }
        }
    }

    static func codeName(_ c: Chorus_V1_ErrorCode) -> String {
        switch c {
        case .badRequest: return "bad_request"
        case .notFound: return "not_found"
        case .wrongOwner: return "wrong_owner"
        case .unavailable: return "unavailable"
        case .internal: return "internal"
        case .cancelled: return "cancelled"
        case .unknownNode: return "unknown_node"
        case .fenced: return "fenced"
        default: return "code_\(c.rawValue)"
        }
    }
}
