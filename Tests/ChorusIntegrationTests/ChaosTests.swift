import ChorusAnalytics
import ChorusModel
import Foundation
import Synchronization
import Testing

/// Ingests small files of new users in a loop with `chorus ingest`, one process per file, and records the ids of
/// every file whose ingest was acknowledged (exit 0). A failed file is retried a few times, then given up (its ids
/// are then not acknowledged, so they may or may not be present).
final class ContinuousIngest: @unchecked Sendable {
    // SAFETY: `acknowledged`, `attempts` and `failures` are only touched under `lock`; the thread is joined via `stop()`.
    private let lock = NSLock()
    private var acknowledged: [String] = []
    private var attempts = 0
    private var failures: [String] = []
    private let stopFlag = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    let dir: String
    let coordinator: String

    init(dir: String, coordinator: String, usersPerFile: Int = 40) {
        self.dir = dir
        self.coordinator = coordinator
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        Thread.detachNewThread { [self] in
            var batch = 0
            while !stopFlag.load(ordering: .relaxed) {
                batch += 1
                let ids = (0..<usersPerFile).map { "chaos-\(batch)-\($0)" }
                let path = dir + "/users-\(batch).jsonl"
                let text = ids.map { #"{"user_id":"\#($0)","channel":"weibo","country":"CN","language":"zh","age_band":"25-34","created_at":"2025-01-01T00:00:00Z"}"# }
                    .joined(separator: "\n") + "\n"
                FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
                for _ in 0..<4 {
                    let r = try? chorus(["ingest", "--coordinator", coordinator, "--json", path], timeout: 120)
                    lock.withLock { attempts += 1 }
                    if let r, r.status == 0 {
                        lock.withLock { acknowledged += ids }
                        break
                    }
                    lock.withLock { failures.append(r.map { "exit \($0.status): \($0.stderr.prefix(300))" } ?? "did not run") }
                    usleep(300_000)
                }
            }
            done.signal()
        }
    }

    func stop() -> (acknowledged: [String], attempts: Int, failures: [String]) {
        stopFlag.store(true, ordering: .relaxed)
        done.wait()
        return lock.withLock { (acknowledged, attempts, failures) }
    }
}

/// Membership changes and crashes while ingest and a job run: nothing acknowledged is lost, the job's results
/// equal an undisturbed run, and R is restored.
@Suite(.serialized) struct ChaosTests {
    static let asOf = "1759104000"

    func allUserIds(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            return obj["user_id"] as? String ?? ""
        }
    }

