import Foundation
import Testing

/// The `propensity` job kind on real processes: planted drivers recovered, the same model from 1 and 3 workers,
/// no look-ahead (a planted leak changes nothing it must not see), a worker killed mid-job, bad parameters
/// refused at submit, and scikit-learn on the same design matrix.
@Suite(.serialized) struct PropensityTests {
    /// `chorus generate --segments 6` into DIR/gen, then one ingest.
    static func ingestSegmented(_ cluster: TestCluster, users: Int, seed: Int) throws -> String {
        let gen = cluster.dir + "/gen"
        let g = try chorus(["generate", "--users", String(users), "--seed", String(seed), "--segments", "6", "--out", gen])
        guard g.status == 0 else { throw HarnessError("generate failed: \(g.stderr)") }
        let files = ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl"].map { gen + "/" + $0 }
        let r = try chorus(["ingest", "--coordinator", cluster.address, "--json"] + files, timeout: 300)
        guard r.status == 0 else { throw HarnessError("ingest failed (\(r.status)): \(r.stderr)") }
        return gen
    }

    static func submit(_ cluster: TestCluster, _ params: [String] = [], timeout: Double = 600) throws -> [String: Any] {
        let r = try chorus(["job", "submit", "propensity", "--wait", "--json", "--coordinator", cluster.address]
                           + params.flatMap { ["--param", $0] }, timeout: timeout)
        #expect(r.status == 0, "\(r.stderr)\n\(cluster.logs())")
        return r.json
    }

    static func summary(_ job: [String: Any]) -> [String: Any] { job["summary"] as? [String: Any] ?? [:] }

    static func coefficients(_ s: [String: Any]) -> [String: Double] {
        var out: [String: Double] = [:]
        for c in s["coefficients"] as? [[String: Any]] ?? [] {
            out[c["feature"] as? String ?? ""] = (c["coefficient"] as? NSNumber)?.doubleValue
        }
        return out
    }

