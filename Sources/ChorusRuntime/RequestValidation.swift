import ChorusModel
import ChorusTransport
import ChorusStorage
import ChorusWire
import Foundation

/// Validation at the edge (issue 21). Everything that arrives on a socket is untrusted, including requests that
/// normally come from the coordinator or another worker: until peers authenticate (a later security issue), any
/// process that can reach a port can send any well-formed `Request`, and after that a buggy or outdated peer still
/// can. So every request is checked here before it changes any state, and a violation is answered BAD_REQUEST with
/// the field and the reason (`invalid job_broadcast.als[0].ids[1]: duplicate id ''`).
///
/// Two layers:
/// 1. `check(_:)` — stateless rules on the request alone (sizes, counts, parallel lengths, unique ids, finite
///    floats, known enum values). The servers call it for every request before dispatch.
/// 2. Rules that need the receiver's state, called by the handler before it applies anything: `partitionMap`
///    (a map against the held one). A job kind checks its own payloads (e.g. ALS sides against the job's rank).
///
/// The limits below are documented in docs/architecture.md ("Messages"). They are far above what the cluster itself
/// sends (a test runs real jobs through them) and exist so that no count or size from the wire reaches an
/// allocation, a loop bound or an integer conversion unchecked.
public enum RequestValidation {
    /// Node, job, user, content, model and dataset ids, stage names, keys of params.
    public static let maxIdBytes = 1024
    /// A param value: the largest declared job parameter (sentiment-train's `provenance`, 1 MiB) travels in
    /// `run_task` too. JSON payloads and model files are bounded by the frame size instead.
    public static let maxParamValueBytes = 1 << 20
    public static let maxParams = 256
    /// Partitions of a cluster (also the `--partitions` limit) and nodes in a map.
    public static let maxPartitions: UInt32 = 65_536
    public static let maxNodes = 4096
    /// Copies of one partition besides the primary (replicas, learners): R is at most 5, moves add learners.
    public static let maxCopies = 16
    /// ALS ranks (the `rank` job parameter's range).
    public static let maxRank: UInt32 = 512
    /// Results asked for by recommend/similar/job list/sentiment alerts.
    public static let maxResults: UInt32 = 10_000

    /// A rule violation: BAD_REQUEST on the wire (`ChorusError.invalidInput`).
    static func invalid(_ field: String, _ reason: String) -> ChorusError {
        ChorusError(.invalidInput, "invalid \(field): \(reason)")
    }

    // MARK: 1. stateless

