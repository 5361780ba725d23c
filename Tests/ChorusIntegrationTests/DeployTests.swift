import Foundation
import Testing

/// deploy/ and cluster/ are exercised, so they cannot rot.
@Suite(.serialized) struct DeployTests {
    @Test func systemdUnitsUseRealSubcommandsAndFlags() throws {
        let dir = Binary.root + "/deploy/systemd"
        let units = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".service") }
        #expect(units.count == 2)
        for unit in units {
            let text = try String(contentsOfFile: dir + "/" + unit, encoding: .utf8)
            let lines = text.split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("ExecStart=") }, "\(unit) has no ExecStart")
            for exec in lines where exec.hasPrefix("ExecStart=") {
                let words = exec.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
                #expect(words.first == "/usr/local/bin/chorus")
                try expectRealCommand(Array(words.dropFirst()), in: unit)
            }
            // A stop command runs chorus from a shell: check the chorus command line inside it.
            for exec in lines where exec.hasPrefix("ExecStop=") {
                guard let r = exec.range(of: "/usr/local/bin/chorus ") else { Issue.record("\(unit): \(exec)"); continue }
                try expectRealCommand(exec[r.upperBound...].split(separator: " ").map(String.init), in: unit)
            }
        }
        // The worker drains on stop and takes partitions again on start, with time for the drain.
        let worker = try String(contentsOfFile: dir + "/chorus-worker@.service", encoding: .utf8)
        #expect(worker.contains("exec /usr/local/bin/chorus node drain --wait "))
        #expect(worker.contains(#"[ -n "$$MAINPID" ] || exit 0"#), "no drain when the process already exited")
        #expect(worker.contains(" --undrain-on-start"))
        let timeout = worker.split(separator: "\n").first { $0.hasPrefix("TimeoutStopSec=") }
            .flatMap { Int($0.dropFirst("TimeoutStopSec=".count)) } ?? 0
        #expect(timeout >= 600, "TimeoutStopSec \(timeout) cannot cover a drain")
    }

    /// `words` is a chorus command line without the program: its subcommands must exist and take every flag.
    private func expectRealCommand(_ words: [String], in file: String) throws {
        let sub = words.prefix { !$0.hasPrefix("-") && !$0.contains("$") && !$0.contains("%") }
        let help = try chorus(Array(sub) + ["--help"])
        #expect(help.status == 0, "\(file): chorus \(sub.joined(separator: " ")) --help failed")
        #expect(!sub.isEmpty)
        for flag in words where flag.hasPrefix("--") {
            #expect(help.stdout.contains(flag), "\(file): chorus \(sub.joined(separator: " ")) has no \(flag)")
        }
    }

    static let kubectl = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// With kubectl the script renders and validates every overlay; without it, it validates the base's files.
    @Test func deployCheckScriptPasses() throws {
        let check = try run("/bin/bash", [Binary.root + "/scripts/check-deploy.sh"], timeout: 600)
        #expect(check.status == 0, "\(check.stdout)\n\(check.stderr)")
    }

    /// scripts/check-deploy.sh (run by CI) renders each overlay and validates it strictly, and lints the
    /// Containerfile. Then the rendered overlays carry what the issue asks of them, and every chorus command line
    /// in them is real.
    @Test(.enabled(if: kubectl != nil, "kubectl is not installed: the overlays are not rendered (the base is still validated)"))
    func kubernetesOverlaysRenderValidateAndDrainOnStop() throws {
        let tools = try run("/bin/bash", [Binary.root + "/scripts/ops-tools.sh"], timeout: 600)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for overlay in ["small", "large"] {
            let out = NSTemporaryDirectory() + "chorus-k8s-\(overlay)-\(UUID().uuidString).yaml"
            defer { try? FileManager.default.removeItem(atPath: out) }
            let rendered = try run("/bin/sh", ["-c", "\(Self.kubectl!) kustomize '\(Binary.root)/deploy/kubernetes/overlays/\(overlay)' > '\(out)'"])
            #expect(rendered.status == 0, "\(rendered.stderr)")
            let json = try run(tools + "/python", ["-c", "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))", out])
            let docs = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]] ?? []
            func object(_ kind: String, _ name: String) -> [String: Any] {
                docs.first { $0["kind"] as? String == kind && ($0["metadata"] as? [String: Any])?["name"] as? String == name } ?? [:]
            }
            func at(_ o: Any?, _ path: String...) -> Any? {
                var cur = o
                for key in path {
                    if let i = Int(key) { cur = (cur as? [Any]).flatMap { i < $0.count ? $0[i] : nil } }
                    else { cur = (cur as? [String: Any])?[key] }
                }
                return cur
            }
            let workers = object("StatefulSet", "chorus-worker")
            let pod = at(workers, "spec", "template", "spec")
            let container = at(pod, "containers", "0")
            // A volume per pod, stable names from a headless Service, one pod per machine, readiness over HTTP.
            #expect(at(workers, "spec", "volumeClaimTemplates", "0", "metadata", "name") as? String == "data")
            #expect(at(workers, "spec", "serviceName") as? String == "chorus-worker")
            #expect(at(object("Service", "chorus-worker"), "spec", "clusterIP") as? String == "None")
            #expect(at(pod, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "0",
                       "topologyKey") as? String == "kubernetes.io/hostname")
            #expect(at(container, "readinessProbe", "httpGet", "path") as? String == "/readyz")
            #expect(at(object("StatefulSet", "chorus-coordinator"), "spec", "replicas") as? Int == 1)
            #expect(at(object("PodDisruptionBudget", "chorus-worker"), "spec", "maxUnavailable") as? Int == 1)
            // The drain on stop, with a grace period that can hold it.
            let hook = at(container, "lifecycle", "preStop", "exec", "command") as? [String] ?? []
            #expect(hook.last?.contains("/usr/local/bin/chorus node drain --wait") == true, "\(hook)")
            #expect((at(pod, "terminationGracePeriodSeconds") as? Int ?? 0) >= 600)
            // Every chorus command line is real: the containers' args and the hook's command.
            let args = container.flatMap { at($0, "args") as? [String] } ?? []
            #expect(args.contains("--undrain-on-start"))
            try expectRealCommand(args, in: "\(overlay): chorus-worker args")
            try expectRealCommand(at(object("StatefulSet", "chorus-coordinator"), "spec", "template", "spec",
                                     "containers", "0", "args") as? [String] ?? [], in: "\(overlay): coordinator args")
            let hookWords = hook.last.map { $0.split(separator: " ").map(String.init) } ?? []
            try expectRealCommand(Array(hookWords.drop { $0 != "/usr/local/bin/chorus" }.dropFirst()), in: "\(overlay): preStop")
        }
        // --strict has teeth: a field the schema does not know fails the check.
        let bad = NSTemporaryDirectory() + "chorus-k8s-bad-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: bad) }
        let pdb = try String(contentsOfFile: Binary.root + "/deploy/kubernetes/base/worker-pdb.yaml", encoding: .utf8)
        try pdb.replacingOccurrences(of: "maxUnavailable: 1", with: "maxUnavailable: 1\n  maxUnavailible: 1")
            .write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(try run(tools + "/kubernetes-validate", ["--strict", "--quiet", bad]).status != 0)
    }

    /// What the preStop hook and the systemd ExecStop do, on a real cluster: the hook's command drains the worker,
    /// the worker stops, and when it starts again with --undrain-on-start it takes partitions back. Its /readyz
    /// answers over real HTTP meanwhile.
    @Test func drainOnStopThenUndrainOnStart() throws {
        let c = try TestCluster(workers: 2, partitions: 8)
        defer { c.shutdown() }
        let args = ["--http", "127.0.0.1:0", "--undrain-on-start"]
        try c.addWorker(3, extraArgs: args)
        try c.waitUntilSettled(workers: 3)
        func get(_ address: String, _ path: String) throws -> (status: Int, body: String) {
            let r = try run("/usr/bin/curl", ["-s", "-w", "\n%{http_code}", "http://\(address)\(path)"])
            let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }
        let ready = try get(try c.workers[2].httpAddress(), "/readyz")
        #expect(ready.status == 200 && ready.body.contains("registered"), "\(ready)")
        #expect(try get(try c.workers[2].httpAddress(), "/healthz").status == 200)

        // The hook, as the manifest runs it: a shell, POD_NAME and CHORUS_COORDINATOR from the environment.
        let manifest = try String(contentsOfFile: Binary.root + "/deploy/kubernetes/base/worker.yaml", encoding: .utf8)
        guard let hookLine = manifest.split(separator: "\n").first(where: { $0.contains("command: [\"/bin/sh\"") }),
              let from = hookLine.range(of: "\"-c\", \""), let to = hookLine.range(of: "\"]", options: .backwards) else {
            Issue.record("no preStop command in worker.yaml"); return
        }
        let marker = c.dir + "/skip-drain"
        let hook = String(hookLine[from.upperBound..<to.lowerBound]).replacingOccurrences(of: "\\\"", with: "\"")
            .replacingOccurrences(of: "/usr/local/bin/chorus", with: Binary.chorus)
            .replacingOccurrences(of: "/var/lib/chorus/skip-drain", with: marker)
            .replacingOccurrences(of: "/var/lib/chorus/worker/node-id", with: c.dir + "/w3/node-id")
        #expect(hook.contains(c.dir + "/w3/node-id"), "the hook drains by the node id on the volume: \(hook)")
        // The skip marker: the hook does nothing, once, and removes it.
        FileManager.default.createFile(atPath: marker, contents: nil)
        let skipped = try run("/usr/bin/env", ["CHORUS_COORDINATOR=\(c.address)", "/bin/sh", "-c", hook], timeout: 60)
        #expect(skipped.status == 0 && !FileManager.default.fileExists(atPath: marker))
        let still = (try c.status()["nodes"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "w3" } ?? [:]
        #expect(still["state"] as? String == "active", "\(still)")
        let drained = try run("/usr/bin/env", ["CHORUS_COORDINATOR=\(c.address)", "/bin/sh", "-c", hook], timeout: 120)
        #expect(drained.status == 0, "\(hook)\n\(drained.stderr)")
        let after = try c.status()["nodes"] as? [[String: Any]] ?? []
        let w3 = after.first { $0["name"] as? String == "w3" } ?? [:]
        #expect(w3["state"] as? String == "drained" && w3["partitions"] as? Int == 0, "\(w3)")

        // Stopped and started again on its data dir: the same node, taking partitions again.
        c.workers[2].stop()
        c.workers[2] = try ServerProcess(["worker", "--coordinator", c.address, "--bind", "tcp://127.0.0.1:*",
                                          "--data", c.dir + "/w3", "--name", "w3", "--cores", "2"] + args,
                                         logDir: c.dir, name: "w3-restarted")
        try c.waitUntilSettled(workers: 3)
        #expect(c.workers[2].log().contains("undrained at start"), "\(c.workers[2].log())")
        #expect(try get(try c.workers[2].httpAddress(), "/readyz").status == 200)
    }

    @Test func clusterScriptsStartAndStopARealCluster() throws {
        let dir = NSTemporaryDirectory() + "chorus-script-" + UUID().uuidString
        defer {
            _ = try? run("/bin/bash", [Binary.root + "/cluster/stop.sh", dir])
            try? FileManager.default.removeItem(atPath: dir)
        }
        // Below the ephemeral range (32768+ on Linux), so no outgoing connection can hold one of these ports.
        let base = Int.random(in: 20_000...32_000) / 10 * 10
        setenv("CHORUS_PORT_BASE", String(base), 1)
        setenv("CHORUS_BIN", Binary.chorus, 1)
        let start = try run("/bin/bash", [Binary.root + "/cluster/start.sh", "3", dir], timeout: 60)
        unsetenv("CHORUS_PORT_BASE")
        #expect(start.status == 0, "\(start.stdout)\n\(start.stderr)")
        let nodes = try chorus(["node", "list", "--coordinator", "tcp://127.0.0.1:\(base)", "--json"])
            .json["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.count == 3)
        let stop = try run("/bin/bash", [Binary.root + "/cluster/stop.sh", dir])
        #expect(stop.status == 0)
        #expect(try chorus(["cluster", "status", "--coordinator", "tcp://127.0.0.1:\(base)", "--timeout", "1"]).status == 69)
    }

    @Test func workerUnitTakesItsPortFromAPerInstanceFileNotFromTheInstanceNumber() throws {
        let dir = Binary.root + "/deploy/systemd"
        let unit = try String(contentsOfFile: dir + "/chorus-worker@.service", encoding: .utf8)
        let lines = unit.split(separator: "\n").map(String.init)
        #expect(lines.contains("EnvironmentFile=/etc/chorus/worker-%i.env"), "the per-instance file must be required")
        let exec = lines.first { $0.hasPrefix("ExecStart=") } ?? ""
        // The example file gives the port; expand the unit as systemd would for instances 1, 10 and 99.
        let example = try String(contentsOfFile: dir + "/worker.env.example", encoding: .utf8)
        let env = Dictionary(uniqueKeysWithValues: example.split(separator: "\n")
            .filter { !$0.hasPrefix("#") && $0.contains("=") }
            .map { l in let kv = l.split(separator: "=", maxSplits: 1); return (String(kv[0]), String(kv[1])) })
        #expect(env["CHORUS_WORKER_PORT"] != nil)
        for instance in ["1", "10", "99"] {
            var line = exec.replacingOccurrences(of: "%i", with: instance)
            for (k, v) in env.merging(["CHORUS_ADVERTISE_HOST": "10.0.0.5", "CHORUS_COORDINATOR": "tcp://10.0.0.1:7100"],
                                      uniquingKeysWith: { a, _ in a }) {
                line = line.replacingOccurrences(of: "${\(k)}", with: v)
            }
            #expect(!line.contains("${"), "unset variable in \(line)")
            let words = line.split(separator: " ").map(String.init)
            for flag in ["--bind", "--advertise"] {
                guard let i = words.firstIndex(of: flag), i + 1 < words.count,
                      let port = words[i + 1].split(separator: ":").last.flatMap({ Int($0) }) else {
                    Issue.record("instance \(instance): no port in \(flag)"); continue
                }
                #expect((1...65_535).contains(port), "instance \(instance): \(flag) port \(port)")
                #expect(String(port) == env["CHORUS_WORKER_PORT"], "instance \(instance): \(flag) port \(port)")
            }
        }
        let readme = try String(contentsOfFile: Binary.root + "/deploy/README.md", encoding: .utf8)
        #expect(readme.contains("/etc/chorus/worker-N.env") && readme.contains("CHORUS_WORKER_PORT"))
    }

    @Test func startScriptFailsWhenAnotherClusterHoldsItsPorts() throws {
        let first = NSTemporaryDirectory() + "chorus-script-" + UUID().uuidString
        let second = NSTemporaryDirectory() + "chorus-script-" + UUID().uuidString
        defer {
            for d in [first, second] {
                _ = try? run("/bin/bash", [Binary.root + "/cluster/stop.sh", d])
                try? FileManager.default.removeItem(atPath: d)
            }
        }
        let base = Int.random(in: 20_000...32_000) / 10 * 10
        setenv("CHORUS_PORT_BASE", String(base), 1)
        setenv("CHORUS_BIN", Binary.chorus, 1)
        defer { unsetenv("CHORUS_PORT_BASE") }
        let up = try run("/bin/bash", [Binary.root + "/cluster/start.sh", "3", first], timeout: 60)
        #expect(up.status == 0, "\(up.stdout)\n\(up.stderr)")
        // It says ready only when it is: every partition has an owner.
        let s = try chorus(["cluster", "status", "--coordinator", "tcp://127.0.0.1:\(base)", "--json"]).json
        #expect(s["ready"] as? Bool == true && s["unassigned_partitions"] as? Int == 0, "\(s)")
        // Its hints name absolute paths, so they work from any directory.
        for line in up.stdout.split(separator: "\n") where line.hasPrefix("stop:") || line.hasPrefix("try:") {
            #expect(line.contains(" /"), "\(line)")
        }

        // Same ports, other dir: every process of the second cluster fails to bind.
        let clash = try run("/bin/bash", [Binary.root + "/cluster/start.sh", "3", second], timeout: 60)
        #expect(clash.status != 0, "a cluster that is not running was reported up: \(clash.stdout)")
        #expect(!clash.stdout.contains("cluster up"), "\(clash.stdout)")
        #expect(clash.stderr.contains("cannot bind") && clash.stderr.contains("Address already in use"), "\(clash.stderr)")
        #expect(clash.stderr.contains("CHORUS_PORT_BASE"), "\(clash.stderr)")
        // It cleaned up after itself, and left the first cluster alone.
        let pids = try FileManager.default.contentsOfDirectory(atPath: second).filter { $0.hasSuffix(".pid") }
        #expect(pids.isEmpty, "\(pids)")
        let nodes = try chorus(["node", "list", "--coordinator", "tcp://127.0.0.1:\(base)", "--json"])
            .json["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.count == 3 && nodes.allSatisfy { $0["state"] as? String == "active" }, "\(nodes)")
    }
}
