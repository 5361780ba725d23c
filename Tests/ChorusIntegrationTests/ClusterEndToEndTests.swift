import ChorusAnalytics
import ChorusData
import ChorusModel
import ChorusTransport
import Foundation
import Testing

/// Planted bad input: (file, line) of every record that must be rejected, and the duplicates.
struct PlantedInput {
    let dir: String
    var files: [String] = []
    var rejects: Set<String> = []  // "basename:line"
    var duplicates = 0
    var mapping: String { dir + "/mapping.json" }

    init(dir: String, firstGeneratedInteraction: String) throws {
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let ok = #"{"interaction_id":"planted-ok-1","user_id":"u0000001","content_id":"c0000001","type":"like","channel":"x","ts":"2025-09-03T10:00:00Z"}"#
        var bad = Data()
        let lines: [(Data, Bool)] = [
            (Data(ok.utf8), false),                                                                       // 1 stored
            (Data("{not json".utf8), true),                                                               // 2
            (Data(#"{"content_id":"c1","type":"view","channel":"x","ts":1756720800}"#.utf8), true),        // 3 missing user_id
            (Data(#"{"user_id":17,"content_id":"c1","type":"view","channel":"x","ts":1756720800}"#.utf8), true),  // 4 wrong type
            (Data(#"{"user_id":"u1","content_id":"c1","type":"view","channel":"x","ts":"2025-13-45"}"#.utf8), true),  // 5 bad ts
            (Data(#"{"user_id":"u"#.utf8) + Data([0xC3, 0x28]) + Data(#"","content_id":"c1","type":"view","channel":"x","ts":1756720800}"#.utf8), true),  // 6 invalid UTF-8
            (Data(firstGeneratedInteraction.utf8), false),                                                // 7 duplicate of the generated file
            (Data((#"{"user_id":"u1","content_id":"c1","type":"view","channel":"x","ts":1756720800,"text":""# + String(repeating: "x", count: 2 << 20) + "\"}").utf8), true),  // 8 absurd size
            (Data(#"{"user_id":"u1","content_id":"c1","type":"teleport","channel":"x","ts":1756720800}"#.utf8), true),  // 9 unknown type
            (Data(), false),                                                                              // 10 blank: not a record
            (Data(ok.utf8), false),                                                                       // 11 duplicate
        ]
        for (i, (l, isBad)) in lines.enumerated() {
            bad.append(l)
            bad.append(0x0A)
            if isBad { rejects.insert("interactions_bad.jsonl:\(i + 1)") }
        }
        duplicates = 2
        FileManager.default.createFile(atPath: dir + "/interactions_bad.jsonl", contents: bad)
        // CSV users, one row with a wrong column count.
        let csv = "user_id,channel,country,language,age_band\nucsv1,x,US,en,18-24\n\"ucsv,2\",weibo,CN,zh,25-34\nucsv3,x\n"
        FileManager.default.createFile(atPath: dir + "/users_extra.csv", contents: Data(csv.utf8))
        rejects.insert("users_extra.csv:4")
        // A channel export with its own column names, loaded through a mapping profile.
        let weibo = "uid,mid,action,time\nu0000002,c0000003,repost,2025-09-05T08:30:00+08:00\nucsv1,c0000003,点赞,1757000000\n"
        FileManager.default.createFile(atPath: dir + "/weibo_actions.csv", contents: Data(weibo.utf8))
        let mappingJSON = """
        {"profiles": [{"name": "weibo", "match": ["weibo_*.csv"], "kind": "interactions",
          "fields": {"uid": "user_id", "mid": "content_id", "action": "type", "time": "ts"},
          "values": {"type": {"repost": "share", "点赞": "like"}}, "defaults": {"channel": "weibo"}}]}
        """
        FileManager.default.createFile(atPath: dir + "/mapping.json", contents: Data(mappingJSON.utf8))
        files = [dir + "/interactions_bad.jsonl", dir + "/users_extra.csv", dir + "/weibo_actions.csv"]
    }
}

/// Single-process reference: parse the input files directly and compute every profile with the pure functions.
func referenceProfiles(files: [String], mapping: MappingConfig, asOf: Int64) throws -> [String: UserFeatures] {
    var users: [String: UserRecord] = [:], contents: [String: ContentRecord] = [:]
    var interactions: [String: InteractionRecord] = [:]
    var follows = Set<[String]>()
    for path in files {
        let base = (path as NSString).lastPathComponent
        let m = mapping.profile(forFile: base)
        let kind = m?.kind ?? RecordKind.infer(fromFileName: base)!
        var p = RecordParser(kind: kind, format: base.hasSuffix(".csv") ? .csv : .jsonl, mapping: m)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
            let outcome = Array(line).withUnsafeBufferPointer { p.parse($0) }
            guard case let .record(r) = outcome else { continue }
            switch r {
            case let .user(u): users[u.id] = u
            case let .content(c): contents[c.id] = c
            case let .interaction(i): interactions[i.id] = i
            case let .follow(f): follows.insert([f.followerId, f.followeeId])
            case .spend, .outcome: continue  // no part of a profile
            }
        }
    }
    var catalog = FeatureCatalog()
    for u in users.values { catalog.users[u.id] = .init(channel: u.channel, country: u.country) }
    for c in contents.values { catalog.contents[c.id] = .init(topics: c.topics, hashtags: c.hashtags) }
    var byUser: [String: [InteractionRecord]] = [:]
    for i in interactions.values { byUser[i.userId, default: []].append(i) }
    var followers: [String: Int] = [:], following: [String: Int] = [:]
    for f in follows { following[f[0], default: 0] += 1; followers[f[1], default: 0] += 1 }
    let ids = Set(users.keys).union(byUser.keys).union(followers.keys).union(following.keys)
    var out: [String: UserFeatures] = [:]
    for id in ids {
        out[id] = FeatureMath.userFeatures(userId: id, user: users[id], interactions: byUser[id] ?? [],
                                           followers: followers[id] ?? 0, following: following[id] ?? 0,
                                           catalog: catalog, asOf: asOf)
    }
    return out
}

func nonBlankLines(_ path: String) throws -> Int {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return data.split(separator: 0x0A).filter { !$0.allSatisfy { $0 == 0x20 } }.count
}

@Suite(.serialized) struct ClusterEndToEndTests {
    @Test func ingestFeaturesAndProfilesMatchReference() throws {
        let cluster = try TestCluster(workers: 3)
        defer { cluster.shutdown() }
        let a = cluster.address
        let gen = cluster.dir + "/gen"
        let g = try chorus(["generate", "--users", "300", "--seed", "11", "--out", gen, "--json"])
        #expect(g.status == 0, "\(g.stderr)")
        let firstInteraction = try String(contentsOfFile: gen + "/interactions.jsonl", encoding: .utf8)
            .split(separator: "\n").first.map(String.init) ?? ""
        let planted = try PlantedInput(dir: cluster.dir + "/bad", firstGeneratedInteraction: firstInteraction)
        let files = ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl"].map { gen + "/" + $0 }
            + planted.files
        let rejectsPath = cluster.dir + "/rejects.jsonl"
        var expectedRead = 0
        for f in files { expectedRead += try nonBlankLines(f) }
        expectedRead -= 2  // the two CSV header lines are not records

        // First ingest.
        let r1 = try chorus(["ingest", "--coordinator", a, "--json", "--rejects", rejectsPath,
                             "--mapping", planted.mapping] + files)
        #expect(r1.status == 0, "\(r1.stderr)\n\(cluster.logs())")
        let j1 = r1.json
        #expect(j1["read"] as? Int == expectedRead)
        #expect(j1["rejected"] as? Int == planted.rejects.count)
        #expect(j1["duplicates"] as? Int == planted.duplicates)
        #expect(j1["stored"] as? Int == expectedRead - planted.rejects.count - planted.duplicates)
        // Every planted reject is in the rejects file with its file, line and a reason; nothing else is.
        // The file starts with the run's header line; every other line is one reject of that run.
        let allLines = try String(contentsOfFile: rejectsPath, encoding: .utf8).split(separator: "\n")
        let header = try JSONSerialization.jsonObject(with: Data((allLines.first ?? "").utf8)) as? [String: Any] ?? [:]
        #expect(header["run"] as? String == j1["run"] as? String && header["files"] != nil)
        let rejectLines = allLines.dropFirst()
        var got = Set<String>()
        for l in rejectLines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any] ?? [:]
            #expect(o["run"] as? String == j1["run"] as? String)
            let file = ((o["file"] as? String ?? "") as NSString).lastPathComponent
            got.insert("\(file):\(o["line"] as? Int ?? -1)")
            #expect(!(o["reason"] as? String ?? "").isEmpty)
        }
        #expect(got == planted.rejects)
        #expect(rejectLines.count == planted.rejects.count)

        // Re-ingest: nothing changes, nothing is counted twice.
        let r2 = try chorus(["ingest", "--coordinator", a, "--json", "--rejects", rejectsPath,
                             "--mapping", planted.mapping] + files)
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(r2.json["stored"] as? Int == 0)
        #expect(r2.json["read"] as? Int == expectedRead)
        #expect(r2.json["duplicates"] as? Int == expectedRead - planted.rejects.count)

        // Features job.
        let asOf: Int64 = 1_759_104_000  // 2025-09-29
        let job = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", String(asOf), "--wait",
                              "--json"], timeout: 300)
        #expect(job.status == 0, "\(job.stderr)\n\(cluster.logs())")
        let jj = job.json
        #expect(jj["state"] as? String == "succeeded")
        #expect(jj["progress"] as? Double == 1)
        let jobId = jj["id"] as? String ?? ""
        #expect(jobId.hasPrefix("job-"))
        let summary = jj["summary"] as? [String: Any] ?? [:]

        // Every profile equals the single-process reference, exactly.
        let mapping = try MappingConfig.decode(try Data(contentsOf: URL(fileURLWithPath: planted.mapping)))
        let reference = try referenceProfiles(files: files, mapping: mapping, asOf: asOf)
        let exportPath = cluster.dir + "/profiles.jsonl"
        let ex = try chorus(["profile", "export", "--coordinator", a, "--format", "jsonl", "--out", exportPath])
        #expect(ex.status == 0, "\(ex.stderr)")
        var exported: [String: UserFeatures] = [:]
        for line in try String(contentsOfFile: exportPath, encoding: .utf8).split(separator: "\n") {
            let f = try JSONDecoder().decode(UserFeatures.self, from: Data(line.utf8))
            #expect(exported[f.userId] == nil, "user \(f.userId) exported twice")
            exported[f.userId] = f
        }
        #expect(exported.count == reference.count)
        var mismatches = 0
        for (id, ref) in reference where exported[id] != ref {
            mismatches += 1
            if mismatches <= 3 { Issue.record("profile \(id) differs:\ncluster:   \(String(describing: exported[id]))\nreference: \(ref)") }
        }
        #expect(mismatches == 0)
        #expect(summary["users"] as? Int == reference.count)
        #expect(summary["interactions"] as? Int == reference.values.reduce(0) { $0 + $1.interactions })

        // Single reads, CSV export, listings.
        let pg = try chorus(["profile", "get", "u0000001", "--coordinator", a, "--json"])
        #expect(pg.status == 0)
        #expect(pg.json["interactions"] as? Int == reference["u0000001"]?.interactions)
        #expect(try chorus(["profile", "get", "nobody", "--coordinator", a]).status == 66)
        let csvPath = cluster.dir + "/profiles.csv"
        #expect(try chorus(["profile", "export", "--coordinator", a, "--format", "csv", "--out", csvPath]).status == 0)
        let csvLines = try String(contentsOfFile: csvPath, encoding: .utf8).split(separator: "\n")
        #expect(csvLines.count == reference.count + 1)
        #expect(csvLines.first?.hasPrefix("user_id,channel,country") == true)

        let nodes = try chorus(["node", "list", "--coordinator", a, "--json"]).json["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.count == 3)
        #expect(nodes.allSatisfy { ($0["id"] as? String)?.isEmpty == false && $0["name"] != nil
                                   && $0["state"] as? String == "active" })
        let list = try chorus(["job", "list", "--coordinator", a, "--json"]).json["jobs"] as? [[String: Any]] ?? []
        #expect(list.first?["id"] as? String == jobId)
        let st = try chorus(["job", "status", jobId, "--coordinator", a, "--json"]).json
        #expect(st["state"] as? String == "succeeded" && st["progress"] as? Double == 1)

        // Coordinator restart (kill -9): the map, members and job history come back from its store.
        let before = try chorus(["cluster", "status", "--coordinator", a, "--json"]).json
        try cluster.restartCoordinator(kill9: true)
        try waitUntil("workers re-registered", seconds: 30) {
            let s = try chorus(["cluster", "status", "--coordinator", a, "--json"]).json
            return (s["nodes"] as? [[String: Any]] ?? []).filter { $0["state"] as? String == "active" }.count == 3
        }
        let after = try chorus(["cluster", "status", "--coordinator", a, "--json"]).json
        #expect(after["coordinator_id"] as? String == before["coordinator_id"] as? String)
        #expect(after["partition_count"] as? Int == 16)
        #expect(after["map_version"] as? Int == before["map_version"] as? Int)
        let st2 = try chorus(["job", "status", jobId, "--coordinator", a, "--json"]).json
        #expect(st2["state"] as? String == "succeeded")
        let pg2 = try chorus(["profile", "get", "u0000001", "--coordinator", a, "--json"])
        #expect(pg2.json["interactions"] as? Int == reference["u0000001"]?.interactions)
    }
}
