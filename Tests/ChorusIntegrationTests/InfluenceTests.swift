import Foundation
import Testing

/// The peer tools in .cache/peers/venv (git-ignored), installed from PyPI by scripts/peers.sh on first use (the
/// segments and propensity tests use the same script); nil when that is not possible (offline).
enum PeersVenv {
    static func install(_ peers: String...) -> String? {
        guard let r = try? run("/bin/bash", [Binary.root + "/scripts/peers.sh"] + peers, timeout: 600),
              r.status == 0 else { return nil }
        let py = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return FileManager.default.isExecutableFile(atPath: py) ? py : nil
    }
    static let python: String? = install("networkx")
    static let sklearn: String? = install("sklearn")
}

extension RealData {
    static var hasWikiVote: Bool { FileManager.default.fileExists(atPath: dir + "/wikivote/follows-wikivote.csv") }
}

/// The `influence` job (PageRank on the follower graph) through the cluster: the wiki-Vote graph against
/// networkx, planted hubs, 1 and 3 workers identical, a worker killed mid-job, bad parameters refused.
@Suite(.serialized) struct InfluenceTests {
    static func submit(_ a: String, _ params: [String], timeout: Double = 300) throws -> [String: Any] {
        let r = try chorus(["job", "submit", "influence", "--wait", "--json", "--coordinator", a]
                           + params.flatMap { ["--param", $0] }, timeout: timeout)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.json["state"] as? String == "succeeded", "\(r.stdout)")
        return r.json["summary"] as? [String: Any] ?? [:]
    }

    /// Every exported profile's influence section, by user.
    static func sections(_ cluster: TestCluster, _ name: String = "p") throws -> [String: [String: Any]] {
        let out = cluster.dir + "/\(name).jsonl"
        let r = try chorus(["profile", "export", "--coordinator", cluster.address, "--out", out], timeout: 120)
        #expect(r.status == 0, "\(r.stderr)")
        var all: [String: [String: Any]] = [:]
        for line in try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            if let id = o["user_id"] as? String, let s = o["influence"] as? [String: Any] { all[id] = s }
        }
        return all
    }

    static func same(_ a: [String: [String: Any]], _ b: [String: [String: Any]]) -> Bool {
        a.count == b.count && a.allSatisfy { k, v in b[k].map { NSDictionary(dictionary: v).isEqual(to: $0) } ?? false }
    }

    @Test(.enabled(if: RealData.hasWikiVote, "wiki-Vote not fetched: run scripts/fetch-real-data.sh (needs PyPI)"),
          .enabled(if: PeersVenv.python != nil, "networkx/scipy not installable into .cache/peers/venv (offline)"))
    func wikiVoteMatchesNetworkx() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8)
        defer { cluster.shutdown() }
        let csv = RealData.dir + "/wikivote/follows-wikivote.csv"
        let ing = try chorus(["ingest", "--coordinator", cluster.address, "--json",
                              "--mapping", Binary.root + "/data/mappings/wikivote.json",
                              "--rejects", cluster.dir + "/rejects.jsonl", csv], timeout: 300)
        #expect(ing.status == 0, "\(ing.stderr)")
        #expect(ing.json["stored"] as? Int == 103_688, "\(ing.stdout)")
        // `features` gives every node a profile, so `profile export` lists them all.
        let f = try chorus(["job", "submit", "features", "--wait", "--json", "--coordinator", cluster.address], timeout: 300)
        #expect(f.status == 0, "\(f.stderr)")
        let s = try Self.submit(cluster.address, ["damping=0.85", "tolerance=1e-12", "max_iterations=1000", "topics=0"])
        #expect(s["nodes"] as? Int == 7115)
        #expect(s["edges"] as? Int == 103_688)
        #expect(s["converged"] as? Bool == true)
        let ours = try Self.sections(cluster)
        #expect(ours.count == 7115)
        let scores = cluster.dir + "/ours.csv"
        try ours.map { "\($0.key),\(($0.value["pagerank"] as? NSNumber)?.doubleValue ?? -1)" }.joined(separator: "\n")
            .write(toFile: scores, atomically: true, encoding: .utf8)
        let script = """
        import csv, sys, networkx as nx
        G = nx.DiGraph()
        with open(sys.argv[1]) as f:
            r = csv.reader(f); next(r)
            G.add_edges_from((a, b) for a, b in r)
        pr = nx.pagerank(G, alpha=0.85, tol=1e-12, max_iter=1000)
        ours = dict((k, float(v)) for k, v in (l.split(",") for l in open(sys.argv[2]).read().split("\\n") if l))
        assert set(ours) == set(pr), (len(ours), len(pr))
        l1 = sum(abs(ours[k] - pr[k]) for k in pr)
        top = lambda d: [k for k, _ in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[:20]]
        print(l1, int(top(ours) == top(pr)))
        """
        let py = try run(PeersVenv.python!, ["-c", script, csv, scores], timeout: 300)
        #expect(py.status == 0, "\(py.stderr)")
        let parts = py.stdout.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        let l1 = Double(parts.first ?? "") ?? 1
        #expect(l1 <= 1e-6, "L1 distance from networkx.pagerank: \(l1)")
        #expect(parts.last == "1", "the top 20 differ from networkx's")
    }

    /// A follower graph of 400 users with random sparse follows (a linear congruential sequence, so the same graph
    /// every run) and 4 planted hubs that a quarter of the users follow, plus a user with no edges.
    /// The hubs are dangling nodes, so this also exercises the spread of dangling mass through the cluster.
    static func plantedGraph(_ dir: String) throws -> (files: [String], hubs: [String]) {
        var state: UInt64 = 7
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        let n = 400
        let hubs = ["u0042", "u0117", "u0256", "u0333"]
        var users: [String] = [], follows: [String] = []
        for i in 0..<n { users.append("{\"user_id\":\"u\(String(format: "%04d", i))\",\"channel\":\"x\"}") }
        users.append("{\"user_id\":\"loner\",\"channel\":\"x\"}")  // no edges at all
        var seen = Set<String>()
        func follow(_ a: String, _ b: String) {
            guard a != b, seen.insert(a + ">" + b).inserted else { return }
            follows.append("{\"follower_id\":\"\(a)\",\"followee_id\":\"\(b)\",\"channel\":\"x\"}")
        }
        for i in 0..<n {
            let me = "u" + String(format: "%04d", i)
            // The hubs follow no one: a hub's follow would pass most of its rank on to one user, who would then
            // rank as high as the hub (rightly: PageRank rewards being followed by the influential).
            if !hubs.contains(me) {
                for _ in 0..<Int(next() % 5) { follow(me, "u" + String(format: "%04d", Int(next() % UInt64(n)))) }
            }
            for h in hubs where next() % 4 == 0 { follow(me, h) }
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (users.joined(separator: "\n") + "\n").write(toFile: dir + "/users.jsonl", atomically: true, encoding: .utf8)
        try (follows.joined(separator: "\n") + "\n").write(toFile: dir + "/follows.jsonl", atomically: true, encoding: .utf8)
        return ([dir + "/users.jsonl", dir + "/follows.jsonl"], hubs)
    }

    /// The planted hubs are the top 4, and `chorus influencers` shows them with their followers.
    @Test func plantedHubsRankTopAndInfluencersExplainsThem() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8)
        defer { cluster.shutdown() }
        let (files, hubs) = try Self.plantedGraph(cluster.dir + "/planted")
        let none = try chorus(["influencers", "--coordinator", cluster.address])
        #expect(none.status == 66 && none.stderr.contains("no influence job"), "\(none.stderr)")
        #expect(try chorus(["ingest", "--coordinator", cluster.address, "--json"] + files).status == 0)
        let s = try Self.submit(cluster.address, [])
        #expect(s["converged"] as? Bool == true)
        #expect(s["nodes"] as? Int == 401)
        #expect((s["topics_note"] as? String ?? "").contains("features"), "\(s)")
        let top = try chorus(["influencers", "--n", "4", "--json", "--coordinator", cluster.address])
        #expect(top.status == 0, "\(top.stderr)")
        let users = top.json["users"] as? [[String: Any]] ?? []
        #expect(Set(users.compactMap { $0["user_id"] as? String }) == Set(hubs), "\(users)")
        #expect(users.allSatisfy { ($0["followers"] as? Int ?? 0) > 50 })
        let table = try chorus(["influencers", "--n", "4", "--coordinator", cluster.address])
        #expect(table.stdout.contains("FOLLOWERS") && table.stdout.contains("PAGERANK") && table.stdout.contains(hubs[0]),
                "\(table.stdout)")
        let badTopic = try chorus(["influencers", "--topic", "tech", "--coordinator", cluster.address])
        #expect(badTopic.status == 66 && badTopic.stderr.contains("topic_list=tech"), "\(badTopic.stderr)")
        // The user with no edges: a clear state, no rank.
        let loner = try chorus(["profile", "get", "loner", "--json", "--coordinator", cluster.address])
        let sec = loner.json["influence"] as? [String: Any] ?? [:]
        #expect(sec["state"] as? String == "no_edges", "\(loner.stdout)")
        #expect(sec["rank"] == nil)
        #expect(loner.json["produced_by"].flatMap { ($0 as? [String: Any])?["influence"] } != nil)
        let text = try chorus(["profile", "get", hubs[0], "--coordinator", cluster.address])
        #expect(text.stdout.contains("influence (PageRank on the follower graph)"), "\(text.stdout)")
    }

    /// Generated network with features (topics, content, interactions): the whole influence output is the same
    /// with 1 and 3 workers, and topic ranks and engagement influence are filled.
    func generatedRun(workers: Int) throws -> (summary: [String: Any], sections: [String: [String: Any]]) {
        let cluster = try TestCluster(workers: workers, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        try cluster.ingestGenerated(users: 300, seed: 21)
        let f = try chorus(["job", "submit", "features", "--as-of", "1759104000", "--wait", "--json",
                            "--coordinator", cluster.address], timeout: 120)
        #expect(f.status == 0, "\(f.stderr)")
        let s = try Self.submit(cluster.address, ["topics=2"])
        let topic = (s["topics"] as? [[String: Any]] ?? []).first?["topic"] as? String ?? "?"
        let t = try chorus(["influencers", "--topic", topic, "--n", "5", "--coordinator", cluster.address])
        #expect(t.status == 0 && t.stdout.contains("TOPIC SCORE"), "\(t.stdout)\(t.stderr)")
        return (s, try Self.sections(cluster))
    }

    @Test func oneAndThreeWorkersGiveIdenticalScores() throws {
        let one = try generatedRun(workers: 1)
        let three = try generatedRun(workers: 3)
        #expect(!one.sections.isEmpty)
        #expect(Self.same(one.sections, three.sections))
        func text(_ v: Any) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: JobKindsTests.untimed(v), options: [.sortedKeys]),
                   as: UTF8.self)
        }
        #expect(try text(one.summary) == text(three.summary))
        #expect((one.summary["topics"] as? [Any])?.count == 2, "\(one.summary)")
        #expect(one.sections.values.contains { ($0["topic_ranks"] as? [Any])?.count == 2 })
        #expect(one.sections.values.contains { $0["engagement_influence"] != nil })
    }

    @Test func workerKilledMidJobLeavesTheSameResult() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8)
        defer { cluster.shutdown() }
        let a = cluster.address
        try cluster.ingestGenerated(users: 200, seed: 5)
        #expect(try chorus(["job", "submit", "features", "--wait", "--coordinator", a], timeout: 120).status == 0)
        let sub = try chorus(["job", "submit", "influence", "--coordinator", a, "--param", "topics=1",
                              "--param", "debug_task_delay_ms=250", "--json"])
        let id = sub.json["id"] as? String ?? ""
        // Past the graph stage, into the iterations (each partition holds cached in-edges by then).
        try waitUntil("the job is iterating", seconds: 60) {
            (try chorus(["job", "status", id, "--coordinator", a, "--json"]).json["tasks_done"] as? Int ?? 0) >= 8 * 4
        }
        try cluster.restartWorker(1, after: 1.5)
        let w = try chorus(["job", "watch", id, "--coordinator", a, "--json"], timeout: 300)
        #expect(w.status == 0, "\(w.stderr)\n\(cluster.logs())")
        #expect(w.json["state"] as? String == "succeeded")
        #expect(w.json["task_retries"] as? Int ?? 0 >= 1, "\(w.stdout)")
        let disturbed = try Self.sections(cluster, "disturbed")
        _ = try Self.submit(a, ["topics=1"])
        let undisturbed = try Self.sections(cluster, "undisturbed")
        #expect(!disturbed.isEmpty)
        #expect(Self.same(disturbed, undisturbed))
    }

    @Test func badParametersAreRefusedAtSubmit() throws {
        let cluster = try TestCluster(workers: 1, partitions: 4, replication: 1)
        defer { cluster.shutdown() }
        for p in ["damping=1.5", "damping=0", "tolerance=0", "max_iterations=0", "topics=21", "topic_list=tech,,x",
                  "dampin=0.8", "top_n=5000"] {
            let r = try chorus(["job", "submit", "influence", "--param", p, "--coordinator", cluster.address])
            #expect(r.status == 64, "\(p): \(r.status) \(r.stderr)")
        }
        let bad = try chorus(["influencers", "--n", "0", "--coordinator", cluster.address])
        #expect(bad.status == 64, "\(bad.stderr)")
        let help = try chorus(["influencers", "--help"])
        #expect(help.stdout.contains("PageRank") && help.stdout.contains("--topic"), "\(help.stdout)")
        let empty = try chorus(["job", "submit", "influence", "--wait", "--json", "--coordinator", cluster.address])
        #expect(empty.status == 1 && (empty.stdout + empty.stderr).contains("ingest users and follows"),
                "\(empty.stdout)\(empty.stderr)")
    }
}
