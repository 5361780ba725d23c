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

    func als(_ side: String = "users", ids: [String], rank: UInt32 = 1, width: UInt32 = 1, factors: [Float]) -> Chorus_V1_AlsModel {
        var m = Chorus_V1_AlsModel()
        m.side = side; m.ids = ids; m.rank = rank; m.width = width; m.factors = floats(factors)
        return m
    }

    func broadcast(_ models: [Chorus_V1_AlsModel]) -> Chorus_V1_Request.OneOf_Body {
        var b = Chorus_V1_JobBroadcast()
        b.jobID = "job-1"
        b.als = models
        return .jobBroadcast(b)
    }

    @Test func alsSidesNeedUniqueIdsAndMatchingLengths() {
        #expect(refusal(broadcast([als(ids: ["", ""], factors: [1, 1])]))?
            .contains("job_broadcast.als[0].ids[1]: duplicate id ''") == true)
        #expect(refusal(broadcast([als(ids: ["a", "b"], factors: [1])]))?
            .contains("job_broadcast.als[0].factors: 4 bytes for 2 ids × width 1 × 4") == true)
        #expect(refusal(broadcast([als(ids: ["a"], factors: [.nan])]))?.contains("not finite") == true)
        #expect(refusal(broadcast([als(ids: ["a"], rank: 0, width: 0, factors: [])]))?.contains(".rank: 0") == true)
        #expect(refusal(broadcast([als(ids: ["a"], rank: 2, width: 4, factors: [1, 1, 1, 1])]))?.contains(".width") == true)
        #expect(refusal(broadcast([als("both", ids: ["a"], factors: [1])]))?.contains(".side") == true)
        #expect(refusal(broadcast([als(ids: ["a"], factors: [1]), als(ids: ["b"], factors: [1])]))?
            .contains("duplicate side") == true)
        var gram = als(ids: ["a", "b"], rank: 2, width: 2, factors: [1, 2, 3, 4])
        gram.gram = FloatPacking.packDoubles([1, 2, 3])
        #expect(refusal(broadcast([gram]))?.contains("gram: 24 bytes for rank 2 (must be rank² × 8)") == true)
        gram.gram = FloatPacking.packDoubles([1, 2, 3, 4])
        #expect(refusal(broadcast([gram])) == nil)
        // Without ids (a later broadcast): whole rows only.
        #expect(refusal(broadcast([als(ids: [], rank: 2, width: 3, factors: [1, 2, 3, 4])]))?.contains("multiple") == true)
        #expect(refusal(broadcast([als(ids: [], rank: 2, width: 3, factors: [1, 2, 3, 4, 5, 6])])) == nil)
    }

    @Test func alsSidesMustFitTheirJob() throws {
        let m = als(ids: [], rank: 2, width: 2, factors: [1, 2, 3, 4])
        #expect(throws: ChorusError.self) {
            try RequestValidation.alsModel(m, field: "f", rank: 4, width: 4, implicit: false, knownIds: nil)
        }
        #expect(throws: ChorusError.self) {  // 2 rows, but 3 ids were sent before
            try RequestValidation.alsModel(m, field: "f", rank: 2, width: 2, implicit: false, knownIds: 3)
        }
        #expect(throws: ChorusError.self) {  // implicit mode needs the Gram matrix
            try RequestValidation.alsModel(m, field: "f", rank: 2, width: 2, implicit: true, knownIds: 2)
        }
        try RequestValidation.alsModel(m, field: "f", rank: 2, width: 2, implicit: false, knownIds: 2)
    }

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
        t.jobID = "j"; t.kind = JobKinds.sentimentTrain; t.stage = "st-load"; t.params = ["dimensions": "3000"]
        #expect(refusal(.runTask(t))?.contains("run_task.params.dimensions") == true)
        t.params = ["dimensions": "262144"]
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
        var b = Chorus_V1_JobBroadcast()
        b.jobID = "j"; b.softmaxParameters = FloatPacking.packDoubles([1, .nan])
        #expect(refusal(.jobBroadcast(b))?.contains("softmax_parameters: value 1 is not finite") == true)
        var a = Chorus_V1_NodeAdmin()
        a.node = "w1"
        #expect(refusal(.nodeAdmin(a))?.contains("node_admin.action") == true)
        var q = Chorus_V1_SentimentQuery()
        q.what = "everything"
        #expect(refusal(.sentimentQuery(q))?.contains("sentiment_query.what") == true)
        #expect(throws: ChorusError.self) {
            _ = try JobParameters.validate(kind: JobKinds.sentimentTrain, params: ["dimensions": "3000"])
        }
    }

    @Test func theFuzzerCoversEveryRequestTypeAndIsDeterministic() throws {
        var f = WireFuzzer(seed: 42)
        let cases = f.requestCases()
        #expect(cases == Array(10...40), "\(cases)")  // every Request.body case of cluster.proto
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
        #expect(seen.count >= 25, "\(seen.sorted())")  // uniform over 31 cases
        for c in cases {
            for _ in 0..<4 {
                let r = f.request(bodyCase: c)
                if case let .jobBroadcast(jb)? = r.body, !jb.als.isEmpty { nested += 1 }
                if let b = r.body { seen.insert(WireFuzz.caseName(b)) }
            }
        }
        #expect(seen.count == 31, "\(seen.sorted())")
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
        // Every message type's fields are found (AlsModel: 9 fields, PartitionMap: 7).
        #expect(f.schema(Chorus_V1_AlsModel.self) == Array(1...9))
        #expect(f.schema(Chorus_V1_PartitionMap.self) == Array(1...7))
    }
}