    /// Checks one request on its own. Throws `invalid(field, reason)`.
    public static func check(_ req: Chorus_V1_Request) throws {
        try id(req.sender, "sender", allowEmpty: true)
        guard let body = req.body else { return }
        switch body {
        case let .registerWorker(r):
            try id(r.nodeID, "register_worker.node_id")
            try id(r.name, "register_worker.name", allowEmpty: true)
            try id(r.address, "register_worker.address")
            guard r.address.hasPrefix("tcp://") || r.address.hasPrefix("ipc://") else {
                throw invalid("register_worker.address", "not a tcp:// or ipc:// endpoint")
            }
            guard r.cores <= 4096 else { throw invalid("register_worker.cores", "\(r.cores) is above 4096") }
            guard r.publicKey.isEmpty || z85Key(r.publicKey) != nil else {
                throw invalid("register_worker.public_key", "not a 40-character Z85 CurveZMQ key")
            }
        case let .heartbeat(h):
            try id(h.nodeID, "heartbeat.node_id")
            try partitions(h.nonemptyPartitions, "heartbeat.nonempty_partitions")
            try unique(h.moves.map(\.partition), "heartbeat.moves", what: "partition")
            guard h.jobStates.count <= 10_000 else { throw invalid("heartbeat.job_states", "\(h.jobStates.count) jobs") }
            for (i, j) in h.jobStates.enumerated() { try id(j, "heartbeat.job_states[\(i)]") }
            for (i, m) in h.moves.enumerated() {
                guard m.partition < maxPartitions else { throw invalid("heartbeat.moves[\(i)].partition", "out of range") }
            }
        case .clusterStatus, .partitionMap, .rebalance, .sealPartitions:
            break
        case let .writeBatch(b):
            for (i, p) in b.puts.enumerated() {
                guard p.partition < maxPartitions else { throw invalid("write_batch.puts[\(i)].partition", "out of range") }
            }
        case let .submitJob(s):
            try id(s.kind, "submit_job.kind")
            try params(s.params, "submit_job.params")
            guard s.after.count <= maxParams else { throw invalid("submit_job.after", "\(s.after.count) ids, more than \(maxParams)") }
            for (i, a) in s.after.enumerated() { try id(a, "submit_job.after[\(i)]") }
        case let .submitPipeline(p):
            try id(p.name, "submit_pipeline.name", allowEmpty: true)
            guard p.steps.count <= maxParams else {
                throw invalid("submit_pipeline.steps", "\(p.steps.count) steps, more than \(maxParams)")
            }
            for (i, st) in p.steps.enumerated() {
                try id(st.name, "submit_pipeline.steps[\(i)].name")
                try id(st.kind, "submit_pipeline.steps[\(i)].kind")
                try params(st.params, "submit_pipeline.steps[\(i)].params")
                guard st.after.count <= maxParams else { throw invalid("submit_pipeline.steps[\(i)].after", "too many names") }
                for (k, a) in st.after.enumerated() { try id(a, "submit_pipeline.steps[\(i)].after[\(k)]") }
            }
        case let .pipelineStatus(p): try id(p.id, "pipeline_status.id")
        case let .pipelineList(l):
            guard l.limit <= maxResults else { throw invalid("pipeline_list.limit", "\(l.limit) is above \(maxResults)") }
        case let .jobStatus(j): try id(j.id, "job_status.id")
        case let .jobCancel(j): try id(j.id, "job_cancel.id")
        case let .jobRelease(j): try id(j.id, "job_release.id")
        case let .jobList(l):
            guard l.limit <= maxResults else { throw invalid("job_list.limit", "\(l.limit) is above \(maxResults)") }
        case let .runTask(t):
            try id(t.jobID, "run_task.job_id")
            try id(t.kind, "run_task.kind")
            try id(t.stage, "run_task.stage")
            guard t.partition < maxPartitions else { throw invalid("run_task.partition", "out of range") }
            try partitions(t.partitions, "run_task.partitions")
            try unique(t.partitions, "run_task.partitions", what: "partition")
            try params(t.params, "run_task.params")
        case let .profileGet(g):
            try id(g.userID, "profile_get.user_id", allowEmpty: true)
            try id(g.kind, "profile_get.kind", allowEmpty: true)
        case let .profileScan(s):
            try id(s.after, "profile_scan.after", allowEmpty: true)
        case let .userHistory(u):
            try id(u.userID, "user_history.user_id", allowEmpty: true)
        case let .jobBroadcast(b):
            try jobBroadcast(b)
        case let .replicaWrite(r):
            try id(r.primary, "replica_write.primary")
            for (i, op) in r.ops.enumerated() {
                let f = "replica_write.ops[\(i)]"
                guard op.key.count >= 5, ShardKeys.partition(ofKey: op.key) == op.partition else {
                    throw invalid(f + ".key", "not a key of partition \(op.partition)")
                }
                if op.delete, !op.rangeEnd.isEmpty || !op.value.isEmpty {
                    throw invalid(f + ".delete", "a delete has no value and no range end")
                }
                if !op.rangeEnd.isEmpty {
                    // A range delete stays inside its partition: [key, range_end) with range_end at most the
                    // partition's end.
                    let end = Store.partitionEnd(op.partition)
                    guard op.key.lexicographicallyPrecedes(op.rangeEnd),
                          !end.lexicographicallyPrecedes([UInt8](op.rangeEnd)) else {
                        throw invalid(f + ".range_end", "not after the key and inside partition \(op.partition)")
                    }
                }
            }
        case let .replicaBatch(r):
            // The batch itself (only puts, its count, every key's partition) is parsed whole by the worker.
            try id(r.primary, "replica_batch.primary")
            guard r.batch.count >= 12, r.count > 0 else { throw invalid("replica_batch.batch", "empty") }
        case .keysReload:
            break
        case let .audit(q):
            guard q.limit <= 100_000 else { throw invalid("audit.limit", "\(q.limit) is above 100000") }
        case let .nodeAdmin(a):
            try id(a.node, "node_admin.node")
            guard [.drain, .undrain, .remove].contains(a.action) else {
                throw invalid("node_admin.action", "unknown action \(a.action.rawValue)")
            }
        case let .copyPartition(c):
            guard c.partition < maxPartitions else { throw invalid("copy_partition.partition", "out of range") }
            try id(c.sourceID, "copy_partition.source_id")
            try id(c.sourceAddress, "copy_partition.source_address")
            guard c.sourceAddress.hasPrefix("tcp://") || c.sourceAddress.hasPrefix("ipc://") else {
                throw invalid("copy_partition.source_address", "not a tcp:// or ipc:// endpoint")
            }
        case let .partitionChunk(c):
            guard c.partition < maxPartitions else { throw invalid("partition_chunk.partition", "out of range") }
            if !c.after.isEmpty {
                guard c.after.count >= 5, ShardKeys.partition(ofKey: c.after) == c.partition else {
                    throw invalid("partition_chunk.after", "not a key of partition \(c.partition)")
                }
            }
        case let .partitionFile(f):
            guard f.partition < maxPartitions else { throw invalid("partition_file.partition", "out of range") }
            if !f.after.isEmpty {
                guard f.after.count >= 5, f.after.count <= 4 * maxIdBytes, ShardKeys.partition(ofKey: f.after) == f.partition else {
                    throw invalid("partition_file.after", "not a key of partition \(f.partition)")
                }
            }
        case let .fileChunk(f):
            try id(f.fileID, "file_chunk.file_id")
            guard f.maxBytes <= 64 << 20 else { throw invalid("file_chunk.max_bytes", "\(f.maxBytes) is above 64 MiB") }
        case let .mapPush(m):
            try partitionMapShape(m, "map_push")
        case let .recommend(r):
            try id(r.userID, "recommend.user_id")
            guard r.n <= maxResults else { throw invalid("recommend.n", "\(r.n) is above \(maxResults)") }
        case let .similar(s):
            try id(s.contentID, "similar.content_id")
            guard s.n <= maxResults else { throw invalid("similar.n", "\(s.n) is above \(maxResults)") }
        case let .modelList(m): try id(m.name, "model_list.name", allowEmpty: true)
        case let .modelGet(m): try id(m.name, "model_get.name")
        case let .modelPut(m): try id(m.name, "model_put.name", allowEmpty: true)
        case let .sentimentQuery(q):
            guard ["series", "alerts", "keys"].contains(q.what) else {
                throw invalid("sentiment_query.what", "'\(q.what.prefix(40))' is not series, alerts or keys")
            }
            try id(q.key, "sentiment_query.key", allowEmpty: true)
            guard q.limit <= maxResults else { throw invalid("sentiment_query.limit", "\(q.limit) is above \(maxResults)") }
        case let .jobResult(r):
            try id(r.kind, "job_result.kind")
            try id(r.key, "job_result.key")
        case let .documentPut(d):
            try documentName(d.collection, d.id, "document_put")
            guard !d.body.isEmpty, d.body.count <= maxDocumentBytes else {
                throw invalid("document_put.body", d.body.isEmpty ? "empty" : "\(d.body.count) bytes, more than \(maxDocumentBytes)")
            }
            try id(d.author, "document_put.author")
            try id(d.action, "document_put.action")
            try text(d.summary, "document_put.summary")
            try id(d.jobID, "document_put.job_id", allowEmpty: true)
            try id(d.title, "document_put.title", allowEmpty: true)
        case let .documentGet(d): try documentName(d.collection, d.id, "document_get")
        case let .documentList(l):
            try documentName(l.collection, nil, "document_list")
            guard l.limit <= maxResults else { throw invalid("document_list.limit", "\(l.limit) is above \(maxResults)") }
        case let .documentApprove(a):
            try documentName(a.collection, a.id, "document_approve")
            guard a.version > 0 else { throw invalid("document_approve.version", "0: name the version you reviewed") }
            try id(a.by, "document_approve.by")
            try text(a.note, "document_approve.note")
        case let .documentEvent(e):
            try documentName(e.collection, e.id, "document_event")
            try id(e.who, "document_event.who")
            try id(e.action, "document_event.action")
            try text(e.detail, "document_event.detail")
        }
    }