    @Test func joinDrainKillAndCoordinatorRestartLoseNothing() throws {
        let work = NSTemporaryDirectory() + "chorus-chaos-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: work) }
        let gen = work + "/gen"
        #expect(try chorus(["generate", "--users", "300", "--seed", "21", "--out", gen]).status == 0)
        let files = ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl"].map { gen + "/" + $0 }

        // Reference: the same data and job on an undisturbed cluster.
        let ref = try TestCluster(workers: 2, partitions: 32, replication: 2)
        #expect(try chorus(["ingest", "--coordinator", ref.address, "--json"] + files).status == 0)
        let refJob = try chorus(["job", "submit", "features", "--coordinator", ref.address, "--as-of", Self.asOf,
                                 "--wait", "--json"], timeout: 120)
        #expect(refJob.json["state"] as? String == "succeeded", "\(refJob.stderr)")
        #expect(try chorus(["profile", "export", "--coordinator", ref.address, "--out", work + "/ref.jsonl"]).status == 0)
        ref.shutdown()
        let reference = try exportedProfiles(work + "/ref.jsonl")

        // The cluster under test: 4 workers, R = 2.
        let cluster = try TestCluster(workers: 4, partitions: 32, replication: 2)
        defer { cluster.shutdown() }
        let a = cluster.address
        let base = try chorus(["ingest", "--coordinator", a, "--json"] + files)
        #expect(base.status == 0, "\(base.stderr)")

        let ingest = ContinuousIngest(dir: work + "/stream", coordinator: a)
        let sub = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", Self.asOf,
                              "--param", "debug_task_delay_ms=700", "--json"])
        let jobId = sub.json["id"] as? String ?? ""
        #expect(!jobId.isEmpty, "\(sub.stderr)")
        usleep(1_500_000)
        try cluster.addWorker(5)                                       // join
        usleep(1_000_000)
        let drain = try chorus(["node", "drain", "w2", "--coordinator", a])  // drain
        #expect(drain.status == 0, "\(drain.stderr)")
        usleep(1_000_000)
        cluster.workers[2].kill9()                                     // kill -9 w3
        let killedAt = Date()
        usleep(2_000_000)
        try cluster.restartCoordinator(kill9: true)                    // coordinator restart

        let watched = try chorus(["job", "watch", jobId, "--coordinator", a, "--json"], timeout: 400)
        #expect(watched.status == 0, "\(watched.stderr)\n\(cluster.logs())")
        #expect(watched.json["state"] as? String == "succeeded")
        // Keep ingesting a little after the job, then stop the client.
        usleep(1_000_000)
        let (acked, attempts, failures) = ingest.stop()

        // The job's results equal the undisturbed run (the streamed users have no interactions or follows, so
        // they do not change any base user's profile). The export reads every partition's primary: wait until
        // the killed worker is declared dead (its partitions failed over), or a read may still be routed to it.
        try waitUntil("w3 declared dead", seconds: 60) {
            (try cluster.status()["nodes"] as? [[String: Any]] ?? []).contains {
                $0["name"] as? String == "w3" && $0["state"] as? String == "dead" }
        }
        let out = work + "/chaos.jsonl"
        let exp = try chorus(["profile", "export", "--coordinator", a, "--out", out], timeout: 120)
        #expect(exp.status == 0, "\(exp.stderr)")
        let got = try exportedProfiles(out)
        var mismatched = 0
        for (id, line) in reference where got[id] != line { mismatched += 1 }
        #expect(mismatched == 0, "\(mismatched) of \(reference.count) profiles differ from the undisturbed run")

        // R is restored: w2 drained, w3 dead, every partition on 2 live workers again.
        try waitUntil("R restored and w2 drained", seconds: 120) {
            let s = try cluster.status()
            let nodes = s["nodes"] as? [[String: Any]] ?? []
            return (s["under_replicated"] as? [Int])?.isEmpty == true && (s["moves"] as? [Any])?.isEmpty == true
                && nodes.contains { $0["name"] as? String == "w2" && $0["state"] as? String == "drained" }
                && nodes.contains { $0["name"] as? String == "w3" && $0["state"] as? String == "dead" }
        }
        let status = try cluster.status()
        let recoveredMs = status["last_recovered_ms"] as? Int ?? 0
        let recoverySeconds = Double(recoveredMs) / 1000 - killedAt.timeIntervalSince1970

        // Every acknowledged record is present exactly once: a second job gives every user a profile.
        let verify = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", Self.asOf, "--wait",
                                 "--json"], timeout: 180)
        #expect(verify.json["state"] as? String == "succeeded", "\(verify.stderr)")
        let all = work + "/all.jsonl"
        #expect(try chorus(["profile", "export", "--coordinator", a, "--out", all], timeout: 120).status == 0)
        var counts: [String: Int] = [:]
        for id in try allUserIds(all) { counts[id, default: 0] += 1 }
        let found = acked.filter { counts[$0] != nil }.count
        let lost = acked.count - found
        let duplicated = counts.values.filter { $0 > 1 }.count
        print("""
            chaos: acknowledged \(acked.count) records in \(attempts) ingest runs (\(failures.count) retried), \
            found \(found), lost \(lost), duplicated \(duplicated); profiles equal to the undisturbed run: \
            \(reference.count - mismatched)/\(reference.count); R restored \(String(format: "%.1f", recoverySeconds)) s \
            after the kill -9 (including the coordinator restart)
            """)
        #expect(acked.count > 0, "the continuous ingest never succeeded: \(failures.prefix(3))")
        #expect(lost == 0)
        #expect(duplicated == 0)
        // No partition is left on the drained or the dead node.
        let map = try chorus(["cluster", "map", "--coordinator", a, "--json"]).json
        let nodes = map["nodes"] as? [[String: Any]] ?? []
        let gone = Set(nodes.filter { ["w2", "w3"].contains($0["name"] as? String ?? "") }.compactMap { $0["id"] as? String })
        for p in map["partitions"] as? [[String: Any]] ?? [] {
            let holders = [p["primary"] as? String ?? ""] + (p["replicas"] as? [String] ?? [])
            #expect(holders.count == 2 && gone.isDisjoint(with: holders), "partition \(p)")
        }
    }

    @Test func aFrozenWorkerIsFencedAfterItsPartitionsMoved() throws {
        let cluster = try TestCluster(workers: 3, partitions: 8, replication: 2)
        defer { cluster.shutdown() }
        let a = cluster.address
        try cluster.ingestGenerated(users: 60, seed: 5)

        let before = try chorus(["cluster", "map", "--coordinator", a, "--json"]).json
        let oldVersion = before["version"] as? Int ?? 0
        let nodes = before["nodes"] as? [[String: Any]] ?? []
        let w1 = nodes.first { $0["name"] as? String == "w1" } ?? [:]
        let w1Id = w1["id"] as? String ?? ""
        let w1Addr = w1["address"] as? String ?? ""
        let led = (before["partitions"] as? [[String: Any]] ?? []).filter { $0["primary"] as? String == w1Id }
            .compactMap { $0["partition"] as? Int }
        #expect(!led.isEmpty)
        let p = led[0]
        // A user id that hashes into partition p.
        let placement = Placement(partitionCount: 8)
        let uid = (0..<10_000).lazy.map { "fenced-\($0)" }.first { placement.partition(of: $0) == UInt32(p) }!

        // A slow job keeps tasks in flight on w1 when it freezes.
        let sub = try chorus(["job", "submit", "features", "--coordinator", a, "--param", "debug_task_delay_ms=2500",
                              "--json"])
        let jobId = sub.json["id"] as? String ?? ""
        usleep(800_000)
        kill(cluster.workers[0].pid, SIGSTOP)
        try waitUntil("w1 declared dead and its partitions re-replicated", seconds: 60) {
            let s = try cluster.status()
            let ns = s["nodes"] as? [[String: Any]] ?? []
            return ns.contains { $0["name"] as? String == "w1" && $0["state"] as? String == "dead" }
                && (s["under_replicated"] as? [Int])?.isEmpty == true && (s["moves"] as? [Any])?.isEmpty == true
        }
        kill(cluster.workers[0].pid, SIGCONT)
        // Straight away, as a client or coordinator that still holds the old map would:
        let write = try chorus(["debug", "write", "--worker", w1Addr, "--partition", String(p), "--map-version",
                                String(oldVersion), "--user-id", uid])
        #expect(write.status == 69, "stale write was accepted: \(write.stdout) \(write.stderr)")
        #expect(write.stderr.contains("lease") || write.stderr.contains("primary"), "\(write.stderr)")
        let task = try chorus(["debug", "task", "--worker", w1Addr, "--partition", String(p), "--map-version",
                               String(oldVersion)])
        #expect(task.status == 69, "stale task was served: \(task.stdout) \(task.stderr)")
        // Still refused once w1 caught up with the new map, for any partition it does not lead now.
        try waitUntil("w1 back", seconds: 30) {
            let ns = try chorus(["node", "list", "--coordinator", a, "--json"]).json["nodes"] as? [[String: Any]] ?? []
            return ns.contains { $0["name"] as? String == "w1" && $0["state"] as? String == "active" }
        }
        let now = try chorus(["cluster", "map", "--coordinator", a, "--json"]).json
        let notLed = (now["partitions"] as? [[String: Any]] ?? []).filter { $0["primary"] as? String != w1Id }
            .compactMap { $0["partition"] as? Int }
        if let q = notLed.first {
            let uid2 = (0..<10_000).lazy.map { "fenced-b-\($0)" }.first { placement.partition(of: $0) == UInt32(q) }!
            let later = try chorus(["debug", "write", "--worker", w1Addr, "--partition", String(q), "--map-version",
                                    String(oldVersion), "--user-id", uid2])
            #expect(later.status == 69 && later.stderr.contains("not the primary"), "\(later.stderr)")
        }
        // The stale write left no trace anywhere.
        // (A longer timeout: the new primaries are still busy copying the moved partitions on a loaded machine.)
        let get = try chorus(["profile", "get", uid, "--coordinator", a, "--timeout", "15"])
        #expect(get.status == 66 && get.stderr.contains("unknown"), "\(get.stderr)")
        // w1 counted what it refused (stale results of the tasks it was running, and the requests above).
        try waitUntil("w1 reports what it refused", seconds: 10) {
            let ns = try chorus(["node", "list", "--coordinator", a, "--json"]).json["nodes"] as? [[String: Any]] ?? []
            return ns.first { $0["name"] as? String == "w1" }?["fenced"] as? Int ?? 0 >= 3
        }
        // The job still succeeds, on the new primaries.
        let w = try chorus(["job", "watch", jobId, "--coordinator", a, "--json"], timeout: 300)
        #expect(w.json["state"] as? String == "succeeded", "\(w.stderr)\n\(cluster.logs())")
    }
}

