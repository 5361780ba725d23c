import Foundation
import Testing

/// The distributed `als` job, end to end on real processes.
@Suite(.serialized) struct ALSJobTests {
    static let params = ["--param", "mode=implicit", "--param", "rank=8", "--param", "iterations=6",
                         "--param", "lambda=0.1", "--param", "alpha=10", "--param", "seed=7"]

    /// Runs the job on a fresh cluster of `workers` workers loaded with the same synthetic data; returns the
    /// job's summary and the embeddings of `users`.
    func run(workers: Int, gen: String, users: [String]) throws -> ([String: Any], [String: [Double]]) {
        let cluster = try TestCluster(workers: workers, partitions: 8)
        defer { cluster.shutdown() }
        let a = cluster.address
        let files = ["users.jsonl", "content.jsonl", "interactions.jsonl"].map { gen + "/" + $0 }
        #expect(try chorus(["ingest", "--coordinator", a, "--json"] + files).status == 0)
        let job = try chorus(["job", "submit", "als", "--coordinator", a, "--wait", "--json"] + Self.params, timeout: 300)
        #expect(job.json["state"] as? String == "succeeded", "\(job.stderr)\n\(cluster.logs())")
        var emb: [String: [Double]] = [:]
        for u in users {
            let p = try chorus(["profile", "get", u, "--coordinator", a, "--json"])
            emb[u] = p.json["embedding"] as? [Double]
        }
        // Recommendations leave out what the user already interacted with.
        let seen = try seenItems(gen: gen, user: users[0])
        #expect(!seen.isEmpty)
        // The job stored each user's top 10 with the profile.
        #expect(job.json["summary"].flatMap { ($0 as? [String: Any])?["recommendations_stored"] as? Int } ?? 0 > 0)
        let prof = try chorus(["profile", "get", users[0], "--coordinator", a, "--json"])
        let stored = (prof.json["recommendations"] as? [[String: Any]] ?? []).compactMap { $0["content_id"] as? String }
        #expect(stored.count == 10 && seen.isDisjoint(with: stored), "\(stored) vs seen \(seen.count)")
        let rec = try chorus(["recommend", users[0], "--n", "10", "--coordinator", a, "--json"])
        #expect(rec.status == 0 && rec.json["status"] as? String == "ok", "\(rec.stdout) \(rec.stderr)")
        let recItems = (rec.json["items"] as? [[String: Any]] ?? []).compactMap { $0["content_id"] as? String }
        #expect(recItems.count == 10 && seen.isDisjoint(with: recItems), "\(recItems) vs seen \(seen.count)")
        #expect((rec.json["items"] as? [[String: Any]] ?? []).allSatisfy { ($0["score"] as? Double)?.isFinite == true })
        let sim = try chorus(["similar", recItems.first ?? "", "--n", "5", "--coordinator", a, "--json"])
        let simItems = (sim.json["items"] as? [[String: Any]] ?? []).compactMap { $0["content_id"] as? String }
        #expect(simItems.count == 5 && !simItems.contains(recItems.first ?? ""), "\(sim.stdout)")
        // A user who arrives after training has no factors yet: a clear answer, never NaN.
        let late = cluster.dir + "/users-late.jsonl"
        FileManager.default.createFile(atPath: late, contents: Data(#"{"user_id":"late-user","channel":"x"}"#.utf8))
        #expect(try chorus(["ingest", "--coordinator", a, late]).status == 0)
        _ = try chorus(["job", "submit", "features", "--coordinator", a, "--wait"], timeout: 120)
        let cold = try chorus(["profile", "get", "late-user", "--coordinator", a, "--json"])
        #expect(cold.status == 0 && cold.json["embedding"] is NSNull, "\(cold.stdout)")
        #expect((cold.json["embedding_status"] as? String ?? "").contains("no factors yet"))
        let coldRec = try chorus(["recommend", "late-user", "--n", "3", "--coordinator", a, "--json"])
        #expect(coldRec.json["status"] as? String == "no_factors_yet", "\(coldRec.stdout)")
        #expect((coldRec.json["message"] as? String ?? "").contains("no factors yet"))
        #expect((coldRec.json["items"] as? [[String: Any]] ?? []).count == 3)
        return (job.json["summary"] as? [String: Any] ?? [:], emb)
    }

    func seenItems(gen: String, user: String) throws -> Set<String> {
        var out = Set<String>()
        for line in try String(contentsOfFile: gen + "/interactions.jsonl", encoding: .utf8).split(separator: "\n")
        where line.contains("\"user_id\":\"\(user)\"") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            if let c = obj["content_id"] as? String { out.insert(c) }
        }
        return out
    }

    @Test func oneAndThreeWorkersGiveTheSameFactorsAndBeatPopularity() throws {
        let gen = NSTemporaryDirectory() + "chorus-als-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: gen) }
        #expect(try chorus(["generate", "--users", "300", "--seed", "4", "--out", gen]).status == 0)
        let users = ["u0000001", "u0000042", "u0000123", "u0000299"]
        let (s1, e1) = try run(workers: 1, gen: gen, users: users)
        let (s3, e3) = try run(workers: 3, gen: gen, users: users)
        // Every row solve sees the same inputs in the same order on any number of workers, so the factors are
        // identical; the documented tolerance is 1e-5 per component.
        for u in users {
            let a = e1[u] ?? [], b = e3[u] ?? []
            #expect(a.count == 8 && a.count == b.count, "\(u): \(a.count) vs \(b.count)")
            #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 }, "\(u): \(a) vs \(b)")
            #expect(a.allSatisfy { $0.isFinite })
        }
        for key in ["precision_at_k", "ndcg_at_k", "observations", "held_out"] {
            let a = s1[key] as? Double ?? -1, b = s3[key] as? Double ?? -2
            #expect(abs(a - b) <= 1e-12, "\(key): \(a) vs \(b)")
        }
        // The generator's hidden tastes are learnable: ALS beats the popularity baseline.
        let base = s3["baseline"] as? [String: Any] ?? [:]
        let p = s3["precision_at_k"] as? Double ?? 0, bp = base["precision_at_k"] as? Double ?? 1
        #expect(p > bp, "ALS P@10 \(p) vs popularity \(bp)")
    }

    /// Elastic events during ALS: a worker is killed (kill -9) in the middle of the iterations and restarted on its
    /// data dir. Its tasks are retried, the restarted worker reloads its partitions' rows and receives the stage's
    /// broadcast again, and the job ends with the same factors as an undisturbed run.
    @Test func aWorkerKilledMidJobLeavesTheFactorsUnchanged() throws {
        let gen = NSTemporaryDirectory() + "chorus-als-fault-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: gen) }
        #expect(try chorus(["generate", "--users", "150", "--seed", "5", "--out", gen]).status == 0)
        let files = ["users.jsonl", "content.jsonl", "interactions.jsonl"].map { gen + "/" + $0 }
        let users = ["u0000003", "u0000077", "u0000140"]
        let params = ["--param", "mode=implicit", "--param", "rank=6", "--param", "iterations=8", "--param", "seed=9",
                      "--param", "solver=cholesky"]
        func embeddings(_ a: String) throws -> [String: [Double]] {
            var out: [String: [Double]] = [:]
            for u in users { out[u] = try chorus(["profile", "get", u, "--coordinator", a, "--json"]).json["embedding"] as? [Double] }
            return out
        }
        let reference: [String: [Double]]
        do {
            let cluster = try TestCluster(workers: 2, partitions: 8, replication: 2)
            defer { cluster.shutdown() }
            #expect(try chorus(["ingest", "--coordinator", cluster.address] + files).status == 0)
            let job = try chorus(["job", "submit", "als", "--coordinator", cluster.address, "--wait", "--json"] + params,
                                 timeout: 300)
            #expect(job.json["state"] as? String == "succeeded", "\(job.stderr)")
            reference = try embeddings(cluster.address)
        }
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 2)
        defer { cluster.shutdown() }
        let a = cluster.address
        #expect(try chorus(["ingest", "--coordinator", a] + files).status == 0)
        let sub = try chorus(["job", "submit", "als", "--coordinator", a, "--json", "--param", "debug_task_delay_ms=120"]
                             + params)
        let id = sub.json["id"] as? String ?? ""
        try waitUntil("the iterations started", seconds: 60) {
            (try chorus(["job", "status", id, "--coordinator", a, "--json"]).json["tasks_done"] as? Int ?? 0) >= 30
        }
        try cluster.restartWorker(2, after: 1.0)
        let w = try chorus(["job", "watch", id, "--coordinator", a, "--json"], timeout: 300)
        #expect(w.status == 0 && w.json["state"] as? String == "succeeded", "\(w.stderr)\n\(cluster.logs())")
        #expect(w.json["task_retries"] as? Int ?? 0 >= 1)
        let got = try embeddings(a)
        for u in users {
            let x = got[u] ?? [], y = reference[u] ?? []
            #expect(x.count == 6 && x.count == y.count, "\(u): \(x.count) vs \(y.count)")
            #expect(zip(x, y).allSatisfy { abs($0 - $1) <= 1e-5 }, "\(u): \(x) vs \(y)")
        }
    }

