import Foundation
import Testing

/// The command tree as the binary describes it (`--experimental-dump-help`), so that a new subcommand is covered by
/// these tests without anyone listing it.
struct CommandTree {
    struct Command {
        var path: [String]
        var visible: Bool
        var hasSubcommands: Bool
        var arguments: [[String: Any]]
        var optionNames: Set<String> {
            Set(arguments.flatMap { ($0["names"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String } })
        }
        func defaultValue(_ option: String) -> String? {
            arguments.first { ($0["names"] as? [[String: Any]] ?? []).contains { $0["name"] as? String == option } }?["defaultValue"] as? String
        }
        /// A client command talks to the coordinator; servers (`worker`, `local`) bind an address of their own.
        var isClient: Bool { optionNames.contains("coordinator") && !optionNames.contains("bind") }
    }

    let commands: [Command]

    init() throws {
        let r = try chorus(["--experimental-dump-help"])
        let root = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["command"] as? [String: Any] ?? [:]
        var out: [Command] = []
        func walk(_ c: [String: Any], _ path: [String], _ visible: Bool) {
            let subs = c["subcommands"] as? [[String: Any]] ?? []
            if !path.isEmpty {
                out.append(Command(path: path, visible: visible, hasSubcommands: !subs.isEmpty,
                                   arguments: c["arguments"] as? [[String: Any]] ?? []))
            }
            for s in subs {
                walk(s, path + [s["commandName"] as? String ?? "?"], visible && (s["shouldDisplay"] as? Bool ?? true))
            }
        }
        walk(root, [], true)
        commands = out.filter { $0.path != ["help"] }
    }

    func command(_ path: [String]) -> Command? { commands.first { $0.path == path } }
}

@Suite(.serialized) struct CLITests {
    /// Arguments that get a client command past its own checks to its first request (a file that must exist, a
    /// valid model file). Every other command gets "x" for each required argument.
    static func arguments(for path: [String], dir: String) throws -> [String] {
        switch path {
        case ["ingest"]: return ["/etc/hostname", "--kind", "users"]
        case ["job", "submit"]: return ["features"]
        case ["model", "import"]: return [Binary.root + "/models/sentiment-default.chsm"]
        case ["model", "export"]: return ["sentiment-default", "--out", dir + "/model.chsm"]
        case ["model", "train"]:
            let labels = dir + "/labels.csv"
            try "label,text\npositive,what a great day\nnegative,this is awful\nneutral,it is a phone\n"
                .write(toFile: labels, atomically: true, encoding: .utf8)
            return ["sentiment", "--labels", labels]
        case ["sentiment", "series"], ["sentiment", "themes"]: return ["topic:tech"]
        default: return []
        }
    }

    @Test func everyClientCommandFailsWithinItsTimeout() throws {
        let dir = NSTemporaryDirectory() + "chorus-timeout-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tree = try CommandTree()
        let clients = tree.commands.filter { $0.isClient && !$0.hasSubcommands }
        #expect(clients.count >= 25, "\(clients.map(\.path))")
        let timeout = 1.0
        // Process start-up and argument parsing of a debug build on a loaded machine.
        let slack = 1.5
        for c in clients {
            var args = c.path + (try Self.arguments(for: c.path, dir: dir))
            if args.count == c.path.count {
                let required = c.arguments.filter { $0["isOptional"] as? Bool == false }
                for a in required {
                    if a["kind"] as? String == "positional" { args.append("x") } else if
                        let name = (a["names"] as? [[String: Any]])?.first?["name"] as? String { args += ["--" + name, "x"] }
                }
            }
            // Nothing listens on port 9 (discard) on loopback.
            let r = try chorus(args + ["--coordinator", "tcp://127.0.0.1:9", "--timeout", String(timeout)], timeout: 30)
            let line = "chorus " + args.joined(separator: " ")
            #expect(r.status == 69, "\(line): exit \(r.status)\n\(r.stderr)")
            #expect(r.seconds < timeout + slack, "\(line) took \(r.seconds) s with --timeout \(timeout)")
            #expect(r.stderr.contains("no reply from the coordinator"), "\(line): \(r.stderr)")
        }
    }

    @Test func recommendAndSimilarRefuseAnItemCountOutOfRange() throws {
        for cmd in [["recommend", "u1"], ["similar", "c1"]] {
            for n in [["--n", "0"], ["--n", "-5"], ["--n=-5"], ["--n", "1001"]] {
                let r = try chorus(cmd + n + ["--coordinator", "tcp://127.0.0.1:9", "--timeout", "1"])
                #expect(r.status == 64, "\(cmd + n): \(r.status) \(r.stderr)")
                #expect(r.stderr.contains("--n must be between 1 and 1000"), "\(cmd + n): \(r.stderr)")
            }
        }
    }

    /// The lines of `chorus PATH --help` at 80 columns that are too long, or that end a line early although the
    /// next line's first word would have fit (hard-wrapped source text wrapped again: a ragged paragraph).
    static func badHelpLines(_ help: String, width: Int = 80) -> [String] {
        var bad: [String] = []
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (i, l) in lines.enumerated() where !l.hasPrefix("USAGE:") {
            if l.count > width { bad.append("too long: \(l)") }
            guard i + 1 < lines.count, !l.isEmpty, l.first != " " else { continue }
            let next = lines[i + 1]
            guard let word = next.split(separator: " ").first, next.first != " ", !next.hasPrefix("USAGE:") else { continue }
            let sentenceEnd = l.hasSuffix(".") || l.hasSuffix(":")
            if !sentenceEnd, l.count < width * 7 / 10, l.count + 1 + word.count <= width {
                bad.append("ragged: \(l) / \(next)")
            }
        }
        return bad
    }

    @Test func helpReadsCleanlyAt80Columns() throws {
        setenv("COLUMNS", "80", 1)
        defer { unsetenv("COLUMNS") }
        let tree = try CommandTree()
        // Help text of these commands belongs to a change in flight on another branch (node and cluster commands).
        let elsewhere: Set<[String]> = [["node"], ["node", "drain"], ["node", "remove"], ["cluster", "rebalance"]]
        for c in tree.commands where c.visible && !elsewhere.contains(c.path) {
            let r = try chorus(c.path + ["--help"])
            #expect(r.status == 0)
            let bad = Self.badHelpLines(r.stdout)
            #expect(bad.isEmpty, "chorus \(c.path.joined(separator: " ")) --help:\n\(bad.joined(separator: "\n"))")
        }
        // One default per option: `model show --version` said "(default: the latest). (default: 0)".
        for c in tree.commands where c.visible {
            let help = try chorus(c.path + ["--help"]).stdout
            let options = help.components(separatedBy: "\n  -").dropFirst()
            for o in options where o.components(separatedBy: "(default").count > 2 {
                Issue.record("chorus \(c.path.joined(separator: " ")) --help: two defaults in \(o)")
            }
        }
    }
}
