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
        case ["segments", "show"]: return ["0"]
        case ["campaign", "plan"]:
            let file = dir + "/brief.yaml"
            try "name: t\nobjective: awareness\nbudget: 100\nwindow: {start: 2026-01-01, end: 2026-01-07}\nchannels: [x]\n"
                .write(toFile: file, atomically: true, encoding: .utf8)
            return ["--brief", file]
        case ["campaign", "diff"]: return ["x", "1", "2"]
        case ["campaign", "edit"]: return ["x", "--lock", "schedule"]
        case ["campaign", "report"]: return ["x", "--out", dir + "/report.html"]
        case ["pipeline", "run"]:
            let file = dir + "/pipeline.yaml"
            try "steps:\n  - {name: a, kind: features}\n".write(toFile: file, atomically: true, encoding: .utf8)
            return [file]
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
        // COLUMNS for the child only: a setenv here would reach the tests running in parallel.
        func help(_ path: [String]) throws -> Result { try run("/usr/bin/env", ["COLUMNS=80", Binary.chorus] + path + ["--help"]) }
        let tree = try CommandTree()
        for c in tree.commands where c.visible {
            let r = try help(c.path)
            #expect(r.status == 0)
            let bad = Self.badHelpLines(r.stdout)
            #expect(bad.isEmpty, "chorus \(c.path.joined(separator: " ")) --help:\n\(bad.joined(separator: "\n"))")
        }
        // One default per option: `model show --version` said "(default: the latest). (default: 0)".
        for c in tree.commands where c.visible {
            let options = try help(c.path).stdout.components(separatedBy: "\n  -").dropFirst()
            for o in options where o.components(separatedBy: "(default").count > 2 {
                Issue.record("chorus \(c.path.joined(separator: " ")) --help: two defaults in \(o)")
            }
        }
    }

    @Test func docsNameTheCommandsFlagsAndDefaultsOfTheBinary() throws {
        let docs = try String(contentsOfFile: Binary.root + "/docs/cli.md", encoding: .utf8)
        let tree = try CommandTree()
        let paths = Set(tree.commands.map(\.path))
        // Binary -> docs: every visible command is documented.
        for c in tree.commands where c.visible && !c.hasSubcommands {
            let name = c.path.joined(separator: " ")
            #expect(docs.contains("chorus \(name)") || docs.contains("`\(name)"), "docs/cli.md does not document `chorus \(name)`")
        }
        // Docs -> binary: every `chorus WORD [WORD]` names a command (and a subcommand when it has them).
        let mention = try NSRegularExpression(pattern: #"chorus ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?"#)
        for m in mention.matches(in: docs, range: NSRange(docs.startIndex..., in: docs)) {
            let words = (1..<m.numberOfRanges).compactMap { Range(m.range(at: $0), in: docs).map { String(docs[$0]) } }
            guard let top = tree.command([words[0]]) else {
                Issue.record("docs/cli.md names `chorus \(words.joined(separator: " "))`, but there is no `chorus \(words[0])`")
                continue
            }
            if top.hasSubcommands, words.count > 1 {
                #expect(paths.contains(words), "docs/cli.md names `chorus \(words.joined(separator: " "))`, which does not exist")
            }
        }
        // Documented defaults: `[--flag VALUE]` with a literal VALUE in a command heading, and the common options.
        let heading = try NSRegularExpression(pattern: #"`(?:chorus )?([a-z][a-z -]*?) ?((?:[A-Z_|]+\.*)? ?\[[^`]*)`"#)
        let flag = try NSRegularExpression(pattern: #"\[--([a-z-]+) ([0-9][0-9.]*|[a-z][a-z-]*)\]"#)
        var checked = 0
        for line in docs.split(separator: "\n") where line.hasPrefix("### ") {
            let text = String(line)
            for h in heading.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let words = String(text[Range(h.range(at: 1), in: text)!]).split(separator: " ").map(String.init)
                guard let c = (1...words.count).reversed().lazy.compactMap({ tree.command(Array(words.prefix($0))) }).first
                else { continue }
                let rest = String(text[Range(h.range(at: 2), in: text)!])
                for f in flag.matches(in: rest, range: NSRange(rest.startIndex..., in: rest)) {
                    let name = String(rest[Range(f.range(at: 1), in: rest)!]), value = String(rest[Range(f.range(at: 2), in: rest)!])
                    guard let def = c.defaultValue(name) else {
                        Issue.record("docs: `chorus \(c.path.joined(separator: " ")) --\(name) \(value)`: no such option with a default")
                        continue
                    }
                    #expect(def == value || Double(def) == Double(value),
                            "docs: `chorus \(c.path.joined(separator: " ")) --\(name)` defaults to \(value), --help says \(def)")
                    checked += 1
                }
            }
        }
        #expect(checked >= 3, "the heading defaults were not found: the pattern no longer matches docs/cli.md")
        let timeoutRow = docs.split(separator: "\n").first { $0.hasPrefix("| `--timeout") }.map(String.init) ?? ""
        let documented = timeoutRow.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }.dropFirst().first
        #expect(Double(documented ?? "") == Double(tree.command(["job", "list"])?.defaultValue("timeout") ?? ""),
                "docs --timeout default \(documented ?? "?")")
        // Environment variables and shell completion.
        for v in ["CHORUS_COORDINATOR", "CHORUS_LOG_LEVEL", "CHORUS_MODELS", "--generate-completion-script"] {
            #expect(docs.contains(v), "docs/cli.md does not mention \(v)")
        }
        let completion = try chorus(["--generate-completion-script", "bash"])
        #expect(completion.status == 0 && completion.stdout.contains("_chorus"))
    }
}
