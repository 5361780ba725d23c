import ChorusTransport
import ChorusWire
import Foundation
import Testing

/// Issue 21: one well-formed message must not crash a process. Every message that ever crashed one is kept here
/// as the exact bytes that did it; the structure-aware fuzzer (`chorus bench-fuzz`, `WireFuzzer`) runs against a
/// live coordinator and live workers, bounded in messages and seconds, and the cluster must still ingest and run
/// a job afterwards.
@Suite(.serialized) struct FuzzTests {
    struct Regression {
        var name: String
        /// nil: the coordinator; otherwise the worker's index.
        var worker: Int?
        var hex: String
        /// The refusal names the field and the reason.
        var expect: String
    }

    /// Messages that crashed a process before validation at the edge (regenerate a case with
    /// `protoc --encode=chorus.v1.Request -I proto chorus/v1/cluster.proto < case.txt | xxd -p`).
    static let regressions: [Regression] = [
        // 1. job_broadcast, ALS side users, ids ["", ""], rank 1, width 1, 8 bytes of factors (params rank=1,
        //    mode=explicit, biases=false): `Duplicate values for key: ''` in Dictionary(uniqueKeysWithValues:).
        //    The crash was sent in JobBroadcast.als (field 3); since `als` is on the job SDK (issue 12) that field is
        //    reserved and the same side travels as the job's payload (jobs/als.proto AlsBroadcast), which the ALS
        //    job checks before applying it. These are the same bytes in today's contract.
        .init(name: "als broadcast with duplicate ids", worker: 0,
              hex: "080110651a0466757a7ab201670a0866757a7a2d616c734a03616c73521b0a190a057573657273120012001a080000803f"
                  + "0000803f200128015a0b616c732d75736572732d3162090a0472616e6b12013162100a046d6f646512086578706c6963"
                  + "6974620f0a06626961736573120566616c7365",
              expect: "job_broadcast.payload.sides[0].ids[1]: duplicate id ''"),
        // 2a. map_push version 10^9, partition_count 64, no assignments: accepted, and then ...
        .init(name: "map push without assignments", worker: 0, hex: "080110661a0466757a7af20108088094ebdc031040",
              expect: "map_push.assignments: 0 assignments for partition count 64"),
        // 2b. ... profile_scan of partition 5 indexed assignments[5] (checkPrimary): index out of range.
        .init(name: "profile scan after the bad map", worker: 0, hex: "080110671a0466757a7aaa01020805",
              expect: "partition 5 does not exist"),
        // 3. Found by the fuzzer: run_task of sentiment-train with dimensions=3000 (not a power of two) reached
        //    SentimentFeaturizer's precondition on the partition's primary.
        .init(name: "sentiment-train task with 3000 dimensions", worker: 0,
              hex: "080110681a0466757a7a9a01370a0766757a7a2d7374120f73656e74696d656e742d747261696e1a0773742d6c6f"
                  + "616432120a0a64696d656e73696f6e73120433303030",
              expect: "run_task.params.dimensions"),
        // 4. The same through the front door: submit_job sentiment-train dimensions=3000 passed the parameter
        //    check (1024...2^24) and every worker hit the precondition in st-load.
        .init(name: "sentiment-train submit with 3000 dimensions", worker: nil,
              hex: "080110691a0466757a7a7a330a0f73656e74696d656e742d747261696e12120a0a64696d656e73696f6e731204333030"
                  + "30120c0a0764617461736574120178",
              expect: "dimensions must be a power of two"),
    ]

    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16) ?? 0)
            i = j
        }
        return out
    }

    @Test func everyMessageThatCrashedAProcessIsRefusedByName() async throws {
        let cluster = try TestCluster(workers: 1, partitions: 4, replication: 1)
        defer { cluster.shutdown() }
        // Each target with a worker key (cluster-internal types) and an admin key (the rest): a case that one
        // key's role may not send is sent again with the other, so it reaches the server's checks.
        func client(_ endpoint: String, key: String, server: String) throws -> DealerClient {
            try DealerClient(connect: endpoint, curve: try TestKeys.client(key, server: server)) { b in
                (try? Chorus_V1_Response(serializedBytes: b))?.correlationID
            }
        }
        let workerClients = [try client(cluster.workers[0].endpoint, key: "worker", server: "worker"),
                             try client(cluster.workers[0].endpoint, key: "admin", server: "worker")]
        let coordClients = [try client(cluster.address, key: "worker", server: "coordinator"),
                            try client(cluster.address, key: "admin", server: "coordinator")]
        defer { (workerClients + coordClients).forEach { $0.close() } }
        // CHORUS_FUZZ_CASES=1,2 sends only those cases (0-based), e.g. to see each one crash an older build.
        let only = ProcessInfo.processInfo.environment["CHORUS_FUZZ_CASES"].map { Set($0.split(separator: ",").compactMap { Int($0) }) }
        for (i, r) in Self.regressions.enumerated() where only?.contains(i) ?? true {
            let bytes = Self.bytes(r.hex)
            let req = try Chorus_V1_Request(serializedBytes: bytes)  // the case decodes: it is well-formed
            var resp = Chorus_V1_Response()
            for client in r.worker == nil ? coordClients : workerClients {
                let reply = try await client.request(bytes, correlationId: req.correlationID, timeout: .seconds(10))
                resp = try Chorus_V1_Response(serializedBytes: reply)
                if case let .error(e)? = resp.body, e.code == .permissionDenied { continue }
                break
            }
            guard case let .error(e)? = resp.body else {
                Issue.record("\(r.name): accepted (\(String(describing: resp.body)))")
                continue
            }
            #expect(e.code == .badRequest, "\(r.name): \(e)")
            #expect(e.message.contains(r.expect), "\(r.name): \(e.message)")
            #expect(cluster.workers[0].isRunning && cluster.coordinator.isRunning,
                    "\(r.name) killed a process:\n\(cluster.logs())")
        }
        // Counted (the worker's count arrives with its next heartbeat) and logged once per connection per minute.
        guard only == nil else { return }
        try waitUntil("rejections counted in cluster status", seconds: 10) {
            let s = try cluster.status()
            let node = (s["nodes"] as? [[String: Any]])?.first
            return (node?["rejected"] as? Int ?? 0) >= 4 && (s["rejected"] as? Int ?? 0) >= 1
        }
        let lines = cluster.workers[0].log().components(separatedBy: "\n").filter { $0.contains("rejected an invalid request") }
        // Once per connection: the cases went over a worker-key and an admin-key connection.
        #expect((1...2).contains(lines.count), "\(lines)")
        // And the worker still serves: the map it holds is the coordinator's, not the pushed one.
        let gen = cluster.dir + "/gen"
        #expect(try chorus(["generate", "--users", "30", "--seed", "2", "--out", gen]).status == 0)
        let ing = try chorus(["ingest", "--coordinator", cluster.address, "--json", gen + "/users.jsonl"])
        #expect(ing.status == 0 && ing.json["stored"] as? Int == 30, "\(ing.stderr)\n\(cluster.logs())")
    }

    /// About 2,000 fuzzed messages over the coordinator and three workers, then an ingest and a `features` job.
    /// CHORUS_FUZZ_SEED and CHORUS_FUZZ_MESSAGES override the seed (default 1) and the count.
    @Test func structureAwareFuzzLeavesEveryProcessServing() throws {
        let env = ProcessInfo.processInfo.environment
        let seed = env["CHORUS_FUZZ_SEED"] ?? "1"
        let messages = env["CHORUS_FUZZ_MESSAGES"] ?? "2000"
        let cluster = try TestCluster(workers: 3, partitions: 16)
        defer { cluster.shutdown() }
        let a = cluster.address
        let gen = cluster.dir + "/gen"
        #expect(try chorus(["generate", "--users", "40", "--seed", "3", "--out", gen]).status == 0)
        let files = ["users.jsonl", "content.jsonl", "interactions.jsonl"].map { gen + "/" + $0 }
        #expect(try chorus(["ingest", "--coordinator", a, "--json"] + files).status == 0)

        let fuzz = try chorus(["bench-fuzz", "--coordinator", a, "--messages", messages, "--seed", seed,
                               "--seconds", "40"], timeout: 90)
        let report = (try? JSONSerialization.jsonObject(with: Data(fuzz.stdout.utf8))) as? [String: Any] ?? [:]
        for p in [cluster.coordinator] + cluster.workers {
            #expect(p.isRunning, "seed \(seed): \(p.logPath) died:\n\(p.log().suffix(3000))")
        }
        #expect(fuzz.status == 0, "seed \(seed): \(fuzz.stderr)\n\(fuzz.stdout.prefix(2000))")
        let sent = report["messages"] as? Int ?? 0
        #expect(sent >= min(Int(messages) ?? 2000, 1000), "\(fuzz.stdout.prefix(2000))")
        let replies = report["replies"] as? [String: Int] ?? [:]
        #expect((replies["bad_request"] ?? 0) > 0, "\(replies)")
        // Every request type was sent.
        #expect((report["by_request"] as? [String: Any] ?? [:]).count >= 28, "\(report["by_request"] ?? "")")

        // Still serving: a new ingest and a features job over everything (fuzzed writes included).
        let late = cluster.dir + "/users-late.jsonl"
        FileManager.default.createFile(atPath: late, contents: Data(#"{"user_id":"after-fuzz","channel":"x"}"#.utf8))
        let ing = try chorus(["ingest", "--coordinator", a, "--json", late], timeout: 60)
        #expect(ing.status == 0 && ing.json["stored"] as? Int == 1, "\(ing.stderr)\n\(cluster.logs())")
        let job = try chorus(["job", "submit", "features", "--coordinator", a, "--wait", "--json"], timeout: 120)
        #expect(job.json["state"] as? String == "succeeded", "\(job.stdout)\n\(job.stderr)\n\(cluster.logs())")
        let prof = try chorus(["profile", "get", "after-fuzz", "--coordinator", a, "--json"])
        #expect(prof.status == 0, "\(prof.stderr)")
        for p in [cluster.coordinator] + cluster.workers { #expect(p.isRunning, "\(p.logPath) died after the fuzz") }
    }
}
