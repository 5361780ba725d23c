import Foundation
import Testing

/// What a user sees from the client commands on a live cluster: the human views, the CSV export, the explanations
/// of recommendations, `job cancel` on a finished job, and progress lines on and off a terminal.
@Suite(.serialized) struct CLIViewsTests {
    @Test func humanViewsExportAndExplanationsOnALiveCluster() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address
        let (gen, files) = try cluster.generate(users: 200, seed: 5)
        // Off a terminal, --progress prints plain lines: no carriage return, no escape codes.
        let ingest = try chorus(["ingest", "--coordinator", a, "--progress"] + files)
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(!ingest.stderr.contains("\r") && !ingest.stderr.contains("\u{1B}"), "\(ingest.stderr.debugDescription)")

        // --wait off a terminal: one line per change, never the same line twice, and no `\r`.
        let features = try chorus(["job", "submit", "features", "--as-of", "2025-09-29T00:00:00Z", "--coordinator", a,
                                   "--wait"], timeout: 300)
        #expect(features.status == 0, "\(features.stderr)")
        let lines = features.stderr.split(separator: "\n")
        #expect(!features.stderr.contains("\r") && Set(lines).count == lines.count, "\(features.stderr.debugDescription)")
        // The final state is printed once, on stdout, not repeated from the progress line.
        #expect(!lines.contains { $0.contains("succeeded") }, "\(features.stderr)")
        #expect(features.stdout.contains("succeeded"))
        let jobId = String(features.stdout.prefix { !$0.isWhitespace })

        // On a terminal (a pseudo-terminal from script(1)), the line is rewritten in place, cleared first, with the
        // elapsed time; and cleared at the end. (Wide, so the live line is not cut to the pty's default 80 columns.)
        let tty = try run("/usr/bin/env", ["COLUMNS=300", "/usr/bin/script", "-qfec", "\(Binary.chorus) job submit als --coordinator \(a) --wait "
                                              + "--param mode=implicit --param rank=8 --param iterations=4", "/dev/null"],
                          timeout: 300)
        #expect(tty.status == 0, "\(tty.stdout)")
        #expect(tty.stdout.contains("\r\u{1B}[2K") && tty.stdout.contains("elapsed"), "\(tty.stdout.debugDescription)")

        // job cancel on a finished job: says so, in which state, and exits 3.
        let cancel = try chorus(["job", "cancel", jobId, "--coordinator", a])
        #expect(cancel.status == 3, "\(cancel.stdout) \(cancel.stderr)")
        #expect(cancel.stderr.contains("already ended: succeeded at 20"), "\(cancel.stderr)")

        // sentiment content: a readable view without --json, the documented JSON with it.
        let sentiment = try chorus(["sentiment", "run", "--coordinator", a, "--keywords", "nova"], timeout: 300)
        #expect(sentiment.status == 0, "\(sentiment.stderr)\n\(cluster.logs())")
        let firstContent = try String(contentsOfFile: gen + "/content.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let keys = try chorus(["sentiment", "keys", "--coordinator", a, "--json"])
        #expect(keys.status == 0)
        var shown = false
        for c in firstContent.prefix(20) {
            let id = c["content_id"] as? String ?? ""
            let human = try chorus(["sentiment", "content", id, "--coordinator", a])
            guard human.status == 0 else { continue }
            #expect(!human.stdout.hasPrefix("{") && human.stdout.contains("content \(id)") && human.stdout.contains("comment"),
                    "\(human.stdout)")
            let json = try chorus(["sentiment", "content", id, "--coordinator", a, "--json"])
            #expect(json.json["content_id"] as? String == id && json.json["distribution"] != nil, "\(json.stdout)")
            shown = true
            break
        }
        #expect(shown, "no content item had sentiment")

        // profile get: sections, ISO times, rounded numbers, the embedding summarized; the id is trimmed.
        let user = "u0000001"
        let view = try chorus(["profile", "get", "  \(user)  ", "--coordinator", a])
        #expect(view.status == 0, "\(view.stderr)")
        for section in ["user \(user)", "activity", "interests", "sentiment", "recommendations", "embedding: rank 8, norm "] {
            #expect(view.stdout.contains(section), "missing \(section):\n\(view.stdout)")
        }
        #expect(view.stdout.contains("2025-09-"), "no ISO times:\n\(view.stdout)")
        let longNumber = try NSRegularExpression(pattern: #"\d\.\d{5,}|\b1[67]\d{8}\b"#)
        #expect(longNumber.firstMatch(in: view.stdout, range: NSRange(view.stdout.startIndex..., in: view.stdout)) == nil,
                "raw floats or epoch seconds:\n\(view.stdout)")
        let json = try chorus(["profile", "get", user, "--coordinator", a, "--json"]).json
        #expect((json["embedding"] as? [Double])?.count == 8 && json["first_ts"] is Int && json["sentiment"] != nil, "\(json)")

