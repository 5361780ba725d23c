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
            guard let exec = text.split(separator: "\n").first(where: { $0.hasPrefix("ExecStart=") }) else {
                Issue.record("\(unit) has no ExecStart"); continue
            }
            let words = exec.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
            #expect(words.first == "/usr/local/bin/chorus")
            let sub = words[1]
            let help = try chorus([sub, "--help"])
            #expect(help.status == 0, "chorus \(sub) --help failed")
            for flag in words.dropFirst(2) where flag.hasPrefix("--") {
                #expect(help.stdout.contains(flag), "\(unit): chorus \(sub) has no \(flag)")
            }
        }
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