    /// The design matrix rows of the last run, by slice: "user_id,label,z..." lines.
    static func design(_ cluster: TestCluster) throws -> [String: [String]] {
        let out = cluster.dir + "/design-\(UUID().uuidString).csv"
        let r = try chorus(["propensity", "features", "--out", out, "--coordinator", cluster.address])
        #expect(r.status == 0, "\(r.stderr)")
        var bySlice: [String: [String]] = [:]
        for line in try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").dropFirst() {
            // user_id,slice,label,z... → "user_id,label,z..." under the slice
            let parts = line.split(separator: ",", maxSplits: 2).map(String.init)
            bySlice[parts[1], default: []].append(parts[0] + "," + parts[2])
        }
        return bySlice.mapValues { $0.sorted() }
    }

    func runJob(workers: Int, users: Int, seed: Int) throws -> (summary: [String: Any], top: [String: Any], profile: [String: Any],
                                                              empty: [String: Any], drivers: String) {
        let cluster = try TestCluster(workers: workers, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let gen = try Self.ingestSegmented(cluster, users: users, seed: seed)
        // A user record without any interaction: too little data to score.
        let extra = cluster.dir + "/users-extra.jsonl"
        try #"{"user_id":"u-new","channel":"x","country":"DE"}"#.write(toFile: extra, atomically: true, encoding: .utf8)
        #expect(try chorus(["ingest", "--coordinator", cluster.address, extra]).status == 0)
        let job = try Self.submit(cluster)
        #expect(job["state"] as? String == "succeeded")
        let a = cluster.address
        let top = try chorus(["propensity", "top", "--n", "20", "--json", "--coordinator", a]).json
        let text = try chorus(["propensity", "top", "--n", "3", "--coordinator", a])
        #expect(text.status == 0 && text.stdout.contains("rank") && text.stdout.contains("%"), "\(text.stdout)")
        let first = (top["users"] as? [[String: Any]])?.first?["user_id"] as? String ?? ""
        let profile = try chorus(["profile", "get", first, "--json", "--coordinator", a]).json
        let empty = try chorus(["profile", "get", "u-new", "--json", "--coordinator", a]).json
        // The planted drivers, read before the cluster (and its directory) goes.
        let drivers = try String(contentsOfFile: gen + "/truth/conversion_drivers.csv", encoding: .utf8)
        return (Self.summary(job), top, profile, empty, drivers)
    }

    @Test func plantedDriversHaveTheRightSignAndOneAndThreeWorkersGiveTheSameModel() throws {
        let one = try runJob(workers: 1, users: 6000, seed: 8)
        let three = try runJob(workers: 3, users: 6000, seed: 8)
        // The planted drivers (truth/conversion_drivers.csv) come out with their sign.
        let w = Self.coefficients(one.summary)
        var checked = 0
        for line in one.drivers.split(separator: "\n").dropFirst() {
            let parts = line.split(separator: ",").map(String.init)
            let coef = try #require(w[parts[0]], "no coefficient for planted driver \(parts[0]) in \(w)")
            #expect(parts[1] == "+" ? coef > 0 : coef < 0, "\(parts[0]) planted \(parts[1]), fitted \(coef)")
            checked += 1
        }
        #expect(checked == 3)
        let test = one.summary["test"] as? [String: Any] ?? [:]
        let auc = (test["auc"] as? NSNumber)?.doubleValue ?? 0
        #expect(auc > 0.6, "held-out AUC \(auc)")
        #expect(((test["lift_top_decile"] as? NSNumber)?.doubleValue ?? 0) > 1.5)
        #expect(((test["ece"] as? NSNumber)?.doubleValue ?? 1) < 0.05)
        #expect((one.summary["drivers"] as? [String] ?? []).contains { $0.hasPrefix("users who ") && $0.contains("per s.d. of") })
        // 1 and 3 workers: the same sums in partition order, so the same model, metrics and scores, bit for bit.
        #expect(NSDictionary(dictionary: JobKindsTests.untimed(one.summary) as? [String: Any] ?? [:])
            .isEqual(to: JobKindsTests.untimed(three.summary) as? [String: Any] ?? [:]), "\(one.summary)\n\(three.summary)")
        #expect(NSDictionary(dictionary: one.top["users"].map { ["u": $0] } ?? [:]).isEqual(to: three.top["users"].map { ["u": $0] } ?? [:]))
        // The top user's profile section, and a user with no data.
        let p = one.profile["propensity"] as? [String: Any] ?? [:]
        #expect(p["state"] as? String == "scored" && p["decile"] as? Int == 1, "\(one.profile)")
        let prob = (p["probability"] as? NSNumber)?.doubleValue ?? -1
        #expect(prob > 0 && prob < 1)
        #expect(!(p["reasons"] as? [String] ?? []).isEmpty)
        #expect((one.profile["produced_by"] as? [String: String])?["propensity"] != nil)
        let e = one.empty["propensity"] as? [String: Any] ?? [:]
        #expect(e["state"] as? String == "insufficient_data" && e["probability"] == nil, "\(one.empty)")
        #expect(NSDictionary(dictionary: one.profile["propensity"] as? [String: Any] ?? [:])
            .isEqual(to: three.profile["propensity"] as? [String: Any] ?? [:]))
    }

    /// Events after a cutoff never reach that cutoff's features: conversions in the held-out window get a burst of
    /// shares just before them (a feature that would be perfectly predictive if it leaked). The training and test
    /// rows, the model and the held-out metrics stay exactly the same; only the scoring rows (features as of the
    /// end of the data, which legitimately see the burst) change.
    @Test func aPlantedLeakAfterTheCutoffChangesNothingTheModelSees() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        _ = try Self.ingestSegmented(cluster, users: 1500, seed: 21)
        let before = Self.summary(try Self.submit(cluster, ["export_features=true"]))
        let rowsBefore = try Self.design(cluster)
        let test = before["test"] as? [String: Any] ?? [:]
        let cutoff = try #require(ISO8601DateFormatter().date(from: test["cutoff"] as? String ?? ""))
        let converters = (rowsBefore["test"] ?? []).map { $0.split(separator: ",") }.filter { $0[1] == "1" }.map { String($0[0]) }
        #expect(converters.count >= 20, "\(converters.count) converters in the test window")
        var lines: [String] = []
        let iso = ISO8601DateFormatter()
        for (i, u) in converters.enumerated() {
            for k in 0..<5 {
                let ts = iso.string(from: cutoff.addingTimeInterval(3600 + Double(k)))
                lines.append(#"{"interaction_id":"leak-\#(i)-\#(k)","user_id":"\#(u)","content_id":"c0000001","type":"share","channel":"x","ts":"\#(ts)"}"#)
            }
        }
        let leak = cluster.dir + "/interactions-leak.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: leak, atomically: true, encoding: .utf8)
        let ing = try chorus(["ingest", "--coordinator", cluster.address, "--json", leak])
        #expect(ing.status == 0 && ing.json["stored"] as? Int == lines.count, "\(ing.stdout)\(ing.stderr)")
        let after = Self.summary(try Self.submit(cluster, ["export_features=true"]))
        let rowsAfter = try Self.design(cluster)
        for slice in ["fit", "dev", "calibration", "test"] {
            #expect(rowsBefore[slice] == rowsAfter[slice], "the \(slice) rows changed: a feature saw events after its cutoff")
        }
        #expect(Self.coefficients(before) == Self.coefficients(after))
        #expect(NSDictionary(dictionary: test).isEqual(to: after["test"] as? [String: Any] ?? [:]), "\(test)\n\(after["test"] ?? "")")
        // The burst is in the data and visible after its time: the scoring rows of those users did change.
        let changed = Set(rowsAfter["score"] ?? []).subtracting(rowsBefore["score"] ?? [])
        #expect(changed.count >= converters.count, "\(changed.count) scoring rows changed for \(converters.count) leaked users")
    }

    /// A worker killed with kill -9 in the middle of the job: its partitions' tasks run again on the replicas, and
    /// the result equals an undisturbed run on the same data.
    @Test func aWorkerKilledMidJobLeavesTheSameResult() throws {
        let cluster = try TestCluster(workers: 3, partitions: 8, replication: 2)
        defer { cluster.shutdown() }
        _ = try Self.ingestSegmented(cluster, users: 1500, seed: 5)
        let a = cluster.address
        let reference = Self.summary(try Self.submit(cluster, ["lambdas=0.01"]))
        let refTop = try chorus(["propensity", "top", "--n", "200", "--json", "--coordinator", a]).json["users"]
        let sub = try chorus(["job", "submit", "propensity", "--param", "lambdas=0.01", "--param", "debug_task_delay_ms=60",
                              "--json", "--coordinator", a])
        let id = try #require(sub.json["id"] as? String, "\(sub.stderr)")
        try waitUntil("the job is fitting", seconds: 60) {
            (try chorus(["job", "status", id, "--coordinator", a, "--json"]).json["stage"] as? String ?? "").hasPrefix("pr-eval-")
        }
        try cluster.restartWorker(1, after: 1.5)
        let w = try chorus(["job", "watch", id, "--coordinator", a, "--json"], timeout: 600)
        #expect(w.status == 0, "\(w.stderr)\n\(cluster.logs())")
        #expect(w.json["state"] as? String == "succeeded")
        #expect(w.json["task_retries"] as? Int ?? 0 >= 1, "\(w.json)")
        let got = Self.summary(w.json)
        #expect(NSDictionary(dictionary: JobKindsTests.untimed(reference) as? [String: Any] ?? [:])
            .isEqual(to: JobKindsTests.untimed(got) as? [String: Any] ?? [:]), "\(reference)\n\(got)")
        let top = try chorus(["propensity", "top", "--n", "200", "--json", "--coordinator", a]).json["users"]
        #expect(NSDictionary(dictionary: ["u": refTop ?? []]).isEqual(to: ["u": top ?? []]))
    }

    @Test func badParametersAreRefusedAtSubmit() throws {
        let cluster = try TestCluster(workers: 1, partitions: 4, replication: 1)
        defer { cluster.shutdown() }
        for (param, says) in [("horizon_days=0", "horizon_days"), ("lambdas=abc", "lambdas"), ("lambdas=-1", "lambdas"),
                              ("lambdas=1,2,3,4,5,6,7,8,9", "1 to 8 values"), ("top=0", "top"),
                              ("export_features=yes", "export_features"), ("cutoff=someday", "cutoff"),
                              ("cutoff=99999999999999999", "cutoff"),
                              ("horizon_day=7", "did you mean")] {
            let r = try chorus(["job", "submit", "propensity", "--param", param, "--coordinator", cluster.address])
            #expect(r.status == 64, "\(param): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(says), "\(param): \(r.stderr)")
        }
        let list = try chorus(["job", "list", "--json", "--coordinator", cluster.address]).json["jobs"] as? [Any] ?? []
        #expect(list.isEmpty, "a refused submit created a job: \(list)")
        // With nothing ingested the job fails with a reason, and `propensity top` says what to run.
        let none = try chorus(["propensity", "top", "--coordinator", cluster.address])
        #expect(none.status == 66 && none.stderr.contains("chorus job submit propensity"), "\(none.stderr)")
        let empty = try chorus(["job", "submit", "propensity", "--wait", "--coordinator", cluster.address])
        #expect(empty.status == 1 && empty.stdout.contains("ingest interactions"), "\(empty.stdout)\(empty.stderr)")
        let help = try chorus(["propensity", "top", "--help"])
        #expect(help.stdout.contains("--segment") && help.stdout.contains("insufficient data"), "\(help.stdout)")
    }

    /// The peer virtualenv's python with scikit-learn (scripts/peers.sh installs it when PyPI is reachable).
    static var sklearnPython: String? { PeersVenv.sklearn }

    /// scikit-learn's LogisticRegression on exactly the exported design matrix, with the same L2 (C = 1/(n·λ)).
    /// Skipped when scikit-learn cannot be installed (scripts/peers.sh needs PyPI).
    @Test(.enabled(if: PropensityTests.sklearnPython != nil,
                   "scikit-learn could not be installed into .cache/peers/venv (scripts/peers.sh sklearn needs PyPI)"))
    func scikitLearnOnTheSameMatrixAgrees() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        _ = try Self.ingestSegmented(cluster, users: 3000, seed: 9)
        let job = try chorus(["job", "submit", "propensity", "--param", "export_features=true", "--wait", "--json",
                              "--coordinator", cluster.address], timeout: 600)
        #expect(job.status == 0, "\(job.stderr)")
        let jobPath = cluster.dir + "/job.json", design = cluster.dir + "/design.csv"
        try job.stdout.write(toFile: jobPath, atomically: true, encoding: .utf8)
        #expect(try chorus(["propensity", "features", "--out", design, "--coordinator", cluster.address]).status == 0)
        let r = try run(try #require(Self.sklearnPython), [Binary.root + "/bench/propensity_sklearn.py", design, jobPath, "--json"],
                        timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        let o = r.json
        let diff = (o["auc_difference"] as? NSNumber)?.doubleValue ?? 1
        let corr = (o["coefficient_correlation"] as? NSNumber)?.doubleValue ?? 0
        #expect(diff <= 0.005, "\(r.stdout)")
        #expect(corr >= 0.99, "\(r.stdout)")
        // The job's own reported AUC is the one sklearn is compared with.
        let reported = (o["auc_chorus_reported"] as? NSNumber)?.doubleValue ?? 0
        #expect(abs(reported - ((o["auc_chorus"] as? NSNumber)?.doubleValue ?? 0)) < 1e-9)
    }
}