/// Partition moves that fail half-way.
@Suite(.serialized) struct MoveTests {
    @Test func aMoveThatFailsHalfWayLeavesTheOldHoldersServingAndItsCopyIsDeleted() throws {
        // R=1 and a 256 KiB/s throttle: every move is a slow, pure copy.
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 1, extraArgs: ["--move-rate-mib", "0.25"])
        defer { cluster.shutdown() }
        let a = cluster.address
        let files = try cluster.ingestGenerated(users: 3000, seed: 8).files

        try cluster.addWorker(3)
        try waitUntil("a move into w3 has copied some keys", seconds: 60) {
            let moves = try cluster.status()["moves"] as? [[String: Any]] ?? []
            return moves.contains { ($0["keys_copied"] as? Int ?? 0) > 0 }
        }
        cluster.workers[2].kill9()
        try waitUntil("w3 dead and its moves abandoned", seconds: 30) {
            let s = try cluster.status()
            let nodes = s["nodes"] as? [[String: Any]] ?? []
            return nodes.contains { $0["name"] as? String == "w3" && $0["state"] as? String == "dead" }
                && (s["moves"] as? [Any])?.isEmpty == true
        }
        let map = try chorus(["cluster", "map", "--coordinator", a, "--json"]).json
        for p in map["partitions"] as? [[String: Any]] ?? [] {
            #expect((p["learners"] as? [String])?.isEmpty == true, "\(p)")
        }
        #expect(try cluster.status()["unassigned_partitions"] as? Int == 0)
        // The old holders kept serving: everything is still there, nothing is counted twice.
        let again = try chorus(["ingest", "--coordinator", a, "--json"] + files, timeout: 120)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.json["stored"] as? Int == 0)
        #expect(again.json["duplicates"] as? Int == again.json["read"] as? Int)
        // w3 comes back drained (so it gets nothing new): its partial copy is deleted.
        #expect(try chorus(["node", "drain", "w3", "--coordinator", a]).status == 0)
        try cluster.restartWorker(3)
        try waitUntil("w3 back, drained, holding no data", seconds: 30) {
            let nodes = try cluster.status()["nodes"] as? [[String: Any]] ?? []
            return nodes.contains { $0["name"] as? String == "w3" && $0["state"] as? String == "drained"
                && $0["stray_partitions"] as? Int == 0 && $0["running_tasks"] != nil }
        }
    }
}