        // CSV export: the documented columns in the documented order, with sentiment, attitudes and recommendations.
        let csv = try chorus(["profile", "export", "--format", "csv", "--coordinator", a])
        let rows = csv.stdout.split(separator: "\n").map(String.init)
        let docs = try String(contentsOfFile: Binary.root + "/docs/cli.md", encoding: .utf8)
        let documented = try #require(docs.split(separator: "\n").first { $0.hasPrefix("CSV columns:") })
            .dropFirst("CSV columns:".count).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces.union(["`", "."])) }
        #expect(rows.first?.split(separator: ",").map(String.init) == documented, "\(rows.first ?? "")")
        let header = rows[0].split(separator: ",").map(String.init)
        #expect(rows.count == 201)
        let row = try #require(rows.first { $0.hasPrefix(user + ",") })
        let fields = row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        func field(_ name: String) -> String { header.firstIndex(of: name).map { fields[$0] } ?? "" }
        #expect(field("recommendations").hasPrefix("c") && field("recommendations").contains(":0."), "\(row)")
        #expect(!field("sentiment_comments").isEmpty && !field("attitudes").isEmpty, "\(row)")
        #expect(field("known_user") == "true", "\(row)")

        // recommend and similar: each item's channel and topics, and an explanation of what drove its score.
        let rec = try chorus(["recommend", user, "--n", "5", "--coordinator", a])
        #expect(rec.status == 0, "\(rec.stderr)")
        #expect(rec.stdout.contains(" on ") && rec.stdout.contains("why: "), "\(rec.stdout)")
        let recJSON = try chorus(["recommend", user, "--n", "5", "--coordinator", a, "--json"]).json
        let items = recJSON["items"] as? [[String: Any]] ?? []
        #expect(items.count == 5 && items.allSatisfy { ($0["content"] as? [String: Any])?["channel"] is String }, "\(recJSON)")
        for i in items {
            let reason = i["reason"] as? String ?? ""
            let close = (i["similarity"] as? Double ?? 0) >= 0.5
            #expect(close ? reason.hasPrefix("close to \(i["because"] as? String ?? "?")") : reason.hasPrefix("fits the tastes"),
                    "\(i)")
        }
        let sim = try chorus(["similar", items.first?["content_id"] as? String ?? "", "--n", "3", "--coordinator", a])
        #expect(sim.status == 0 && sim.stdout.hasPrefix("similar to ") && sim.stdout.contains(" on "), "\(sim.stdout)")

        // Explicit mode learns from ratings only (interactions of type rating; a conversion's value is money, not
        // stars). Some users rate a few items; a user without any rating is told so, with the number of
        // interactions they do have, instead of "no interactions".
        let raters = (1...40).map { String(format: "u%07d", $0) }
        let rated = raters.enumerated().flatMap { i, u in
            (0..<4).map { k in
                #"{"interaction_id":"r-\#(u)-\#(k)","user_id":"\#(u)","content_id":"\#(String(format: "c%07d", (i * 7 + k * 13) % 30))","type":"rating","channel":"x","ts":"2025-09-10T10:00:00Z","value":\#(1 + (i + k) % 5)}"#
            }
        }
        FileManager.default.createFile(atPath: gen + "/interactions-ratings.jsonl",
                                       contents: Data((rated.joined(separator: "\n") + "\n").utf8))
        let ri = try chorus(["ingest", "--coordinator", a, gen + "/interactions-ratings.jsonl"])
        #expect(ri.status == 0, "\(ri.stderr)")
        let explicit = try chorus(["job", "submit", "als", "--coordinator", a, "--wait", "--param", "mode=explicit",
                                   "--param", "rank=4", "--param", "iterations=3"], timeout: 300)
        #expect(explicit.status == 0, "\(explicit.stderr)")
        let interactions = try String(contentsOfFile: gen + "/interactions.jsonl", encoding: .utf8).split(separator: "\n")
        let valued = Set(raters)
        let counts = Dictionary(grouping: interactions.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["user_id"] as? String }, by: { $0 })
            .mapValues(\.count)
        let unrated = try #require(counts.keys.sorted().first { !valued.contains($0) && counts[$0]! > 5 })
        let cold = try chorus(["recommend", unrated, "--coordinator", a, "--json"]).json
        #expect(cold["status"] as? String == "no_factors_yet", "\(cold)")
        let message = cold["message"] as? String ?? ""
        #expect(message.contains("has \(counts[unrated]!) interactions, but none with a rating") && message.contains("no factors yet"),
                "\(message)")
        let coldItems = cold["items"] as? [[String: Any]] ?? []
        #expect(!coldItems.isEmpty && coldItems.allSatisfy { ($0["reason"] as? String ?? "").hasPrefix("popular: ") }, "\(cold)")
    }
}