    /// Largest document version body (a campaign plan is tens of KB).
    public static let maxDocumentBytes = 8 << 20

    /// Collection and document names: letters, digits, '-', '_', '.', at most 128 bytes (they are store keys).
    static func documentName(_ collection: String, _ docID: String?, _ field: String) throws {
        for (name, value) in [("collection", collection)] + (docID.map { [("id", $0)] } ?? []) {
            guard !value.isEmpty, value.utf8.count <= 128,
                  value.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }) else {
                throw invalid("\(field).\(name)", "'\(value.prefix(60))' must be 1 to 128 letters, digits, '-', '_' or '.'")
            }
        }
    }

    static func text(_ s: String, _ field: String) throws {
        guard s.utf8.count <= 64 << 10 else { throw invalid(field, "\(s.utf8.count) bytes, more than 65536") }
    }

    static func id(_ s: String, _ field: String, allowEmpty: Bool = false) throws {
        if !allowEmpty && s.isEmpty { throw invalid(field, "empty") }
        if s.utf8.count > maxIdBytes { throw invalid(field, "\(s.utf8.count) bytes, more than \(maxIdBytes)") }
    }

    static func params(_ p: [String: String], _ field: String) throws {
        guard p.count <= maxParams else { throw invalid(field, "\(p.count) entries, more than \(maxParams)") }
        for (k, v) in p {
            try id(k, field + " key")
            guard v.utf8.count <= maxParamValueBytes else {
                throw invalid(field + "." + k.prefix(40), "\(v.utf8.count) bytes, more than \(maxParamValueBytes)")
            }
        }
    }

    /// Shared with the job kinds' payload checks (BAD_REQUEST naming the field), like `finite`.
    public static func unique<T: Hashable>(_ values: [T], _ field: String, what: String) throws {
        var seen = [T: Int]()
        seen.reserveCapacity(values.count)
        for (i, v) in values.enumerated() {
            if let j = seen.updateValue(i, forKey: v) {
                throw invalid("\(field)[\(i)]", "duplicate \(what) '\(String(describing: v).prefix(60))' (also at \(j))")
            }
        }
    }

    static func partitions(_ ps: [UInt32], _ field: String) throws {
        for (i, p) in ps.enumerated() where p >= maxPartitions { throw invalid("\(field)[\(i)]", "\(p) is out of range") }
    }

    /// Every float32 (stride 4) or float64 (stride 8) little-endian value of `d` is finite.
    public static func finite(_ d: Data, stride: Int, _ field: String) throws {
        let bad: Int? = d.withUnsafeBytes { raw in
            for i in 0..<(raw.count / stride) {
                let ok = stride == 4
                    ? Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))).isFinite
                    : Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))).isFinite
                if !ok { return i }
            }
            return nil
        }
        if let bad { throw invalid(field, "value \(bad) is not finite (NaN or infinite)") }
    }

    /// The shape of a map on its own: a partition count in range with one assignment per partition, in partition
    /// order (the worker indexes `assignments` by partition number), bounded holder lists and unique node ids.
    static func partitionMapShape(_ m: Chorus_V1_PartitionMap, _ f: String) throws {
        guard (1...maxPartitions).contains(m.partitionCount) else {
            throw invalid(f + ".partition_count", "\(m.partitionCount) is not in 1...\(maxPartitions)")
        }
        guard m.assignments.count == Int(m.partitionCount) else {
            throw invalid(f + ".assignments", "\(m.assignments.count) assignments for partition count \(m.partitionCount)")
        }
        guard m.nodes.count <= maxNodes else { throw invalid(f + ".nodes", "\(m.nodes.count) nodes, more than \(maxNodes)") }
        guard m.replicationFactor <= 5 else { throw invalid(f + ".replication_factor", "\(m.replicationFactor) is above 5") }
        try id(m.clusterID, f + ".cluster_id", allowEmpty: true)
        try id(m.hash, f + ".hash", allowEmpty: true)
        try unique(m.nodes.map(\.id), f + ".nodes", what: "node id")
        for (i, n) in m.nodes.enumerated() {
            try id(n.id, "\(f).nodes[\(i)].id")
            try id(n.name, "\(f).nodes[\(i)].name", allowEmpty: true)
            try id(n.address, "\(f).nodes[\(i)].address", allowEmpty: true)
        }
        for (i, a) in m.assignments.enumerated() {
            let af = "\(f).assignments[\(i)]"
            guard a.partition == UInt32(i) else { throw invalid(af + ".partition", "\(a.partition), expected \(i) (partition order)") }
            try id(a.owner, af + ".owner", allowEmpty: true)
            guard a.replicas.count <= maxCopies, a.learners.count <= maxCopies else {
                throw invalid(af, "more than \(maxCopies) replicas or learners")
            }
            for h in a.replicas + a.learners { try id(h, af + " holder") }
        }
    }

    static func jobBroadcast(_ b: Chorus_V1_JobBroadcast) throws {
        try id(b.jobID, "job_broadcast.job_id")
        try id(b.kind, "job_broadcast.kind", allowEmpty: true)
        try id(b.stage, "job_broadcast.stage", allowEmpty: true)
        try params(b.params, "job_broadcast.params")
    }

    // MARK: 2. against the receiver's state

    /// A map a worker is about to adopt, against the one it holds: the shape above, the cluster it belongs to, and a
    /// partition count that never changes. (An older version is not an error, since pushes and heartbeat replies
    /// can cross; it is simply not applied, so the held version only moves forward.)
    public static func partitionMap(_ m: Chorus_V1_PartitionMap, held: Chorus_V1_PartitionMap, clusterId: String?,
                                    field f: String = "partition_map") throws {
        try partitionMapShape(m, f)
        if let clusterId, m.clusterID != clusterId {
            throw invalid(f + ".cluster_id", "'\(m.clusterID.prefix(60))' is not this node's cluster \(clusterId)")
        }
        if held.version > 0, held.partitionCount != m.partitionCount {
            throw invalid(f + ".partition_count", "\(m.partitionCount), but the cluster has \(held.partitionCount) partitions")
        }
    }
}

extension Store {
    /// The first key after every key of `partition` (5 bytes: the next partition's prefix, or FF×5 after the last).
    static func partitionEnd(_ partition: UInt32) -> [UInt8] {
        partition == UInt32.max ? [0xFF, 0xFF, 0xFF, 0xFF, 0xFF] : ShardKeys.prefix(partition: partition + 1)
    }
}