/// Drains that would take partitions below R copies, on real processes.
@Suite(.serialized) struct DrainSafetyTests {
    /// Holders (primary and replicas) of every partition, by node name.
    func holdersByName(_ a: String) throws -> [[String]] {
        let map = try chorus(["cluster", "map", "--coordinator", a, "--json"]).json
        let names = Dictionary(uniqueKeysWithValues: (map["nodes"] as? [[String: Any]] ?? []).map {
            ($0["id"] as? String ?? "", $0["name"] as? String ?? "") })
        return (map["partitions"] as? [[String: Any]] ?? []).map { p in
            ([p["primary"] as? String ?? ""] + (p["replicas"] as? [String] ?? [])).map { names[$0] ?? $0 }
        }
    }

    func state(_ s: [String: Any], _ name: String) -> String {
        (s["nodes"] as? [[String: Any]] ?? []).first { $0["name"] as? String == name }?["state"] as? String ?? "?"
    }

    @Test func aSecondDrainThatWouldLeaveFewerThanRWorkersIsRefusedAndDrainedMeansSafeToStop() throws {
        let cluster = try TestCluster(workers: 3, partitions: 16, replication: 2)
        defer { cluster.shutdown() }
        let a = cluster.address
        let files = try cluster.ingestGenerated(users: 300, seed: 13).files
        let ingest = ContinuousIngest(dir: cluster.dir + "/stream", coordinator: a)

        // 3 workers, R=2: draining one leaves 2, enough; draining a second would leave 1.
        let d2 = try chorus(["node", "drain", "w2", "--coordinator", a])
        #expect(d2.status == 0, "\(d2.stderr)")
        let d3 = try chorus(["node", "drain", "w3", "--coordinator", a])
        #expect(d3.status == 64, "a drain below R was accepted: \(d3.stdout) \(d3.stderr)")
        #expect(d3.stderr.contains("cannot drain w3") && d3.stderr.contains("replication factor 2")
                && d3.stderr.contains("w1") && d3.stderr.contains("--force"), "\(d3.stderr)")
        try waitUntil("w2 drained, no moves left", seconds: 90) {
            let s = try cluster.status()
            return state(s, "w2") == "drained" && (s["moves"] as? [Any])?.isEmpty == true
                && (s["moves_planned"] as? Int) == 0
        }
        #expect(state(try cluster.status(), "w3") == "active")
        // Drained means every partition it held has R copies elsewhere: stopping it loses nothing.
        for h in try holdersByName(a) { #expect(h.count == 2 && !h.contains("w2"), "\(h)") }
        cluster.workers[1].kill9()
        try waitUntil("w2 dead", seconds: 30) { state(try cluster.status(), "w2") == "dead" }
        #expect((try cluster.status()["under_replicated"] as? [Int])?.isEmpty == true)

        // Forced, the drain is accepted, but w3 keeps what has nowhere to go: never drained, R kept.
        let forced = try chorus(["node", "drain", "w3", "--force", "--coordinator", a])
        #expect(forced.status == 0 && forced.stdout.contains("forced"), "\(forced.stderr)")
        try waitUntil("the forced drain settled", seconds: 60) {
            let s = try cluster.status()
            return (s["moves"] as? [Any])?.isEmpty == true && (s["moves_planned"] as? Int) == 0
        }
        usleep(1_500_000)  // a few planning rounds: nothing more may move
        let stuck = try cluster.status()
        #expect(state(stuck, "w3") == "draining")
        #expect((stuck["under_replicated"] as? [Int])?.isEmpty == true, "\(stuck)")
        for h in try holdersByName(a) { #expect(h.count == 2 && Set(h) == ["w1", "w3"], "\(h)") }

        // A new worker gives the drain room: w3 hands off and only then says drained.
        try cluster.addWorker(4)
        try waitUntil("w3 drained onto w4", seconds: 90) {
            let s = try cluster.status()
            return state(s, "w3") == "drained" && (s["moves"] as? [Any])?.isEmpty == true
                && (s["under_replicated"] as? [Int])?.isEmpty == true
        }
        for h in try holdersByName(a) { #expect(h.count == 2 && Set(h) == ["w1", "w4"], "\(h)") }
        cluster.workers[2].kill9()
        try waitUntil("w3 dead", seconds: 30) { state(try cluster.status(), "w3") == "dead" }
        #expect((try cluster.status()["under_replicated"] as? [Int])?.isEmpty == true)

        // Nothing acknowledged was lost on the way: every streamed id and the base files are all there.
        let (acked, _, failures) = ingest.stop()
        #expect(!acked.isEmpty, "the continuous ingest never succeeded: \(failures.prefix(3))")
        // Ingesting the same records again stores nothing: each one is already there, byte for byte.
        let ackedPath = cluster.dir + "/users-acked.jsonl"
        let text = acked.map { #"{"user_id":"\#($0)","channel":"weibo","country":"CN","language":"zh","age_band":"25-34","created_at":"2025-01-01T00:00:00Z"}"# }
            .joined(separator: "\n") + "\n"
        _ = FileManager.default.createFile(atPath: ackedPath, contents: Data(text.utf8))
        let again = try chorus(["ingest", "--coordinator", a, "--json", ackedPath] + files)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.json["stored"] as? Int == 0, "\(again.stdout)")
        #expect(again.json["duplicates"] as? Int == again.json["read"] as? Int, "\(again.stdout)")
    }
}
