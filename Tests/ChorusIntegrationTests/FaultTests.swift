import ChorusAnalytics
import ChorusData
import Foundation
import Testing

/// Jobs under faults: a worker killed mid-job, a coordinator restarted mid-job.
@Suite(.serialized) struct FaultTests {
    func loadedCluster(replication: Int = 2) throws -> (TestCluster, [String]) {
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: replication)
        let gen = cluster.dir + "/gen"
        #expect(try chorus(["generate", "--users", "120", "--seed", "3", "--out", gen]).status == 0)
        let files = ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl"].map { gen + "/" + $0 }
        let ing = try chorus(["ingest", "--coordinator", cluster.address, "--json"] + files)
        #expect(ing.status == 0, "\(ing.stderr)")
        return (cluster, files)
    }

    /// Submits a features job whose tasks each take `delayMs` longer, and waits until it runs.
    func startSlowJob(_ a: String, delayMs: Int) throws -> String {
        let sub = try chorus(["job", "submit", "features", "--coordinator", a, "--param",
                              "debug_task_delay_ms=\(delayMs)", "--json"])
        let id = sub.json["id"] as? String ?? ""
        try waitUntil("the job is running", seconds: 30) {
            try chorus(["job", "status", id, "--coordinator", a, "--json"]).json["state"] as? String == "running"
        }
        return id
    }

    @Test func taskOfAKilledWorkerIsRetriedWhenItsPartitionHasAnOwnerAgain() throws {
        let (cluster, files) = try loadedCluster()
        defer { cluster.shutdown() }
        let a = cluster.address
        let asOf = "1759104000"
        let sub = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", asOf,
                              "--param", "debug_task_delay_ms=250", "--json"])
        let id = sub.json["id"] as? String ?? ""
        try waitUntil("the job made progress", seconds: 30) {
            (try chorus(["job", "status", id, "--coordinator", a, "--json"]).json["tasks_done"] as? Int ?? 0) >= 2
        }
        // kill -9 a worker in the middle of the job; bring it back 1.5 s later on the same data dir.
        try cluster.restartWorker(1, after: 1.5)
        let w = try chorus(["job", "watch", id, "--coordinator", a, "--json"], timeout: 180)
        #expect(w.status == 0, "\(w.stderr)\n\(cluster.logs())")
        let j = w.json
        #expect(j["state"] as? String == "succeeded")
        #expect(j["task_retries"] as? Int ?? 0 >= 1)
        // The results equal an undisturbed computation.
        let reference = try referenceProfiles(files: files, mapping: MappingConfig(profiles: []), asOf: 1_759_104_000)
        let out = cluster.dir + "/p.jsonl"
        #expect(try chorus(["profile", "export", "--coordinator", a, "--out", out]).status == 0)
        var n = 0
        for line in try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n") {
            let f = try JSONDecoder().decode(UserFeatures.self, from: Data(line.utf8))
            #expect(reference[f.userId] == f)
            n += 1
        }
        #expect(n == reference.count)
    }

    @Test func jobRunningDuringACoordinatorRestartResumesAndSucceeds() throws {
        let (cluster, files) = try loadedCluster()
        defer { cluster.shutdown() }
        let a = cluster.address
        let id = try startSlowJob(a, delayMs: 300)
        try cluster.restartCoordinator(kill9: true)
        let w = try chorus(["job", "watch", id, "--coordinator", a, "--json"], timeout: 180)
        #expect(w.status == 0, "\(w.stderr)\n\(cluster.logs())")
        #expect(w.json["state"] as? String == "succeeded")
        let reference = try referenceProfiles(files: files, mapping: MappingConfig(profiles: []), asOf: 0)
        let out = cluster.dir + "/p.jsonl"
        #expect(try chorus(["profile", "export", "--coordinator", a, "--out", out]).status == 0)
        #expect(try nonBlankLines(out) == reference.count)
    }

    @Test func ingestToADeadSoleOwnerFailsFastAndSucceedsAfterItReturns() throws {
        let (cluster, files) = try loadedCluster(replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address
        cluster.workers[1].kill9()
        try waitUntil("w2 declared dead", seconds: 20) {
            let nodes = try chorus(["node", "list", "--coordinator", a, "--json"]).json["nodes"] as? [[String: Any]] ?? []
            return nodes.contains { $0["name"] as? String == "w2" && $0["state"] as? String == "dead" }
        }
        let failed = try chorus(["ingest", "--coordinator", a, "--json"] + files, timeout: 60)
        #expect(failed.status == 69)
        #expect(failed.seconds < 5)
        #expect(failed.stderr.contains("is dead") && failed.stderr.contains("hint:"))
        try cluster.restartWorker(2)
        try waitUntil("w2 active again", seconds: 20) {
            let nodes = try chorus(["node", "list", "--coordinator", a, "--json"]).json["nodes"] as? [[String: Any]] ?? []
            return nodes.filter { $0["state"] as? String == "active" }.count == 2
        }
        let ok = try chorus(["ingest", "--coordinator", a, "--json"] + files, timeout: 60)
        #expect(ok.status == 0, "\(ok.stderr)")
        // Everything was already stored by the first (undisturbed) ingest: nothing lost, nothing counted twice.
        #expect(ok.json["stored"] as? Int == 0)
        #expect(ok.json["duplicates"] as? Int == ok.json["read"] as? Int)
    }

    @Test func withTwoCopiesADeadWorkerLosesNothingAndRIsRestored() throws {
        let (cluster, files) = try loadedCluster()
        defer { cluster.shutdown() }
        let a = cluster.address
        try cluster.addWorker(3)
        try cluster.waitUntilSettled(workers: 3)
        cluster.workers[0].kill9()
        try waitUntil("w1 declared dead and R restored on w2 and w3", seconds: 60) {
            let s = try cluster.status()
            let nodes = s["nodes"] as? [[String: Any]] ?? []
            return nodes.contains { $0["name"] as? String == "w1" && $0["state"] as? String == "dead" }
                && (s["under_replicated"] as? [Int])?.isEmpty == true && (s["moves"] as? [Any])?.isEmpty == true
        }
        // Re-ingesting everything finds every record already present on the survivors.
        let again = try chorus(["ingest", "--coordinator", a, "--json"] + files, timeout: 120)
        #expect(again.status == 0, "\(again.stderr)\n\(cluster.logs())")
        #expect(again.json["stored"] as? Int == 0)
        #expect(again.json["duplicates"] as? Int == again.json["read"] as? Int)
        // And a dead node that still holds nothing can be removed.
        let rm = try chorus(["node", "remove", "w1", "--coordinator", a])
        #expect(rm.status == 0, "\(rm.stderr)")
    }

    @Test func cancelStopsARunningJob() throws {
        let (cluster, _) = try loadedCluster()
        defer { cluster.shutdown() }
        let a = cluster.address
        let id = try startSlowJob(a, delayMs: 400)
        let c = try chorus(["job", "cancel", id, "--coordinator", a, "--json"])
        #expect(c.status == 0 && c.json["state"] as? String == "cancelled")
        let w = try chorus(["job", "watch", id, "--coordinator", a, "--json"], timeout: 30)
        #expect(w.status == 1)
        #expect(w.json["state"] as? String == "cancelled")
        // No task starts after the cancel: the count stops moving once the tasks in flight are done.
        usleep(1_500_000)
        let done1 = try chorus(["job", "status", id, "--coordinator", a, "--json"]).json["tasks_done"] as? Int ?? -1
        usleep(1_000_000)
        let done2 = try chorus(["job", "status", id, "--coordinator", a, "--json"]).json["tasks_done"] as? Int ?? -2
        #expect(done1 == done2 && done1 < 16)
        let list = try chorus(["job", "list", "--coordinator", a, "--json"]).json["jobs"] as? [[String: Any]] ?? []
        #expect(list.first?["state"] as? String == "cancelled")
    }
}
