@testable import ChorusJobs
import ChorusModel
import ChorusStorage
@testable import ChorusRuntime
@testable import ChorusWire
import Foundation
import SwiftProtobuf
import Testing

/// Validation at the edge (issue 21): each rule refuses with the field and the reason, and what the cluster itself
/// sends passes.
@Suite struct RequestValidationTests {
    /// The refusal message of `body`, or nil when it passes.
    func refusal(_ body: Chorus_V1_Request.OneOf_Body) -> String? {
        var r = Chorus_V1_Request()
        r.protocolVersion = 1
        r.body = body
        do { try RequestValidation.check(r); return nil } catch let e as ChorusError {
            #expect(e.code == .invalidInput && e.wire.code == .badRequest)
            return e.message
        } catch { return "\(error)" }
    }

    func floats(_ v: [Float]) -> Data { FloatPacking.pack(v) }

    /// A map as the coordinator builds it.
    func map(version: UInt64 = 3, partitions: UInt32 = 4, cluster: String = "c-1") -> Chorus_V1_PartitionMap {
        var m = Chorus_V1_PartitionMap()
        m.version = version
        m.partitionCount = partitions
        m.clusterID = cluster
        m.replicationFactor = 2
        m.hash = "fnv1a64"
        m.assignments = (0..<partitions).map { p in
            var a = Chorus_V1_PartitionAssignment()
            a.partition = p; a.owner = p % 2 == 0 ? "w-a" : "w-b"; a.replicas = [p % 2 == 0 ? "w-b" : "w-a"]
            return a
        }
        m.nodes = ["w-a", "w-b"].map { var n = Chorus_V1_NodeInfo(); n.id = $0; n.name = $0; return n }
        return m
    }

    @Test func mapsMustMatchTheirPartitionCountAndCluster() throws {
        #expect(refusal(.mapPush(map())) == nil)
        var bad = Chorus_V1_PartitionMap()
        bad.version = 1_000_000_000; bad.partitionCount = 64
        #expect(refusal(.mapPush(bad))?.contains("map_push.assignments: 0 assignments for partition count 64") == true)
        var shuffled = map()
        shuffled.assignments.swapAt(1, 2)
        #expect(refusal(.mapPush(shuffled))?.contains("map_push.assignments[1].partition: 2, expected 1") == true)
        var dupNodes = map()
        dupNodes.nodes.append(dupNodes.nodes[0])
        #expect(refusal(.mapPush(dupNodes))?.contains("duplicate node id") == true)
        #expect(refusal(.mapPush(map(partitions: 0))) != nil)
        #expect(refusal(.mapPush(map(partitions: 70_000))) != nil)

        let held = map(version: 2)
        try RequestValidation.partitionMap(map(), held: held, clusterId: "c-1")
        #expect(throws: ChorusError.self) { try RequestValidation.partitionMap(map(cluster: "c-2"), held: held, clusterId: "c-1") }
        #expect(throws: ChorusError.self) { try RequestValidation.partitionMap(map(cluster: ""), held: held, clusterId: "c-1") }
        #expect(throws: ChorusError.self) { try RequestValidation.partitionMap(map(partitions: 8), held: held, clusterId: "c-1") }
        // A fresh worker (no map, no cluster yet) takes the first map it gets.
        try RequestValidation.partitionMap(map(partitions: 8), held: Chorus_V1_PartitionMap(), clusterId: nil)
    }

    @Test func keysAndRangesStayInsideTheirPartition() {
        func op(_ p: UInt32, key: [UInt8], end: [UInt8] = []) -> Chorus_V1_Request.OneOf_Body {
            var o = Chorus_V1_ReplicaOp()
            o.partition = p; o.key = Data(key); o.rangeEnd = Data(end)
            var w = Chorus_V1_ReplicaWrite()
            w.primary = "w-a"; w.ops = [o]
            return .replicaWrite(w)
        }
        let pre = ShardKeys.prefix(partition: 3, role: 0x50)
        #expect(refusal(op(3, key: pre + [1])) == nil)
        #expect(refusal(op(3, key: pre, end: Store.prefixEnd(pre)!)) == nil)
        #expect(refusal(op(4, key: pre + [1]))?.contains("replica_write.ops[0].key") == true)
        // A range delete that would run into partition 4 and beyond.
        #expect(refusal(op(3, key: pre, end: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))?.contains("range_end") == true)
        #expect(refusal(op(3, key: pre + [9], end: pre + [1]))?.contains("range_end") == true)
        var c = Chorus_V1_PartitionChunkRequest()
        c.partition = 3; c.after = Data(ShardKeys.prefix(partition: 2, role: 1) + [7])
        #expect(refusal(.partitionChunk(c))?.contains("partition_chunk.after") == true)
    }

