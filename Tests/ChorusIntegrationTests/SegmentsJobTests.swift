import ChorusAnalytics
import Foundation
import Testing

/// The `segments` job on real processes: the generator's hidden segments are recovered, a worker killed with
/// kill -9 in the middle changes nothing, 1 and 3 workers give the same segments, and the inertia is that of
/// scikit-learn on the same vectors.
@Suite(.serialized) struct SegmentsJobTests {
    static let asOf = "1759104000"

    /// user → hidden segment, from truth/user_segments.csv.
    func truth(_ dir: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for line in try String(contentsOfFile: dir + "/truth/user_segments.csv", encoding: .utf8).split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",")
            if f.count >= 2, let s = Int(f[1]) { out[String(f[0])] = s }
        }
        return out
    }

    /// Every user's segment section, from `profile export`.
    func sections(_ cluster: TestCluster, _ name: String) throws -> [String: [String: Any]] {
        let out = cluster.dir + "/\(name).jsonl"
        let e = try chorus(["profile", "export", "--coordinator", cluster.address, "--out", out], timeout: 120)
        #expect(e.status == 0, "\(e.stderr)")
        var m: [String: [String: Any]] = [:]
        for line in try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            if let id = o["user_id"] as? String, let s = o["segment"] as? [String: Any] { m[id] = s }
        }
        return m
    }

    func assignments(_ s: [String: [String: Any]]) -> [String: Int] {
        s.compactMapValues { $0["state"] as? String == "assigned" ? $0["segment"] as? Int : nil }
    }

    /// The stored table without the job id, as canonical JSON.
    func table(_ a: String) throws -> String {
        let r = try chorus(["segments", "list", "--json", "--coordinator", a])
        #expect(r.status == 0, "\(r.stderr)")
        var t = r.json
        t["job_id"] = nil
        return String(decoding: try JSONSerialization.data(withJSONObject: t, options: [.sortedKeys]), as: UTF8.self)
    }

    func submit(_ a: String, _ params: [String], wait: Bool = true) throws -> Result {
        var args = ["job", "submit", "segments", "--json", "--coordinator", a]
        for p in params { args += ["--param", p] }
        return try chorus(args + (wait ? ["--wait"] : []), timeout: 300)
    }

    @Test func plantedSegmentsAreRecoveredAndAKilledWorkerChangesNothing() throws {
        let cluster = try TestCluster(workers: 3, partitions: 8, replication: 2)
        defer { cluster.shutdown() }
        let a = cluster.address
        let g = try cluster.ingestGenerated(users: 1500, seed: 8, segments: 6)
        let f = try chorus(["job", "submit", "features", "--as-of", Self.asOf, "--wait", "--json", "--coordinator", a], timeout: 300)
        #expect(f.status == 0, "\(f.stderr)")

        // Bad parameters are refused at submit.
        for bad in ["k=1", "features=behaviour,colour", "n_init=0", "k=51", "tolerance=-1"] {
            let r = try submit(a, [bad], wait: false)
            #expect(r.status == 64, "\(bad): \(r.status) \(r.stderr)")
        }
        #expect(try chorus(["segments", "list", "--coordinator", a]).status == 66)  // none yet: not found

        // k chosen by silhouette finds the 6 hidden segments.
        let params = ["sample_size=400", "store_vectors=true", "seed=3"]
        let first = try submit(a, params)
        #expect(first.status == 0, "\(first.stderr)\n\(cluster.logs())")
        let summary = first.json["summary"] as? [String: Any] ?? [:]
        #expect(summary["k"] as? Int == 6, "\(summary)")
        #expect((summary["silhouette"] as? [Any])?.count == 11)
        let s1 = try sections(cluster, "run1")
        let a1 = assignments(s1)
        let t = try truth(g.dir)
        let ids = a1.keys.filter { t[$0] != nil }.sorted()
        #expect(ids.count > 1400)
        let ari = KMeans.adjustedRandIndex(ids.map { t[$0]! }, ids.map { a1[$0]! })
        #expect(ari >= 0.8, "adjusted Rand index \(ari)")
        // Users below min_interactions have an explicit state, never a NaN.
        #expect(s1.values.allSatisfy { ["assigned", "insufficient_data"].contains($0["state"] as? String ?? "") })
        let table1 = try table(a)
        let show = try chorus(["segments", "show", "0", "--coordinator", a])
        #expect(show.status == 0 && show.stdout.contains("effect size"), "\(show.stdout)\(show.stderr)")
        let p = try chorus(["profile", "get", ids[0], "--json", "--coordinator", a]).json
        #expect((p["segment"] as? [String: Any])?["segment"] as? Int == a1[ids[0]])
        #expect((p["produced_by"] as? [String: String])?["segment"] == first.json["id"] as? String)

        // The same inertia as scikit-learn's KMeans (n_init 4) on exactly these vectors, within 1%.
        if let py = PeersVenv.sklearn {
            let sk = try run(py, [Binary.root + "/bench/segments_sklearn.py", cluster.dir + "/run1.jsonl", "6", "4"], timeout: 300)
            #expect(sk.status == 0, "\(sk.stderr)")
            let theirs = sk.json["inertia"] as? Double ?? 0
            let ours = summary["inertia"] as? Double ?? 0
            #expect(theirs > 0 && ours <= theirs * 1.01, "inertia \(ours) against scikit-learn's \(theirs)")
            print("segments: inertia \(ours), scikit-learn \(theirs) (ratio \(ours / max(theirs, 1e-9)))")
        } else {
            print("segments: scikit-learn comparison skipped: scripts/peers.sh sklearn failed (PyPI not reachable)")
        }

        // The same job again, slowed down, with a worker killed with kill -9 during its Lloyd stages: the result
        // is the undisturbed one (and the ids match the previous run's).
        let slow = try submit(a, params + ["debug_task_delay_ms=150"], wait: false)
        #expect(slow.status == 0, "\(slow.stderr)")
        let id = slow.json["id"] as? String ?? ""
        try waitUntil("the job in its Lloyd stages", seconds: 120) {
            (try chorus(["job", "status", id, "--json", "--coordinator", a]).json["stage"] as? String ?? "").hasPrefix("lloyd")
        }
        cluster.workers[2].kill9()
        let w = try chorus(["job", "watch", id, "--json", "--coordinator", a], timeout: 300)
        #expect(w.json["state"] as? String == "succeeded", "\(w.stdout)\(w.stderr)\n\(cluster.logs())")
        #expect(assignments(try sections(cluster, "run2")) == a1)
        #expect(try table(a) == table1)
    }

    @Test func oneAndThreeWorkersGiveTheSameSegments() throws {
        var tables: [String] = []
        var inertias: [[Double]] = []
        for workers in [1, 3] {
            let cluster = try TestCluster(workers: workers, partitions: 8, replication: 1)
            defer { cluster.shutdown() }
            let a = cluster.address
            try cluster.ingestGenerated(users: 600, seed: 4, segments: 4)
            let f = try chorus(["job", "submit", "features", "--as-of", Self.asOf, "--wait", "--json", "--coordinator", a], timeout: 300)
            #expect(f.status == 0, "\(f.stderr)")
            let r = try submit(a, ["k=4", "sample_size=150", "seed=11"])
            #expect(r.status == 0, "\(r.stderr)")
            inertias.append((r.json["summary"] as? [String: Any])?["inertia_by_iteration"] as? [Double] ?? [])
            tables.append(try table(a))
        }
        #expect(!inertias[0].isEmpty && inertias[0] == inertias[1], "\(inertias)")
        #expect(tables[0] == tables[1])
    }
}
