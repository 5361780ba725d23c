import Foundation
import Testing

/// The `sentiment` and `themes` jobs and `chorus alerts`, on real processes.
@Suite(.serialized) struct SentimentJobTests {
    @Test func scoresAggregatesAndAlertsOnAPlantedIncident() throws {
        let dir = NSTemporaryDirectory() + "chorus-sj-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try chorus(["generate", "--users", "300", "--seed", "11", "--out", dir + "/gen"]).status == 0)
        // The planted incident: 60 angry comments about one post's battery within one hour.
        let first = try String(contentsOfFile: dir + "/gen/content.jsonl", encoding: .utf8).split(separator: "\n")[0]
        let content = try JSONSerialization.jsonObject(with: Data(first.utf8)) as! [String: Any]
        let cid = content["content_id"] as! String
        let topic = (content["topics"] as! [String])[0]
        var lines: [String] = []
        let texts = ["battery exploded, terrible", "hate it, the battery overheats", "battery died, so disappointed"]
        for i in 0..<60 {
            lines.append(#"{"interaction_id":"planted-\#(i)","user_id":"u0000\#(String(format: "%03d", i % 300))","content_id":"\#(cid)","type":"comment","channel":"x","ts":"2025-09-21T14:\#(String(format: "%02d", i % 60)):00Z","text":"\#(texts[i % 3])"}"#)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/interactions-planted.jsonl", atomically: true, encoding: .utf8)
        let labels = try SentimentTrainingTests.fixture(dir)

        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address
        let files = ["users.jsonl", "content.jsonl", "interactions.jsonl"].map { dir + "/gen/" + $0 } + [dir + "/interactions-planted.jsonl"]
        #expect(try chorus(["ingest", "--coordinator", a] + files).status == 0)
        let train = try chorus(["model", "train", "sentiment", "--coordinator", a, "--labels", labels, "--iterations", "30",
                                "--dimensions", "4096", "--name", "fixture"], timeout: 300)
        #expect(train.status == 0, "\(train.stderr)")

        let run = try chorus(["job", "submit", "sentiment", "--coordinator", a, "--param", "model=fixture",
                              "--param", "keywords=battery", "--wait", "--json"], timeout: 300)
        #expect(run.json["state"] as? String == "succeeded", "\(run.stdout)\n\(run.stderr)\n\(cluster.logs())")
        let s = run.json["summary"] as? [String: Any] ?? [:]
        let generated = try String(contentsOfFile: dir + "/gen/interactions.jsonl", encoding: .utf8)
            .split(separator: "\n").filter { $0.contains("\"type\":\"comment\"") }.count
        #expect(s["comments"] as? Int == generated + 60, "\(s)")
        #expect((s["channels"] as? [String: Any])?["x"] != nil)
        // The incident fires for its topic and for the brand keyword, with battery among the why terms.
        let alerts = s["alerts"] as? [[String: Any]] ?? []
        let topicAlerts = alerts.filter { $0["key"] as? String == "topic:\(topic)" }
        #expect(topicAlerts.contains { $0["kind"] as? String == "volume_spike" }, "\(alerts)")
        #expect(alerts.filter { $0["key"] as? String == "brand:battery" && $0["kind"] as? String == "volume_spike" }.count == 1, "\(alerts)")
        #expect(topicAlerts.allSatisfy { $0["at"] as? String == "2025-09-21T14:00:00Z" }, "\(topicAlerts)")
        #expect(topicAlerts.allSatisfy { ($0["why"] as? [String] ?? []).prefix(3).contains("battery") }, "\(topicAlerts)")
        // One burst seen through its topic and the brand keyword is one incident, with each example once.
        let incidents = s["incidents"] as? [[String: Any]] ?? []
        let burst = incidents.filter { ($0["keys"] as? [String] ?? []).contains("topic:\(topic)") }
        #expect(burst.count == 1 && (burst.first?["keys"] as? [String] ?? []).contains("brand:battery"), "\(incidents)")
        #expect(incidents.count < alerts.count, "\(incidents)")
        for inc in incidents {
            let ex = inc["examples"] as? [String] ?? []
            #expect(Set(ex.map { $0.lowercased() }).count == ex.count, "\(inc)")
        }
        // Stored and listed, grouped by incident; a second run finds them again but stores nothing twice.
        let listed = try chorus(["alerts", "--coordinator", a])
        #expect(listed.stdout.contains("incident: ") && listed.stdout.contains("topic:\(topic)")
                && listed.stdout.contains("volume_spike") && listed.stdout.contains("why: "), "\(listed.stdout)")
        let listedJSON = try chorus(["alerts", "--coordinator", a, "--json"])
        let stored = (try? JSONSerialization.jsonObject(with: Data(listedJSON.stdout.utf8))) as? [[String: Any]] ?? []
        #expect(stored.allSatisfy { a in
            let ex = a["examples"] as? [String] ?? []
            return Set(ex).count == ex.count && a["incident"] != nil
        }, "\(listedJSON.stdout)")
        let again = try chorus(["job", "submit", "sentiment", "--coordinator", a, "--param", "model=fixture",
                                "--param", "keywords=battery", "--wait", "--json"], timeout: 300)
        #expect((again.json["summary"] as? [String: Any])?["alerts_new"] as? Int == 0, "\(again.stdout)")
        // --watch runs the job again and prints only alerts it has not seen: none this time.
        let watch = try chorus(["alerts", "--watch", "--checks", "1", "--every", "0", "--model", "fixture",
                                "--keywords", "battery", "--coordinator", a, "--json"], timeout: 300)
        #expect(watch.status == 0 && watch.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(watch.stdout) \(watch.stderr)")
        // Per content: distribution and the most negative comments.
        let cs = try chorus(["sentiment", "content", cid, "--coordinator", a, "--json"]).json
        #expect((cs["comments"] as? Int ?? 0) >= 60 && (cs["most_negative"] as? [[String: Any]])?.count == 3, "\(cs)")
        #expect(((cs["most_negative"] as? [[String: Any]])?.first?["text"] as? String ?? "").contains("battery"))
        // Per user: the attitude is part of the profile.
        let prof = try chorus(["profile", "get", "u0000001", "--coordinator", a, "--json"]).json
        let att = (prof["sentiment"] as? [String: Any])?["attitudes"] as? [String: Any]
        #expect(att?.keys.contains("brand:battery") == true, "\(prof)")
        // Series, and themes of the negative comments.
        let series = try chorus(["sentiment", "series", "topic:\(topic)", "--daily", "--coordinator", a, "--json"]).json
        #expect((series["days"] as? [Int])?.isEmpty == false)
        let themes = try chorus(["sentiment", "themes", "brand:battery", "--k", "2", "--model", "fixture", "--coordinator", a, "--json"], timeout: 300)
        let ts = themes.json["themes"] as? [[String: Any]] ?? []
        #expect(!ts.isEmpty && ts.allSatisfy { ($0["examples"] as? [String])?.isEmpty == false }, "\(themes.stdout) \(themes.stderr)")
        #expect(ts.allSatisfy { let ex = $0["examples"] as? [String] ?? []; return Set(ex).count == ex.count }, "\(ts)")
        #expect(ts.reduce(0) { $0 + ($1["size"] as? Int ?? 0) } == themes.json["clustered"] as? Int)
    }
}