    @Test func sizesCountsAndNumbersAreBounded() {
        var t = Chorus_V1_RunTask()
        t.jobID = "j"; t.kind = SentimentTrainJob.kind; t.stage = "st-load"; t.params = ["dimensions": "3000"]
        // A registered kind's declared params are checked by the worker before dispatch.
        func paramRefusal(_ params: [String: String]) -> String? {
            do {
                try RequestValidation.declaredParams(params, SentimentTrainJob.parameters, kind: t.kind, field: "run_task.params")
                return nil
            } catch { return (error as? ChorusError)?.message ?? "\(error)" }
        }
        #expect(paramRefusal(t.params)?.contains("run_task.params.dimensions") == true)
        t.params = ["dimensions": "262144"]
        #expect(paramRefusal(t.params) == nil)
        #expect(refusal(.runTask(t)) == nil)
        // Model training's provenance (up to 1 MiB) travels in every task's params.
        t.params["provenance"] = String(repeating: "p", count: 1 << 20)
        #expect(refusal(.runTask(t)) == nil)
        t.params["provenance"] = String(repeating: "p", count: (1 << 20) + 1)
        #expect(refusal(.runTask(t))?.contains("run_task.params.provenance") == true)
        var big = Chorus_V1_ProfileGet()
        big.userID = String(repeating: "x", count: 2000)
        #expect(refusal(.profileGet(big))?.contains("profile_get.user_id: 2000 bytes, more than 1024") == true)
        var reg = Chorus_V1_RegisterWorker()
        reg.nodeID = "w-x"; reg.address = "udp://nowhere"
        #expect(refusal(.registerWorker(reg))?.contains("register_worker.address") == true)
        // sentiment-train's parameters broadcast is checked by the job's worker state (remote input).
        var params = Chorus_V1_Jobs_SentimentTrainParameters()
        params.step = 1; params.parameters = FloatPacking.packDoubles([1, .nan])
        let worker = try? SentimentTrainJob.workerState(WorkerJobInfo(jobID: "j", kind: SentimentTrainJob.kind,
                                                                      params: JobParams([:]), workerName: "w"))
        #expect(throws: ChorusError.self) {
            try worker?.receive(JobBroadcast(jobID: "j", stage: "st-eval-1", payload: try params.serializedData()))
        }
        do {
            try worker?.receive(JobBroadcast(jobID: "j", stage: "st-eval-1", payload: try params.serializedData()))
        } catch {
            #expect((error as? ChorusError)?.message.contains("parameters: value 1 is not finite") == true)
        }
        var a = Chorus_V1_NodeAdmin()
        a.node = "w1"
        #expect(refusal(.nodeAdmin(a))?.contains("node_admin.action") == true)
        var q = Chorus_V1_SentimentQuery()
        q.what = "everything"
        #expect(refusal(.sentimentQuery(q))?.contains("sentiment_query.what") == true)
        #expect(throws: ChorusError.self) {
            _ = try JobParameters.validate(kind: SentimentTrainJob.kind, params: ["dimensions": "3000"],
                                           registry: StandardJobs.registry)
        }
    }

    @Test func theFuzzerCoversEveryRequestTypeAndIsDeterministic() throws {
        var f = WireFuzzer(seed: 42)
        let cases = f.requestCases()
        #expect(cases == Array(10...51), "\(cases)")  // every Request.body case of cluster.proto
        var seen = Set<String>()
        var nested = 0
        for _ in 0..<300 {
            let r = f.request()
            // Well-formed: it decodes and encodes back to as many bytes (not compared by value: NaN != NaN; nor
            // byte for byte: map entries come out in dictionary order).
            let bytes: [UInt8] = try r.serializedBytes()
            let again: [UInt8] = try Chorus_V1_Request(serializedBytes: bytes).serializedBytes()
            #expect(again.count == bytes.count)
            if let b = r.body { seen.insert(WireFuzz.caseName(b)) }
        }
        #expect(seen.count >= 30, "\(seen.sorted())")  // uniform over 42 cases
        for c in cases {
            for _ in 0..<4 {
                let r = f.request(bodyCase: c)
                if case let .writeBatch(wb)? = r.body, !wb.puts.isEmpty { nested += 1 }  // repeated nested messages
                if let b = r.body { seen.insert(WireFuzz.caseName(b)) }
            }
        }
        #expect(seen.count == 42, "\(seen.sorted())")
        #expect(nested > 0)
        var a = WireFuzzer(seed: 7), b = WireFuzzer(seed: 7)
        var ordered = BinaryEncodingOptions()
        ordered.useDeterministicOrdering = true  // map entries in key order
        for i in 0..<50 {
            let x: [UInt8] = try a.request().serializedBytes(options: ordered)
            let y: [UInt8] = try b.request().serializedBytes(options: ordered)
            let same = x == y
            #expect(same, "request \(i) of seed 7 differs between two runs")
        }
        // Every message type's fields are found (AlsModel: 9 fields, PartitionMap: 8).
        #expect(f.schema(Chorus_V1_AlsModel.self) == Array(1...9))
        #expect(f.schema(Chorus_V1_PartitionMap.self) == Array(1...8))
    }
}