    @Test func badParametersAreRefusedAtSubmit() throws {
        let cluster = try TestCluster(workers: 1, partitions: 4)
        defer { cluster.shutdown() }
        let r = try chorus(["job", "submit", "als", "--coordinator", cluster.address, "--param", "rank=0"])
        #expect(r.status == 64 && r.stderr.contains("rank"), "\(r.stderr)")
        let m = try chorus(["job", "submit", "als", "--coordinator", cluster.address, "--param", "mode=sideways"])
        #expect(m.status == 64 && m.stderr.contains("mode"), "\(m.stderr)")
        // Huge or fractional counts are refused, not converted (Int(1e300) would trap the coordinator).
        for bad in ["iterations=1e300", "cg_steps=2.5", "store_top_n=-1", "holdout_by=first", "repeats=maybe"] {
            let r = try chorus(["job", "submit", "als", "--coordinator", cluster.address, "--param", bad])
            let key = String(bad.prefix { $0 != "=" })
            #expect(r.status == 64 && r.stderr.contains(key), "\(bad): \(r.stderr)")
        }
        #expect(try chorus(["cluster", "status", "--coordinator", cluster.address]).status == 0)
    }

    @Test(.enabled(if: RealData.hasMovieLens, "MovieLens 100K not fetched: run scripts/fetch-real-data.sh"))
    func movieLensExplicitRatingsReachTheQualityBar() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8)
        defer { cluster.shutdown() }
        let a = cluster.address
        let d = RealData.dir + "/movielens"
        let ing = try chorus(["ingest", "--coordinator", a, "--json", "--mapping",
                              Binary.root + "/data/mappings/movielens-100k.json", "--rejects", cluster.dir + "/rej.jsonl",
                              d + "/users-movielens.csv", d + "/content-movies.csv", d + "/interactions-ratings.csv"],
                             timeout: 180)
        #expect(ing.status == 0, "\(ing.stderr)")
        let job = try chorus(["job", "submit", "als", "--coordinator", a, "--wait", "--json",
                              "--param", "mode=explicit", "--param", "rank=20", "--param", "lambda=0.5",
                              "--param", "lambda_exponent=0.75", "--param", "iterations=15", "--param", "seed=42",
                              "--param", "neighbours=30"],
                             timeout: 600)
        #expect(job.json["state"] as? String == "succeeded", "\(job.stderr)")
        let s = job.json["summary"] as? [String: Any] ?? [:]
        let rmse = s["rmse"] as? Double ?? 9
        print("movielens-100k explicit ALS through the cluster: RMSE \(rmse), MAE \(s["mae"] ?? "-"), held out \(s["held_out"] ?? "-")")
        // The quality bar of the test (the benchmark reports the full figures): well under Surprise SVD's 0.934.
        #expect(rmse < 0.92)
        let corrected = s["rmse_with_neighbours"] as? Double ?? 9
        print("movielens-100k with the neighbourhood correction: RMSE \(corrected)")
        #expect(corrected <= 0.91)
        #expect(s["held_out"] as? Int ?? 0 > 15_000)
    }

    /// Real implicit feedback: each user's last Instacart order is held out (holdout_by=last, a per-user hold-out)
    /// and ALS must find its items clearly better than popularity. Groceries are bought again and again, so seen
    /// items may be recommended (repeats=true); the summary also reports the user's own most frequent items.
    @Test(.enabled(if: RealData.hasInstacart, "Instacart sample not fetched: run scripts/fetch-real-data.sh"))
    func instacartLastOrdersBeatPopularity() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8)
        defer { cluster.shutdown() }
        let a = cluster.address
        let ing = try chorus(["ingest", "--coordinator", a, "--json", "--mapping", Binary.root + "/data/mappings/instacart.json",
                              "--rejects", cluster.dir + "/rej.jsonl", RealData.dir + "/instacart/interactions-orders.csv"],
                             timeout: 180)
        #expect(ing.status == 0, "\(ing.stderr)")
        let job = try chorus(["job", "submit", "als", "--coordinator", a, "--wait", "--json",
                              "--param", "mode=implicit", "--param", "rank=32", "--param", "lambda=1",
                              "--param", "alpha=0.125", "--param", "iterations=10", "--param", "seed=1",
                              "--param", "solver=cg", "--param", "holdout_by=last", "--param", "repeats=true"],
                             timeout: 600)
        #expect(job.json["state"] as? String == "succeeded", "\(job.stderr)")
        #expect(job.json["tasks_done"] as? Int == job.json["tasks_total"] as? Int)
        let s = job.json["summary"] as? [String: Any] ?? [:]
        let base = s["baseline"] as? [String: Any] ?? [:], personal = s["personal_baseline"] as? [String: Any] ?? [:]
        let p = s["precision_at_k"] as? Double ?? 0, bp = base["precision_at_k"] as? Double ?? 1
        let n = s["ndcg_at_k"] as? Double ?? 0, bn = base["ndcg_at_k"] as? Double ?? 1
        print("instacart last orders: ALS P@10 \(p), NDCG@10 \(n); popularity \(bp), \(bn); "
              + "personal \(personal["precision_at_k"] ?? "-"), \(personal["ndcg_at_k"] ?? "-"); users \(s["users"] ?? "-")")
        #expect(s["holdout_by"] as? String == "last" && s["repeats"] as? Bool == true)
        // Every one of the 593 users has more than one order, so every user has a held-out last order.
        #expect(s["held_out"] as? Int ?? 0 > 5_000)
        #expect(p >= 1.5 * bp && n >= 1.5 * bn, "ALS \(p)/\(n) vs popularity \(bp)/\(bn)")
        #expect(personal["precision_at_k"] is Double)
    }
}
