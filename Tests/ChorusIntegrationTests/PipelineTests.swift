import Foundation
import Testing

/// Job dependencies and pipelines (issue 12, section 5; docs/pipelines.md) on real processes.
@Suite(.serialized) struct PipelineTests {
    func write(_ cluster: TestCluster, _ name: String, _ text: String) throws -> String {
        let path = cluster.dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func steps(_ pipeline: [String: Any]) -> [String: [String: Any]] {
        Dictionary((pipeline["steps"] as? [[String: Any]] ?? []).map { ($0["name"] as? String ?? "?", $0) },
                   uniquingKeysWith: { a, _ in a })
    }

    func ms(_ step: [String: Any]?, _ key: String) -> Int { step?[key] as? Int ?? -1 }

    func status(_ id: String, _ a: String) throws -> [String: Any] {
        try chorus(["pipeline", "status", id, "--coordinator", a, "--json"]).json
    }

    @Test func stepsRunInDependencyOrderAndAfterIsChecked() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address
        try cluster.ingestGenerated(users: 200, seed: 5)
        // `report` is written first and depends on two steps; `side` runs beside `als`.
        let file = try write(cluster, "order.yaml", """
        name: order
        steps:
          - {name: report, kind: features, after: [als, profiles]}
          - name: profiles
            kind: features
            params:
              debug_task_delay_ms: 50
          - name: als
            kind: als
            after: profiles
            params: {mode: implicit, rank: 4, iterations: 2}
          - {name: side, kind: features, after: [profiles]}
        """)
        let r = try chorus(["pipeline", "run", file, "--wait", "--json", "--coordinator", a], timeout: 240)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)\n\(cluster.logs())")
        let p = r.json
        #expect(p["state"] as? String == "succeeded" && p["name"] as? String == "order", "\(p)")
        let s = steps(p)
        #expect(s.values.allSatisfy { $0["state"] as? String == "succeeded" }, "\(s)")
        #expect((p["steps"] as? [[String: Any]])?.map { $0["name"] as? String } == ["report", "profiles", "als", "side"])
        let (profiles, als, side, report) = (s["profiles"], s["als"], s["side"], s["report"])
        #expect(ms(profiles, "finished_at_ms") > 0)
        #expect(ms(als, "started_at_ms") >= ms(profiles, "finished_at_ms"), "\(s)")
        #expect(ms(side, "started_at_ms") >= ms(profiles, "finished_at_ms"), "\(s)")
        #expect(ms(report, "started_at_ms") >= ms(als, "finished_at_ms"), "\(s)")
        // Jobs are created dependencies first.
        #expect(profiles?["job"] as? String == "job-000001", "\(s)")
        let reportJob = report?["job"] as? String ?? "?"
        let id = p["id"] as? String ?? "?"
        #expect(id == "pipe-000001")

