import Foundation
import Testing

/// A worker whose data directory is a small tmpfs fills it during an ingest (the tests run as root). It must stay
/// up, refuse writes with a clear error, keep serving tasks that do not write, report the state, lose nothing
/// acknowledged, and take writes again once space is freed, without a restart.
@Suite(.serialized, .enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
struct FullDiskTests {
    func sh(_ exe: String, _ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    func node(_ status: [String: Any], _ name: String) -> [String: Any] {
        (status["nodes"] as? [[String: Any]] ?? []).first { $0["name"] as? String == name } ?? [:]
    }

    func storage(_ status: [String: Any], _ name: String) -> String {
        (node(status, name)["storage"] as? [String: Any])?["state"] as? String ?? "?"
    }

    @Test func aFullDiskRefusesWritesKeepsServingAndResumesWhenSpaceIsFreed() throws {
        let cluster = try TestCluster(workers: 1, partitions: 16, replication: 1)
        let w2 = cluster.dir + "/w2"
        try FileManager.default.createDirectory(atPath: w2, withIntermediateDirectories: true)
        #expect(try sh("/bin/mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", w2]) == 0)
        defer {
            cluster.workers.forEach { $0.stop() }
            _ = try? sh("/bin/umount", ["-l", w2])
            cluster.shutdown()
        }
        // 10 MiB left for w2's store: less than its half of the interactions.
        FileManager.default.createFile(atPath: w2 + "/filler", contents: Data(count: 14 << 20))
        try cluster.addWorker(2, extraArgs: ["--min-free-mib", "2"])
        try cluster.waitUntilSettled(workers: 2)
        let a = cluster.address
        let gen = cluster.dir + "/gen"
        #expect(try chorus(["generate", "--users", "6000", "--seed", "5", "--out", gen]).status == 0)
        let files = ["users.jsonl", "content.jsonl", "interactions.jsonl"].map { gen + "/" + $0 }

        // 1. The disk fills: the ingest stops with the storage exit code and a clear message.
        let first = try chorus(["ingest", "--coordinator", a, "--no-progress"] + files, timeout: 300)
        #expect(first.status == 74, "\(first.stdout)\n\(first.stderr)\n\(cluster.logs())")
        #expect(first.stderr.contains("disk full on worker w2 (\(w2))"), "\(first.stderr)")
        #expect(first.stderr.contains("resumes writes by itself"), "\(first.stderr)")
        let ackText = first.stderr.components(separatedBy: ". ").last { $0.contains("were acknowledged") } ?? ""
        let acknowledged = Int(ackText.split(separator: " ").first ?? "") ?? -1
        #expect(acknowledged > 0, "\(first.stderr)")

        // 2. The worker is up, says read-only, and the coordinator shows it.
        #expect(cluster.workers[1].isRunning, "\(cluster.workers[1].log().suffix(3000))")
        try waitUntil("w2 reported read-only", seconds: 10) { storage(try cluster.status(), "w2") == "read-only" }
        let s = try cluster.status()
        #expect((node(s, "w2")["storage"] as? [String: Any])?["reason"] as? String ?? "" != "")
        let table = try chorus(["node", "list", "--coordinator", a])
        #expect(table.stdout.contains("w2: storage read-only (disk full)"), "\(table.stdout)")
        #expect(cluster.workers[1].log().contains("storage is read-only"))

        // 3. Tasks that do not write still run on it.
        let job = try chorus(["job", "submit", "top-hashtags", "--coordinator", a, "--wait", "--json"], timeout: 120)
        #expect(job.json["state"] as? String == "succeeded", "\(job.stdout)\n\(job.stderr)")

        // 4. Space is freed: writes resume without a restart, and the same ingest finishes. Everything the first
        //    run acknowledged is there (counted as duplicates now), and a third run stores nothing new.
        try FileManager.default.removeItem(atPath: w2 + "/filler")
        try waitUntil("w2 writable again", seconds: 15) { storage(try cluster.status(), "w2") != "read-only" }
        #expect(cluster.workers[1].log().contains("writes resumed"))
        let second = try chorus(["ingest", "--coordinator", a, "--no-progress", "--json"] + files, timeout: 300)
        #expect(second.status == 0, "\(second.stderr)\n\(cluster.logs())")
        let dup2 = second.json["duplicates"] as? Int ?? -1
        let stored2 = second.json["stored"] as? Int ?? -1
        #expect(dup2 >= acknowledged, "acknowledged \(acknowledged) before the disk filled, found \(dup2)")
        let third = try chorus(["ingest", "--coordinator", a, "--no-progress", "--json"] + files, timeout: 300)
        #expect(third.status == 0)
        #expect(third.json["stored"] as? Int == 0)
        #expect(third.json["duplicates"] as? Int == dup2 + stored2)
        #expect(cluster.workers[1].isRunning)
    }
}
