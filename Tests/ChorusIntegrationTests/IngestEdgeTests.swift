import Foundation
import Testing

/// Issue 11's ingest defects, through the real CLI against a real 1-worker cluster: hostile numbers, BOMs, two
/// versions of a record in one file, directories, empty files, the reject limit and the rejects file across runs.
@Suite(.serialized) struct IngestEdgeTests {
    static func write(_ path: String, _ text: String) {
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }

    static func rejectEntries(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:]
        }
    }

    @Test func hostileInputIsRejectedNeverCrashes() throws {
        let cluster = try TestCluster(workers: 1, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let d = cluster.dir
        let good = #"{"interaction_id":"ok1","user_id":"u1","content_id":"c1","type":"like","channel":"x","ts":1756735509}"#
        var lines = [good]
        for v in ["1e30", "99999999999999999999999", "-1e19", "\"1e30\"", "1e308"] {
            lines.append(#"{"interaction_id":"bad","user_id":"u1","content_id":"c1","type":"like","channel":"x","ts":\#(v)}"#)
        }
        lines.append(#"{"interaction_id":"frac","user_id":"u1","content_id":"c1","type":"like","channel":"x","ts":1756735509.5}"#)
        Self.write(d + "/interactions_hostile.jsonl", lines.joined(separator: "\n") + "\n")
        Self.write(d + "/users_hostile.jsonl", #"{"user_id":"u1","channel":"x","created_at":-1e19}"# + "\n"
                   + #"{"user_id":"u2","channel":"x","created_at":1e30}"# + "\n")
        // A BOM before the first JSON line and before a CSV header; a file with lone-CR line endings.
        FileManager.default.createFile(atPath: d + "/users_bom.jsonl",
                                       contents: Data([0xEF, 0xBB, 0xBF]) + Data(#"{"user_id":"ub1","channel":"x"}"#.utf8))
        FileManager.default.createFile(atPath: d + "/users_bom.csv",
                                       contents: Data([0xEF, 0xBB, 0xBF]) + Data("user_id,channel\nub2,x\nub3,y\n".utf8))
        Self.write(d + "/users_cr.csv", "user_id,channel\rucr1,x\rucr2,x\r")
        let files = ["interactions_hostile.jsonl", "users_hostile.jsonl", "users_bom.jsonl", "users_bom.csv",
                     "users_cr.csv"].map { d + "/" + $0 }
        let r = try chorus(["ingest", "--coordinator", cluster.address, "--json", "--rejects", d + "/rej.jsonl",
                            "--max-rejects", "100%"] + files)
        #expect(r.status == 0, "\(r.stderr)")
        let j = r.json
        #expect(j["read"] as? Int == 7 + 2 + 1 + 2 + 2)
        #expect(j["rejected"] as? Int == 5 + 2)
        #expect(j["stored"] as? Int == 2 + 1 + 2 + 2)
        let entries = try Self.rejectEntries(d + "/rej.jsonl").filter { $0["line"] != nil }
        #expect(entries.count == 7)
        for e in entries {
            #expect((e["reason"] as? String ?? "").contains("outside 1990-01-01 to 2100-01-01")
                    || (e["reason"] as? String ?? "").contains("number out of range"), "\(e)")
            #expect(e["record"] != nil && e["file"] != nil)
        }
        // The processes are all still there and serving.
        #expect(cluster.coordinator.isRunning && cluster.workers.allSatisfy(\.isRunning))
        let job = try chorus(["job", "submit", "features", "--coordinator", cluster.address, "--wait", "--json"],
                             timeout: 120)
        #expect(job.status == 0, "\(job.stderr)")
        for u in ["ub1", "ub2", "ub3", "ucr1", "ucr2"] {
            let p = try chorus(["profile", "get", u, "--coordinator", cluster.address, "--json"])
            #expect(p.status == 0 && p.json["known_user"] as? Bool == true, "\(u): \(p.stdout) \(p.stderr)")
        }
    }

    @Test func lastVersionInARunWinsAndReRunsCountDuplicates() throws {
        let cluster = try TestCluster(workers: 1, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let d = cluster.dir
        // 300 users, each given twice with different names; the second version is far from the first.
        var first: [String] = [], second: [String] = []
        for i in 0..<300 {
            first.append(#"{"user_id":"v\#(i)","channel":"x","country":"US"}"#)
            second.append(#"{"user_id":"v\#(i)","channel":"x","country":"FR"}"#)
        }
        Self.write(d + "/users_versions.jsonl", (first + second).joined(separator: "\n") + "\n")
        let args = ["ingest", "--coordinator", cluster.address, "--json", "--rejects", d + "/rej.jsonl",
                    d + "/users_versions.jsonl"]
        let r1 = try chorus(args)
        #expect(r1.status == 0, "\(r1.stderr)")
        #expect(r1.json["read"] as? Int == 600)
        #expect(r1.json["stored"] as? Int == 300)
        #expect(r1.json["superseded"] as? Int == 300)
        #expect(r1.json["duplicates"] as? Int == 300)
        for _ in 0..<2 {
            let again = try chorus(args)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.json["stored"] as? Int == 0)
            #expect(again.json["duplicates"] as? Int == 600)
        }
        let job = try chorus(["job", "submit", "features", "--coordinator", cluster.address, "--wait", "--json"],
                             timeout: 120)
        #expect(job.status == 0, "\(job.stderr)")
        let p = try chorus(["profile", "get", "v7", "--coordinator", cluster.address, "--json"])
        #expect(p.json["country"] as? String == "FR", "\(p.stdout)")
    }

    @Test func directoriesEmptyFilesRejectLimitAndRejectsHistory() throws {
        let cluster = try TestCluster(workers: 1, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let d = cluster.dir + "/in"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        Self.write(d + "/users.jsonl", #"{"user_id":"a1","channel":"x"}"# + "\n" + #"{"user_id":"a2","channel":"x"}"# + "\n")
        Self.write(d + "/follows.csv", "follower_id,followee_id,channel\n")   // a header only: no records
        Self.write(d + "/README.txt", "not data\n")
        let rej = cluster.dir + "/rej.jsonl"
        // A directory stands for its files; what it cannot read is named in a warning.
        let r = try chorus(["ingest", "--coordinator", cluster.address, "--json", "--rejects", rej, d])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.json["read"] as? Int == 2 && r.json["stored"] as? Int == 2)
        let warnings = r.json["warnings"] as? [String] ?? []
        #expect(warnings.contains { $0.contains("README.txt") && $0.contains("not read") })
        #expect(warnings.contains { $0.contains("follows.csv") && $0.contains("no records") })
        #expect(r.stderr.contains("warning:"))
        // An empty directory is a usage error, not "file not found".
        let empty = cluster.dir + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let e = try chorus(["ingest", "--coordinator", cluster.address, empty])
        #expect(e.status == 64 && e.stderr.contains("has no input files"), "\(e.stderr)")

        // Every record rejected: the default limit (10%) fails the run with exit 65, after the summary.
        Self.write(cluster.dir + "/users_bad.jsonl", "{nope\n{\"user_id\":7}\n")
        let bad = try chorus(["ingest", "--coordinator", cluster.address, "--json", "--rejects", rej,
                              cluster.dir + "/users_bad.jsonl"])
        #expect(bad.status == 65, "\(bad.stderr)")
        #expect(bad.json["rejected"] as? Int == 2)
        #expect(bad.stderr.contains("--max-rejects"))
        let limitOK = try chorus(["ingest", "--coordinator", cluster.address, "--max-rejects", "2", "--rejects", rej,
                                  cluster.dir + "/users_bad.jsonl"])
        #expect(limitOK.status == 0, "\(limitOK.stderr)")
        let badFlag = try chorus(["ingest", "--coordinator", cluster.address, "--max-rejects", "150%",
                                  cluster.dir + "/users_bad.jsonl"])
        #expect(badFlag.status == 64)

        // The rejects file keeps both runs, each behind its own header.
        let entries = try Self.rejectEntries(rej)
        let headers = entries.filter { $0["line"] == nil }
        #expect(headers.count == 2)
        #expect(Set(headers.compactMap { $0["run"] as? String }).count == 2)
        #expect(entries.filter { $0["line"] != nil }.count == 4)
    }
}