        // The table, the job's own view and the list.
        let table = try chorus(["pipeline", "status", id, "--coordinator", a])
        #expect(table.status == 0)
        #expect(table.stdout.contains("pipe-000001  order  succeeded  4/4 steps succeeded"), "\(table.stdout)")
        #expect(table.stdout.contains("STEP") && table.stdout.contains("PROGRESS") && table.stdout.contains(reportJob),
                "\(table.stdout)")
        let job = try chorus(["job", "status", reportJob, "--coordinator", a])
        // In the order of the step's `after`.
        let deps = [als?["job"] as? String ?? "?", profiles?["job"] as? String ?? "?"]
        #expect(job.stdout.contains("after: \(deps.joined(separator: ", "))"), "\(job.stdout)")
        #expect(job.stdout.contains("pipeline: \(id) (step report)"), "\(job.stdout)")
        let list = try chorus(["pipeline", "list", "--coordinator", a])
        #expect(list.stdout.contains("pipe-000001  order  succeeded"), "\(list.stdout)")

        // --after: an unknown id is a usage error and creates nothing; known ids are kept and shown.
        let before = try chorus(["job", "list", "--coordinator", a, "--json"]).json["jobs"] as? [Any] ?? []
        let unknown = try chorus(["job", "submit", "features", "--after", "job-000001,job-999999", "--coordinator", a])
        #expect(unknown.status == 64, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("no job 'job-999999' to run after"), "\(unknown.stderr)")
        let after = try chorus(["job", "submit", "features", "--after", deps[0], "--after", deps[1],
                                "--wait", "--json", "--coordinator", a], timeout: 120)
        #expect(after.status == 0, "\(after.stderr)")
        #expect(after.json["after"] as? [String] == deps, "\(after.stdout)")
        // A bad step creates no job either (64 for a parameter, 65 for the graph, 66 for no file).
        let bad = try write(cluster, "bad.json", #"{"steps": [{"name": "a", "kind": "features"},"#
                            + #" {"name": "b", "kind": "als", "after": ["a"], "params": {"rank": "4"}}]}"#)
        let refused = try chorus(["pipeline", "run", bad, "--coordinator", a])
        #expect(refused.status == 64 && refused.stderr.contains("step 'b'"), "\(refused.stderr)")
        let cycle = try write(cluster, "cycle.yaml", "steps:\n  - {name: a, kind: features, after: b}\n"
                              + "  - {name: b, kind: features, after: a}\n")
        let cyc = try chorus(["pipeline", "run", cycle, "--coordinator", a])
        #expect(cyc.status == 65 && cyc.stderr.contains("cycle.yaml: the steps' `after` form a cycle: a -> b -> a"),
                "\(cyc.stderr)")
        #expect(try chorus(["pipeline", "run", cluster.dir + "/nosuch.yaml", "--coordinator", a]).status == 66)
        #expect(try chorus(["pipeline", "status", "pipe-999999", "--coordinator", a]).status == 66)
        let afterAll = try chorus(["job", "list", "--coordinator", a, "--json"]).json["jobs"] as? [Any] ?? []
        #expect(afterAll.count == before.count + 1)
    }

    @Test func aFailedStepFailsItsDependentsTransitivelyAndACancelCancelsThem() throws {
        let cluster = try TestCluster(workers: 1, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address
        // Interactions without ratings: explicit ALS fails at run time.
        try cluster.ingestGenerated(users: 200, seed: 3)
        let file = try write(cluster, "fail.yaml", """
        steps:
          - {name: profiles, kind: features}
          - {name: ratings, kind: als, after: profiles, params: {mode: explicit, rank: 4, iterations: 2}}
          - {name: report, kind: features, after: ratings}
          - {name: final, kind: features, after: [report, profiles]}
          - {name: side, kind: features, after: profiles}
        """)
        let r = try chorus(["pipeline", "run", file, "--wait", "--coordinator", a], timeout: 240)
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("fail  failed"), "\(r.stdout)")
        let s = steps(try status("pipe-000001", a))
        #expect(s["profiles"]?["state"] as? String == "succeeded")
        #expect(s["side"]?["state"] as? String == "succeeded")
        #expect(s["ratings"]?["state"] as? String == "failed")
        #expect((s["ratings"]?["error"] as? String ?? "").contains("mode=implicit"), "\(s)")
        let ratingsJob = s["ratings"]?["job"] as? String ?? "?"
        let reportJob = s["report"]?["job"] as? String ?? "?"
        #expect(s["report"]?["state"] as? String == "failed")
        #expect((s["report"]?["error"] as? String ?? "").hasPrefix("dependency \(ratingsJob) (step ratings) failed: "),
                "\(s)")
        #expect(s["final"]?["state"] as? String == "failed")
        #expect((s["final"]?["error"] as? String ?? "").hasPrefix("dependency \(reportJob) (step report) failed: "
                                                                   + "dependency \(ratingsJob) (step ratings) failed"), "\(s)")
        // Dependents of a failed step never started.
        #expect(s["report"]?["started_at_ms"] == nil && s["final"]?["started_at_ms"] == nil, "\(s)")
        #expect(r.stdout.contains("report (\(reportJob)): failed: dependency \(ratingsJob)"), "\(r.stdout)")
        let watch = try chorus(["pipeline", "watch", "pipe-000001", "--coordinator", a])
        #expect(watch.status == 1)

        // Cancelling a job cancels the jobs after it.
        let slow = try chorus(["job", "submit", "features", "--param", "debug_task_delay_ms=2000", "--json",
                               "--coordinator", a]).json["id"] as? String ?? "?"
        let dependent = try chorus(["job", "submit", "features", "--after", slow, "--json", "--coordinator", a])
        #expect(dependent.json["state"] as? String == "queued")
        #expect(dependent.json["stage"] as? String == "waiting for \(slow)", "\(dependent.stdout)")
        let depId = dependent.json["id"] as? String ?? "?"
        #expect(try chorus(["job", "cancel", slow, "--coordinator", a]).status == 0)
        let w = try chorus(["job", "watch", depId, "--json", "--coordinator", a], timeout: 60)
        #expect(w.status == 1)
        #expect(w.json["state"] as? String == "cancelled")
        #expect(w.json["error"] as? String == "dependency \(slow) was cancelled", "\(w.stdout)")
    }

    @Test func aCoordinatorRestartMidPipelineResumesWithoutRerunningSucceededSteps() throws {
        let cluster = try TestCluster(workers: 2, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address
        try cluster.ingestGenerated(users: 200, seed: 6)
        let file = try write(cluster, "restart.yaml", """
        steps:
          - {name: first, kind: features}
          - {name: slow, kind: features, after: first, params: {debug_task_delay_ms: 2500}}
          - {name: last, kind: features, after: slow}
        """)
        let run = try chorus(["pipeline", "run", file, "--json", "--coordinator", a])
        #expect(run.status == 0, "\(run.stderr)")
        let id = run.json["id"] as? String ?? "?"
        var before: [String: [String: Any]] = [:]
        try waitUntil("the slow step is running", seconds: 60) {
            before = steps(try status(id, a))
            return before["slow"]?["state"] as? String == "running"
        }
        #expect(before["first"]?["state"] as? String == "succeeded")
        #expect(before["last"]?["state"] as? String == "queued")
        let killedAt = Int(Date().timeIntervalSince1970 * 1000)
        try cluster.restartCoordinator(kill9: true)
        let w = try chorus(["pipeline", "watch", id, "--json", "--coordinator", a], timeout: 240)
        #expect(w.status == 0, "\(w.stdout)\n\(w.stderr)\n\(cluster.logs())")
        let after = steps(w.json)
        #expect(after.values.allSatisfy { $0["state"] as? String == "succeeded" }, "\(after)")
        // The succeeded step was not run again; the running one ran again from the start; the last one after it.
        #expect(ms(after["first"], "started_at_ms") == ms(before["first"], "started_at_ms"))
        #expect(ms(after["first"], "finished_at_ms") == ms(before["first"], "finished_at_ms"))
        #expect(ms(after["slow"], "started_at_ms") > killedAt, "\(after)")
        #expect(ms(after["last"], "started_at_ms") >= ms(after["slow"], "finished_at_ms"), "\(after)")
        let log = cluster.coordinator.log()
        #expect(!log.contains(before["first"]?["job"] as? String ?? "?"), "\(log)")
    }
}
