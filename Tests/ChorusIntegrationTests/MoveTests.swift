import Foundation
import Testing

/// Partition moves by SST files (issue 20 part 2), on real processes.
extension MoveTests {
    /// The copy's files are read from the primary before writes that reach the learner during the copy, and are
    /// ingested after them. Every write acknowledged during the copy must survive the flip, with its newest value:
    /// new records (a continuous ingest) and overwritten ones (a job that rewrites every profile).
    @Test func aPartitionCopiedByFilesUnderConcurrentWritesKeepsEveryAcknowledgedWriteAfterTheFlip() throws {
        // R=1 and a 40 KiB/s throttle: each move is a slow pure copy, so writes land while its files are fetched.
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 1, extraArgs: ["--move-rate-mib", "0.04"])
        defer { cluster.shutdown() }
        let a = cluster.address
        let generated = try cluster.ingestGenerated(users: 1500, seed: 17)
        let first = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", "1759104000", "--wait",
                                "--json"], timeout: 120)
        #expect(first.json["state"] as? String == "succeeded", "\(first.stderr)")
        #expect(try chorus(["profile", "export", "--coordinator", a, "--out", cluster.dir + "/before.jsonl"]).status == 0)

        let ingest = ContinuousIngest(dir: cluster.dir + "/stream", coordinator: a, usersPerFile: 25)
        try cluster.addWorker(3)
        try waitUntil("moves into w3 are fetching files", seconds: 60) {
            let moves = try cluster.status()["moves"] as? [[String: Any]] ?? []
            return moves.count >= 2 && moves.allSatisfy { ($0["bytes_copied"] as? Int ?? 0) > 0 }
        }
        // Overwrite every user record while the copies run: ingested puts reach a learner as replica batches, and
        // the files' older values must not win over them.
        let users = try String(contentsOfFile: generated.dir + "/users.jsonl", encoding: .utf8)
        let updated = cluster.dir + "/users-updated.jsonl"
        try users.replacingOccurrences(of: #"[0-9-]{10}T00:00:00Z"#, with: "2020-01-01T00:00:00Z", options: .regularExpression)
            .write(toFile: updated, atomically: true, encoding: .utf8)
        let update = try chorus(["ingest", "--coordinator", a, "--json", updated], timeout: 120)
        #expect(update.status == 0 && update.json["stored"] as? Int == 1500, "\(update.stdout)\(update.stderr)")
        // Rewrite every profile (a later as-of changes them) while the copies run.
        let second = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", "1761782400", "--wait",
                                 "--json"], timeout: 120)
        #expect(second.json["state"] as? String == "succeeded", "\(second.stderr)")
        let inFlight = (try cluster.status()["moves"] as? [Any])?.count ?? 0
        // What the primaries hold now is the truth the moved copies must match.
        #expect(try chorus(["profile", "export", "--coordinator", a, "--out", cluster.dir + "/truth.jsonl"]).status == 0)
        try cluster.waitUntilSettled(workers: 3, seconds: 120)
        let (acked, _, failures) = ingest.stop()
        #expect(acked.count > 0, "the continuous ingest never succeeded: \(failures.prefix(3))")

        // The job overwrote profiles during the copies, and the learners applied those writes again after the files.
        let log = cluster.coordinator.log()
        let replayed = log.split(separator: "\n").filter { $0.contains("partition move done") }.compactMap { line -> Int? in
            guard let r = line.range(of: "replayed-writes=") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
        #expect(replayed.count >= 2, "\(log.suffix(3000))")
        #expect(replayed.contains { $0 > 0 }, "no move replayed writes made during its copy: \(replayed)")
        #expect(log.contains("files="))
        #expect(inFlight > 0, "the moves ended before the job's writes; nothing was tested")

        let before = try exportedProfiles(cluster.dir + "/before.jsonl")
        let truth = try exportedProfiles(cluster.dir + "/truth.jsonl")
        // (The second job also gave the users streamed in so far a profile.)
        #expect(truth.count >= before.count)
        #expect(before.filter { truth[$0.key] != $0.value }.count > before.count / 2, "the second job changed few profiles")
        #expect(try chorus(["profile", "export", "--coordinator", a, "--out", cluster.dir + "/after.jsonl"]).status == 0)
        let after = try exportedProfiles(cluster.dir + "/after.jsonl")
        let stale = truth.filter { after[$0.key] != $0.value }.map(\.key)
        #expect(after.count == truth.count)
        #expect(stale.isEmpty, "\(stale.count) profiles lost the write made during the copy, e.g. \(stale.prefix(3))")

        // Every acknowledged record of the continuous ingest is present once: ingesting its files again stores nothing.
        let batches = Set(acked.compactMap { $0.split(separator: "-").dropFirst().first.map(String.init) })
        let files = batches.sorted().map { cluster.dir + "/stream/users-\($0).jsonl" }
        let again = try chorus(["ingest", "--coordinator", a, "--json"] + files, timeout: 120)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.json["read"] as? Int == acked.count)
        #expect(again.json["stored"] as? Int == 0)

        // And the user records hold the values written during the copies: ingesting them again stores nothing.
        let updateAgain = try chorus(["ingest", "--coordinator", a, "--json", updated], timeout: 120)
        #expect(updateAgain.json["stored"] as? Int == 0 && updateAgain.json["duplicates"] as? Int == 1500,
                "a moved partition lost user records written during its copy: \(updateAgain.stdout)")

        // Nothing of the copies is left behind on any worker.
        for i in 1...3 {
            let left = (try? FileManager.default.subpathsOfDirectory(atPath: cluster.dir + "/w\(i)/transfer")) ?? []
            #expect(left.filter { $0.hasSuffix(".sst") }.isEmpty, "w\(i): \(left)")
        }
    }
}
