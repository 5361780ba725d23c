import Foundation
import Testing

/// Issue 15's spend history through the real CLI against a real 2-worker cluster (replication 2): `chorus
/// generate --spend-history` writes it, `chorus ingest` loads it idempotently, and a malformed spend line is
/// rejected with its file, line and reason.
@Suite(.serialized) struct SpendIngestTests {
    @Test func aGeneratedSpendHistoryIngestsOnceAndReRunsCountOnlyDuplicates() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 2)
        defer { cluster.shutdown() }
        let gen = cluster.dir + "/gen"
        let g = try chorus(["generate", "--users", "40", "--seed", "5", "--out", gen, "--spend-history",
                            "--spend-weeks", "30", "--json"])
        #expect(g.status == 0, "\(g.stderr)")
        #expect(g.json["spend"] as? Int == 150)  // 5 channels × 30 weeks
        let truth = try String(contentsOfFile: gen + "/truth/spend_curves.csv", encoding: .utf8)
        #expect(truth.split(separator: "\n").count == 6 && truth.hasPrefix("channel,period,alpha,hill_k,hill_n,"))
        // Without the flag, the same network and no spend files.
        let plain = try chorus(["generate", "--users", "40", "--seed", "5", "--out", cluster.dir + "/plain"])
        #expect(plain.status == 0)
        #expect(!FileManager.default.fileExists(atPath: cluster.dir + "/plain/spend.jsonl"))
        #expect(FileManager.default.contents(atPath: cluster.dir + "/plain/interactions.jsonl")
                == FileManager.default.contents(atPath: gen + "/interactions.jsonl"))

        // A CSV of extra daily figures: two good rows and a malformed one (a month 13) on line 3.
        let extra = cluster.dir + "/spend_extra.csv"
        FileManager.default.createFile(atPath: extra, contents: Data("""
            channel,date,period,spend,conversions,segment
            x,2025-09-01,day,120.50,3,fans
            x,2025-13-01,day,80,1,others
            x,2025-09-01,day,60,1,others

            """.utf8))
        let rej = cluster.dir + "/rejects.jsonl"
        let args = ["ingest", "--coordinator", cluster.address, "--json", "--rejects", rej]
        let first = try chorus(args + [gen + "/spend.jsonl", extra])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.json["read"] as? Int == 153)
        #expect(first.json["stored"] as? Int == 152)
        #expect(first.json["duplicates"] as? Int == 0)
        #expect(first.json["rejected"] as? Int == 1)
        let files = first.json["files"] as? [[String: Any]] ?? []
        #expect(files.map { $0["kind"] as? String } == ["spend", "spend"])
        let entries = try String(contentsOfFile: rej, encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["line"] != nil }
        #expect(entries.count == 1)
        #expect(entries.first?["file"] as? String == extra)
        #expect(entries.first?["line"] as? Int == 3)
        #expect((entries.first?["reason"] as? String ?? "").hasPrefix("bad date in 'date': '2025-13-01'"),
                "\(entries)")

        // The same generated file again: every record is a duplicate, nothing is stored.
        let again = try chorus(args + [gen + "/spend.jsonl"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.json["read"] as? Int == 150)
        #expect(again.json["duplicates"] as? Int == 150)
        #expect(again.json["stored"] as? Int == 0 && again.json["rejected"] as? Int == 0)

        // Same identity, other values: a new version (stored); another segment is another record.
        let fix = cluster.dir + "/spend_fix.jsonl"
        FileManager.default.createFile(atPath: fix, contents: Data("""
            {"channel":"x","date":"2025-09-01","period":"day","spend":125,"conversions":3,"segment":"fans"}
            {"channel":"x","date":"2025-09-01","period":"day","spend":60,"conversions":1,"segment":"others"}

            """.utf8))
        let fixed = try chorus(args + [fix])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(fixed.json["stored"] as? Int == 1 && fixed.json["duplicates"] as? Int == 1, "\(fixed.stdout)")

        // A campaign's spend must name a stored plan (issue 16): no plan "launch" exists, so the line is rejected.
        let campaign = cluster.dir + "/spend_campaign.jsonl"
        FileManager.default.createFile(atPath: campaign, contents: Data("""
            {"channel":"x","date":"2025-09-01","spend":60,"campaign":"launch","version":1,"arm":"holdout"}

            """.utf8))
        let unknown = try chorus(args + ["--max-rejects", "100%", campaign])
        #expect(unknown.status == 0, "\(unknown.stderr)")
        #expect(unknown.json["rejected"] as? Int == 1 && unknown.json["stored"] as? Int == 0, "\(unknown.stdout)")
        let last = try String(contentsOfFile: rej, encoding: .utf8).split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.contains("unknown campaign 'launch'") && last.contains("\"line\":1"), "\(last)")
        #expect(cluster.coordinator.isRunning && cluster.workers.allSatisfy(\.isRunning))
    }
}
