import Foundation
import Testing

/// The conventions operators expect of the CLI: `chorus version`, a config file with flag > env > file
/// precedence, `-o table|json|yaml`, and `--watch`.
@Suite(.serialized) struct CLIConventionsTests {
    /// Runs chorus with extra environment variables (and without CHORUS_COORDINATOR/CHORUS_OUTPUT from outside).
    private func chorusEnv(_ env: [String: String], _ args: [String], timeout: Double = 60) throws -> Result {
        let vars = env.map { "\($0.key)=\($0.value)" }
        return try run("/usr/bin/env", ["-u", "CHORUS_COORDINATOR", "-u", "CHORUS_OUTPUT", "-u", "CHORUS_CONFIG"]
                       + vars + [Binary.chorus] + args, timeout: timeout)
    }

    @Test func versionNamesTheCommitAndTheLibraries() throws {
        let v = try chorus(["version"])
        #expect(v.status == 0)
        let lines = v.stdout.split(separator: "\n").map(String.init)
        #expect(lines.map { $0.split(separator: " ").first.map(String.init) ?? "" } == ["version", "commit", "protocol", "libzmq", "rocksdb"],
                "\(v.stdout)")
        let zmq = try run("/usr/bin/pkg-config", ["--modversion", "libzmq"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(lines.contains("libzmq \(zmq)"), "pkg-config says libzmq \(zmq)")
        let rocks = try run("/usr/bin/pkg-config", ["--modversion", "rocksdb"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(lines.contains { $0.hasPrefix("rocksdb \(rocks)") }, "pkg-config says rocksdb \(rocks)")
        // The commit the binary was built from is this checkout's HEAD (tests run on the tree they were built from).
        let head = try run("/usr/bin/git", ["-C", Binary.root, "rev-parse", "HEAD"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(lines.contains { $0.hasPrefix("commit \(head)") }, "HEAD is \(head)")
        #expect(try chorus(["--version"]).stdout == v.stdout)
        let j = try chorus(["version", "--json"]).json
        #expect(j["commit"] as? String == head && j["libzmq"] as? String == zmq && j["commit_dirty"] is Bool)
    }

    @Test func configFileEnvironmentAndFlagsInThatOrder() throws {
        let dir = NSTemporaryDirectory() + "chorus-config-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/config.toml"
        try """
        # a comment
        coordinator = "tcp://127.0.0.1:1"   # from the file
        output = "json"
        """.write(toFile: file, atomically: true, encoding: .utf8)
        // Nothing listens on these ports: the error names the address each command chose.
        let fromFile = try chorusEnv(["CHORUS_CONFIG": file], ["cluster", "status", "--timeout", "0.5"])
        #expect(fromFile.status == 69 && fromFile.stderr.contains("tcp://127.0.0.1:1"), "\(fromFile.stderr)")
        let fromEnv = try chorusEnv(["CHORUS_CONFIG": file, "CHORUS_COORDINATOR": "tcp://127.0.0.1:2"],
                                    ["cluster", "status", "--timeout", "0.5"])
        #expect(fromEnv.stderr.contains("tcp://127.0.0.1:2"), "\(fromEnv.stderr)")
        let fromFlag = try chorusEnv(["CHORUS_CONFIG": file, "CHORUS_COORDINATOR": "tcp://127.0.0.1:2"],
                                     ["cluster", "status", "--timeout", "0.5", "--coordinator", "tcp://127.0.0.1:3"])
        #expect(fromFlag.stderr.contains("tcp://127.0.0.1:3"), "\(fromFlag.stderr)")
        // XDG_CONFIG_HOME/chorus/config.toml is the default place.
        try FileManager.default.createDirectory(atPath: dir + "/chorus", withIntermediateDirectories: true)
        try "coordinator = \"tcp://127.0.0.1:4\"\n".write(toFile: dir + "/chorus/config.toml", atomically: true, encoding: .utf8)
        let xdg = try chorusEnv(["XDG_CONFIG_HOME": dir], ["node", "list", "--timeout", "0.5"])
        #expect(xdg.stderr.contains("tcp://127.0.0.1:4"), "\(xdg.stderr)")
        // A bad file stops every command with its path, line and reason (exit 64), never silently.
        try "coordinator = \"tcp://x:1\"\ncolour = \"blue\"\n".write(toFile: file, atomically: true, encoding: .utf8)
        let bad = try chorusEnv(["CHORUS_CONFIG": file], ["node", "list"])
        #expect(bad.status == 64 && bad.stderr.contains("\(file):2: unknown key colour"), "\(bad.stderr)")
        try "output = yaml\n".write(toFile: file, atomically: true, encoding: .utf8)
        let unquoted = try chorusEnv(["CHORUS_CONFIG": file], ["node", "list"])
        #expect(unquoted.status == 64 && unquoted.stderr.contains(":1: the value of output must be a \"quoted string\""), "\(unquoted.stderr)")
        let missing = try chorusEnv(["CHORUS_CONFIG": dir + "/nope.toml"], ["node", "list"])
        #expect(missing.status == 64 && missing.stderr.contains("cannot read"), "\(missing.stderr)")
        let conflict = try chorusEnv([:], ["node", "list", "--json", "-o", "yaml"])
        #expect(conflict.status == 64 && conflict.stderr.contains("disagree"), "\(conflict.stderr)")
    }

    @Test func yamlMatchesJSONAndWatchRedraws() throws {
        let c = try TestCluster(workers: 2, partitions: 8)
        defer { c.shutdown() }
        let json = try chorus(["cluster", "status", "--coordinator", c.address, "-o", "json"])
        let yaml = try chorus(["cluster", "status", "--coordinator", c.address, "-o", "yaml"])
        #expect(yaml.status == 0 && !yaml.stdout.hasPrefix("{"), "\(yaml.stdout)")
        // PyYAML (installed with the ops checkers) reads the YAML back into what -o json printed, except the
        // fields that move between the two calls (uptime, heartbeat ages).
        let tools = try run("/bin/bash", [Binary.root + "/scripts/ops-tools.sh"], timeout: 600)
        let python = tools.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + "/python"
        let file = NSTemporaryDirectory() + "chorus-yaml-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: file + ".yaml"); try? FileManager.default.removeItem(atPath: file + ".json") }
        try yaml.stdout.write(toFile: file + ".yaml", atomically: true, encoding: .utf8)
        try json.stdout.write(toFile: file + ".json", atomically: true, encoding: .utf8)
        let compare = try run(python, ["-c", """
            import json, sys, yaml
            def strip(o):
                if isinstance(o, dict): return {k: strip(v) for k, v in o.items() if k not in ("uptime_ms", "uptime_seconds", "heartbeat_age_ms", "bytes_held", "storage")}
                if isinstance(o, list): return [strip(v) for v in o]
                return o
            a = strip(yaml.safe_load(open(sys.argv[1])))
            b = strip(json.load(open(sys.argv[2])))
            print("same" if a == b else "differ:\\n%r\\n%r" % (a, b))
            """, file + ".yaml", file + ".json"])
        #expect(compare.stdout.hasPrefix("same"), "\(compare.stdout)\(compare.stderr)")
        // --watch: one JSON document per line, every interval, until stopped.
        let watch = try run("/usr/bin/timeout", ["2.5", Binary.chorus, "node", "list", "--coordinator", c.address,
                                                 "--watch", "--interval", "0.5", "-o", "json"], timeout: 30)
        let docs = watch.stdout.split(separator: "\n")
        #expect(docs.count >= 3, "\(watch.stdout)")
        for d in docs {
            let o = (try? JSONSerialization.jsonObject(with: Data(d.utf8))) as? [String: Any]
            #expect((o?["nodes"] as? [Any])?.count == 2, "\(d)")
        }
        let table = try run("/usr/bin/timeout", ["1.5", Binary.chorus, "job", "list", "--coordinator", c.address,
                                                 "--watch", "--interval", "0.5"], timeout: 30)
        #expect(table.stdout.components(separatedBy: "(Ctrl-C to stop)").count - 1 >= 2, "\(table.stdout)")
        #expect(try chorus(["node", "list", "--watch", "--interval", "0"]).status == 64)
    }

    /// Every flag of every command (walked from `chorus --help` through each SUBCOMMANDS list) is in docs/cli.md,
    /// every flag docs/cli.md names exists in some command's help, and both list the same exit codes.
    @Test func docsMatchEveryCommandsHelp() throws {
        var helps: [String: String] = [:]
        func walk(_ path: [String]) throws {
            let h = try chorus(path + ["--help"]).stdout
            helps[path.joined(separator: " ")] = h
            guard let sub = h.components(separatedBy: "SUBCOMMANDS:").dropFirst().first else { return }
            for line in sub.split(separator: "\n") where line.hasPrefix("  ") && !line.hasPrefix("   ") {
                let name = line.dropFirst(2).prefix { !$0.isWhitespace }
                if !name.isEmpty, name != "help", name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" }) {
                    try walk(path + [String(name)])
                }
            }
        }
        try walk([])
        #expect(helps.count > 60, "\(helps.count) commands found")
        func flags(_ text: some StringProtocol) -> Set<String> {
            var out = Set<String>()
            let chars = Array(text)
            var i = 0
            while i + 2 < chars.count {
                if chars[i] == "-", chars[i + 1] == "-", chars[i + 2].isLetter, i == 0 || !(chars[i - 1].isLetter || chars[i - 1] == "-") {
                    var j = i + 2
                    while j < chars.count, chars[j].isLowercase || chars[j].isNumber || chars[j] == "-" { j += 1 }
                    out.insert(String(chars[i..<j]))
                    i = j
                } else { i += 1 }
            }
            return out
        }
        var inHelp: [String: Set<String>] = [:]
        for (command, h) in helps {
            guard let options = h.components(separatedBy: "OPTIONS:").dropFirst().first else { continue }
            for f in flags(options) { inHelp[f, default: []].insert(command) }
        }
        let doc = try String(contentsOfFile: Binary.root + "/docs/cli.md", encoding: .utf8)
        let inDoc = flags(doc)
        for (f, commands) in inHelp.sorted(by: { $0.key < $1.key }) where !["--help", "--version"].contains(f) {
            #expect(inDoc.contains(f), "\(f) (chorus \(commands.sorted().first!)) is not in docs/cli.md")
        }
        // argument-parser's own flag, documented under "Shell completion".
        for f in inDoc.subtracting(inHelp.keys).subtracting(["--generate-completion-script"]).sorted() {
            Issue.record("docs/cli.md names \(f), which no command's --help has")
        }
        // Exit codes: "Exit codes: 0 ok, 1 ..., 130 interrupted." in `chorus --help`, and the table in the doc.
        let top = helps[""] ?? ""
        let sentence = top.components(separatedBy: "Exit codes:").dropFirst().first?.components(separatedBy: "\n\n").first ?? ""
        let helpCodes = Set(sentence.split(separator: ",").compactMap { Int($0.split(whereSeparator: \.isWhitespace).first ?? "") })
        let table = doc.components(separatedBy: "## Exit codes").dropFirst().first?.components(separatedBy: "\n## ").first ?? ""
        let docCodes = Set(table.split(separator: "\n").compactMap { line -> Int? in
            guard line.hasPrefix("| ") else { return nil }
            return Int(line.dropFirst(2).prefix { $0.isNumber })
        })
        #expect(!helpCodes.isEmpty && helpCodes == docCodes, "help: \(helpCodes.sorted()), docs: \(docCodes.sorted())")
    }
}
