import Foundation
import Testing

/// `/metrics` of a real cluster, scraped over HTTP after a known ingest and job: it parses with the Prometheus
/// project's own Python parser (prometheus_client), follows the naming conventions, and agrees with
/// `chorus cluster status` and the ingest's counts.
@Suite(.serialized) struct MetricsTests {
    /// The `/metrics` text of a process started with `--http`.
    private func scrape(_ p: ServerProcess) throws -> String {
        let address = try p.httpAddress()
        let got = try run("/usr/bin/curl", ["-sf", "http://\(address)/metrics"])
        guard got.status == 0 else { throw HarnessError("curl \(address)/metrics: exit \(got.status) \(got.stderr)") }
        return got.stdout
    }

    /// Parses with prometheus_client's text parser (it raises on malformed input) and returns every sample as
    /// (name, labels, value), plus each family's declared type, by the name in its `# TYPE` line.
    private func parse(_ text: String, python: String) throws -> (samples: [(String, [String: String], Double)], types: [String: String]) {
        let file = NSTemporaryDirectory() + "chorus-metrics-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let script = """
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        out = []
        for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
            for s in fam.samples:
                out.append([s.name, s.labels, s.value])
        print(json.dumps(out))
        """
        let r = try run(python, ["-c", script, file])
        guard r.status == 0 else { throw HarnessError("prometheus_client could not parse /metrics: \(r.stderr)\n\(text.prefix(2000))") }
        let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[Any]] ?? []
        var types: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let w = line.split(separator: " ")
            if w.count == 4 { types[String(w[2])] = String(w[3]) }
        }
        return (rows.map { ($0[0] as? String ?? "", $0[1] as? [String: String] ?? [:], ($0[2] as? NSNumber)?.doubleValue ?? .nan) }, types)
    }

    private func value(_ samples: [(String, [String: String], Double)], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        let hits = samples.filter { sample in sample.0 == name && labels.allSatisfy { k, v in sample.1[k] == v } }
        return hits.isEmpty ? nil : hits.reduce(0) { $0 + $1.2 }
    }

    @Test func scrapedMetricsParseAndAgreeWithStatusAndIngest() throws {
        let tools = try run("/bin/bash", [Binary.root + "/scripts/ops-tools.sh"], timeout: 600)
        #expect(tools.status == 0, "\(tools.stderr)")
        let python = tools.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + "/python"
        let http = ["--http", "127.0.0.1:0"]
        let c = try TestCluster(workers: 3, partitions: 16, extraArgs: http, workerArgs: http)
        defer { c.shutdown() }
        let data = try c.generate(users: 400, seed: 7)
        let ingest = try chorus(["ingest", "--coordinator", c.address, "--json"] + data.files, timeout: 300)
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let stored = ingest.json["stored"] as? Int ?? -1
        #expect(stored > 0)
        // The same files again: nothing new, everything a duplicate.
        let again = try chorus(["ingest", "--coordinator", c.address, "--json"] + data.files, timeout: 300)
        let duplicates = again.json["duplicates"] as? Int ?? -1
        #expect(again.json["stored"] as? Int == 0 && duplicates == stored, "\(again.stdout)")
        let job = try chorus(["job", "submit", "features", "--coordinator", c.address, "--wait"], timeout: 300)
        #expect(job.status == 0, "\(job.stderr)")

        let status = try c.status()
        let nodes = status["nodes"] as? [[String: Any]] ?? []
        let coordText = try scrape(c.coordinator)
        let coord = try parse(coordText, python: python)
        var workerStored = 0.0, workerDuplicates = 0.0
        for (i, w) in c.workers.enumerated() {
            let text = try scrape(w)
            let m = try parse(text, python: python)
            workerStored += value(m.samples, "chorus_worker_records_stored_total") ?? 0
            workerDuplicates += value(m.samples, "chorus_worker_duplicate_records_total") ?? 0
            let name = "w\(i + 1)"
            let node = nodes.first { $0["name"] as? String == name } ?? [:]
            // Its own view of its partitions is the coordinator's.
            #expect(value(m.samples, "chorus_worker_partitions", ["role": "primary"]) == Double(node["primaries"] as? Int ?? -1), "\(name)")
            #expect(value(m.samples, "chorus_worker_partitions", ["role": "replica"]) == Double(node["replicas"] as? Int ?? -1), "\(name)")
            #expect(value(m.samples, "chorus_worker_registered") == 1)
            #expect((value(m.samples, "chorus_requests_total", ["type": "write_batch", "outcome": "ok"]) ?? 0) > 0, "\(name)")
            #expect((value(m.samples, "chorus_request_duration_seconds_count", ["type": "run_task"]) ?? 0) > 0, "\(name)")
            #expect((value(m.samples, "chorus_worker_disk_bytes") ?? 0) > 0)
            #expect(value(m.samples, "chorus_rocksdb_pending_compaction_bytes") != nil)
            #expect(value(m.samples, "chorus_rocksdb_stall_seconds_total") != nil)
            #expect((value(m.samples, "chorus_connections") ?? 0) >= 1, "the coordinator and the other workers are connected")
            try checkConventions(text, m.types, "\(name)")
        }
        #expect(workerStored == Double(stored), "records stored by the primaries = the ingest's stored count")
        #expect(workerDuplicates == Double(duplicates))

        // The coordinator's cluster view is `cluster status`.
        let s = coord.samples
        #expect(value(s, "chorus_cluster_nodes", ["state": "active"]) == Double(nodes.filter { $0["state"] as? String == "active" }.count))
        #expect(value(s, "chorus_cluster_partitions") == 16)
        #expect(value(s, "chorus_cluster_partitions_unavailable") == Double(status["unassigned_partitions"] as? Int ?? -1))
        #expect(value(s, "chorus_cluster_partitions_under_replicated") == Double((status["under_replicated"] as? [Any])?.count ?? -1))
        #expect(value(s, "chorus_cluster_replication_factor") == 2)
        for n in nodes {
            let name = n["name"] as? String ?? ""
            #expect(value(s, "chorus_node_partitions", ["node": name, "role": "primary"]) == Double(n["primaries"] as? Int ?? -1))
            #expect(value(s, "chorus_node_state", ["node": name, "state": "active"]) == 1)
            #expect((value(s, "chorus_node_heartbeat_age_seconds", ["node": name]) ?? 99) < 5)
        }
        #expect(value(s, "chorus_cluster_jobs", ["state": "succeeded"]) == 1)
        let tasks = value(s, "chorus_cluster_tasks_total", ["kind": "features", "outcome": "ok"]) ?? 0
        #expect(tasks >= 3, "one task message per worker at least")
        #expect(value(s, "chorus_cluster_task_duration_seconds_count", ["kind": "features"]) == tasks)
        #expect((value(s, "chorus_requests_total", ["type": "heartbeat", "outcome": "ok"]) ?? 0) > 0)
        try checkConventions(coordText, coord.types, "coordinator")
    }

    /// Counters end in `_total`, every family has its `# HELP`, and units are in the names.
    private func checkConventions(_ text: String, _ types: [String: String], _ who: String) throws {
        #expect(!types.isEmpty)
        let helped = Set(text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { String($0.split(separator: " ")[2]) })
        for (name, type) in types {
            #expect(name.hasPrefix("chorus_"), "\(who): \(name)")
            #expect(helped.contains(name), "\(who): \(name) has no # HELP")
            if type == "counter" { #expect(name.hasSuffix("_total"), "\(who): counter \(name) must end in _total") }
            if type != "counter" { #expect(!name.hasSuffix("_total"), "\(who): \(type) \(name) must not end in _total") }
            if type == "histogram" { #expect(name.hasSuffix("_seconds"), "\(who): \(name)") }
        }
    }
}
