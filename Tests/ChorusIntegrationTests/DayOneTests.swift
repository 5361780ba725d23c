import Foundation
import Testing

/// What a new user hits on day one (issue 11), on real processes: ingest straight after start, removing a
/// worker just stopped, and following moves.
@Suite(.serialized) struct DayOneTests {
    func nodes(_ a: String) throws -> [[String: Any]] {
        try chorus(["cluster", "status", "--coordinator", a, "--json"]).json["nodes"] as? [[String: Any]] ?? []
    }

    @Test func ingestStraightAfterTheWorkersRegisterWaitsForOwners() throws {
        let dir = NSTemporaryDirectory() + "chorus-dayone-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gen = dir + "/gen"
        #expect(try chorus(["generate", "--users", "40", "--seed", "4", "--out", gen]).status == 0)
        for round in 1...3 {
            let coord = try ServerProcess(["coordinator", "--bind", "tcp://127.0.0.1:*", "--data", dir + "/c\(round)"],
                                          logDir: dir, name: "coordinator-\(round)")
            defer { coord.stop() }
            let a = coord.endpoint
            // No worker yet: refused within the timeout, saying so.
            let none = try chorus(["ingest", "--coordinator", a, "--timeout", "1", "--rejects", dir + "/rej.jsonl",
                                   gen + "/users.jsonl"])
            #expect(none.status == 69, "\(none.stderr)")
            #expect(none.stderr.contains("no worker has joined") && none.stderr.contains("start at least one worker"),
                    "\(none.stderr)")
            #expect(none.seconds >= 1 && none.seconds < 10)
            var workers: [ServerProcess] = []
            defer { workers.forEach { $0.stop() } }
            for i in 1...3 {
                workers.append(try ServerProcess(["worker", "--coordinator", a, "--bind", "tcp://127.0.0.1:*",
                                                  "--data", dir + "/r\(round)w\(i)", "--name", "w\(i)"],
                                                 logDir: dir, name: "r\(round)w\(i)"))
            }
            // The moment all three are registered (what cluster/start.sh used to wait for), not a moment later.
            try waitUntil("3 workers registered", seconds: 20) { try nodes(a).count == 3 }
            let ing = try chorus(["ingest", "--coordinator", a, "--json", "--rejects", dir + "/rej.jsonl",
                                  gen + "/users.jsonl"])
            #expect(ing.status == 0, "round \(round): \(ing.stderr)")
            #expect(ing.json["stored"] as? Int == 40)
            let s = try chorus(["cluster", "status", "--coordinator", a, "--json"]).json
            #expect(s["ready"] as? Bool == true && s["unassigned_partitions"] as? Int == 0, "\(s)")
        }
    }

    @Test func removeRightAfterStoppingADrainedWorkerSaysHowLongAndWaits() throws {
        let cluster = try TestCluster(workers: 3, partitions: 8, replication: 2)
        defer { cluster.shutdown() }
        let a = cluster.address
        #expect(try chorus(["node", "drain", "w3", "--wait", "--coordinator", a], timeout: 60).status == 0)
        cluster.workers[2].stop()
        let early = try chorus(["node", "remove", "w3", "--coordinator", a])
        #expect(early.status == 64)
        #expect(early.stderr.contains("still running") && early.stderr.contains("declared dead")
                && early.stderr.contains("--wait"), "\(early.stderr)")
        let waited = try chorus(["node", "remove", "w3", "--wait", "--timeout", "10", "--coordinator", a], timeout: 30)
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(waited.stdout.contains("removed w3"), "\(waited.stdout)")
        #expect(try nodes(a).map { $0["name"] as? String } == ["w1", "w2"])
        // Still bounded by --timeout: a worker that keeps running is not waited for beyond it.
        let running = try chorus(["node", "remove", "w2", "--wait", "--timeout", "1", "--coordinator", a])
        #expect(running.status == 64 && running.seconds < 8, "\(running.stderr)")
    }

    @Test func movesShowNamesAPercentageAndAnETA() throws {
        // R=1 and a 256 KiB/s throttle, as in MoveTests: slow, pure copies.
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 1, extraArgs: ["--move-rate-mib", "0.25"])
        defer { cluster.shutdown() }
        let a = cluster.address
        try cluster.ingestGenerated(users: 3000, seed: 8)
        try cluster.addWorker(3)
        var move: [String: Any] = [:]
        try waitUntil("a move into w3 has copied some bytes", seconds: 60) {
            let moves = try cluster.status()["moves"] as? [[String: Any]] ?? []
            move = moves.first { ($0["bytes_copied"] as? Int ?? 0) > 0 } ?? [:]
            return !move.isEmpty
        }
        #expect(move["to_name"] as? String == "w3", "\(move)")
        #expect(["w1", "w2"].contains(move["from_name"] as? String ?? ""), "\(move)")
        let total = move["bytes_total"] as? Int ?? 0
        let copied = move["bytes_copied"] as? Int ?? 0
        #expect(total > copied && copied > 0, "\(move)")
        let percent = move["percent"] as? Double ?? -1
        #expect(percent >= 0 && percent < 100, "\(move)")
        let eta = move["eta_seconds"] as? Double ?? -1
        // At 256 KiB/s, the rest of the partition takes about (total - copied) / 256 KiB seconds.
        let expected = Double(total - copied) / Double(256 << 10)
        #expect(eta > 0 && eta < expected * 4 + 5, "eta \(eta) s, expected about \(expected) s: \(move)")
        // The text view: names, not ids, with the percentage and the ETA.
        var text = ""
        try waitUntil("cluster status shows a move into w3 with its percentage and ETA", seconds: 60) {
            text = try chorus(["cluster", "status", "--coordinator", a]).stdout
            return text.contains("-> w3 (") && text.contains("%, ") && text.contains("ETA ")
        }
        #expect(!text.contains("-> w-") && !text.contains(": w-"), "\(text)")
    }
}
