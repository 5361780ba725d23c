import ArgumentParser
import ChorusModel
import Foundation
import Synchronization

/// `-o table|json|yaml` of the client commands.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case table, json, yaml
}

/// How `printJSON` writes: set once from the command line (ClientOptions.validate) before the command runs.
enum OutputStyle {
    private static let state = Mutex<(yaml: Bool, compact: Bool)>((false, false))
    static var yaml: Bool {
        get { state.withLock { $0.yaml } }
        set { state.withLock { $0.yaml = newValue } }
    }
    /// One JSON document per line (`--watch`), instead of pretty-printed.
    static var compact: Bool {
        get { state.withLock { $0.compact } }
        set { state.withLock { $0.compact = newValue } }
    }
}

/// The client settings of a config file: `$CHORUS_CONFIG`, else `$XDG_CONFIG_HOME/chorus/config.toml`, else
/// `~/.config/chorus/config.toml`. A flag beats an environment variable, which beats the file, which beats the
/// built-in default. The format is the TOML subset of `key = "string"` lines, `#` comments and blank lines:
///
///     coordinator = "tcp://coord.example:7100"
///     output = "table"        # table, json or yaml
///     keys = "/etc/chorus/keys"  # read by the security work once it lands; accepted and unused until then
struct ChorusConfig: Equatable {
    var coordinator: String?
    var output: OutputFormat?
    var keys: String?
    var path: String?

    static let known = ["coordinator", "output", "keys"]

    /// The file in effect, read once. A malformed file stops the command with its path, line and reason (exit 64).
    static let loaded: ChorusConfig = {
        let env = ProcessInfo.processInfo.environment
        let explicit = env["CHORUS_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let base = env["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (env["HOME"].map { $0 + "/.config" } ?? NSHomeDirectory() + "/.config")
        let path = explicit ?? base + "/chorus/config.toml"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            if explicit != nil { fail("CHORUS_CONFIG=\(path): cannot read the file") }
            return ChorusConfig()
        }
        do {
            var c = try parse(text)
            c.path = path
            return c
        } catch {
            fail("\(path):\(error)")
        }
    }()

    private static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: config \(message)\nhint: see docs/cli.md, \"Config file\"\n".utf8))
        exit(64)
    }

    struct ParseError: Error, CustomStringConvertible {
        let line: Int
        let reason: String
        var description: String { "\(line): \(reason)" }
    }

    static func parse(_ text: String) throws(ParseError) -> ChorusConfig {
        var c = ChorusConfig()
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let n = i + 1
            var line = Substring(raw).trimmingCharacters(in: .whitespaces)[...]
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else { throw ParseError(line: n, reason: "expected key = \"value\"") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            line = line[line.index(after: eq)...].drop { $0 == " " || $0 == "\t" }
            guard line.first == "\"", let close = line.dropFirst().firstIndex(of: "\"") else {
                throw ParseError(line: n, reason: "the value of \(key) must be a \"quoted string\"")
            }
            let value = String(line[line.index(after: line.startIndex)..<close])
            let rest = line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)
            guard rest.isEmpty || rest.hasPrefix("#") else { throw ParseError(line: n, reason: "unexpected text after the value") }
            guard !value.contains("\\") else { throw ParseError(line: n, reason: "escapes are not supported in values") }
            switch key {
            case "coordinator": c.coordinator = value
            case "keys": c.keys = value
            case "output":
                guard let f = OutputFormat(rawValue: value) else {
                    throw ParseError(line: n, reason: "output must be table, json or yaml, not \"\(value)\"")
                }
                c.output = f
            default:
                throw ParseError(line: n, reason: "unknown key \(key) (known: \(known.joined(separator: ", ")))")
            }
        }
        return c
    }
}

/// JSON objects (from JSONSerialization) as YAML: block style, keys sorted, strings double-quoted as in JSON
/// (which YAML reads as the same strings), so the document parses to exactly what `-o json` prints.
enum YAMLWriter {
    static func render(_ object: Any) -> String {
        var out = ""
        write(object, indent: 0, into: &out, inline: false)
        return out.hasSuffix("\n") ? String(out.dropLast()) : out
    }

    private static func scalar(_ v: Any) -> String? {
        switch v {
        case is NSNull: return "null"
        case let s as String: return quote(s)
        case let b as Bool where type(of: v) == Bool.self: return b ? "true" : "false"
        case let n as NSNumber:
            // JSONSerialization's booleans are NSNumbers of type "c" (char); its integers "i" or "q".
            if String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
            let d = n.doubleValue
            if !d.isFinite { return d.isNaN ? ".nan" : (d > 0 ? ".inf" : "-.inf") }
            return (try? JSONSerialization.data(withJSONObject: [n], options: [])).map {
                String(decoding: $0.dropFirst().dropLast(), as: UTF8.self)
            } ?? "\(n)"
        case let d as [String: Any] where d.isEmpty: return "{}"
        case let a as [Any] where a.isEmpty: return "[]"
        default: return nil
        }
    }

    private static func quote(_ s: String) -> String {
        (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])).map {
            String(decoding: $0.dropFirst().dropLast(), as: UTF8.self)
        } ?? "\"\""
    }

    private static func key(_ k: String) -> String {
        let plain = !k.isEmpty && k.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
            && !(k.first!.isNumber) && !["true", "false", "null", "yes", "no", "on", "off"].contains(k.lowercased())
        return plain ? k : quote(k)
    }

    /// Writes `v` at `indent`. `inline`: the first line continues a "- " already written.
    private static func write(_ v: Any, indent: Int, into out: inout String, inline: Bool) {
        let pad = String(repeating: " ", count: indent)
        if let s = scalar(v) {
            out += (inline ? "" : pad) + s + "\n"
            return
        }
        if let d = v as? [String: Any] {
            for (i, k) in d.keys.sorted().enumerated() {
                let lead = inline && i == 0 ? "" : pad
                let value = d[k]!
                if let s = scalar(value) {
                    out += lead + key(k) + ": " + s + "\n"
                } else {
                    out += lead + key(k) + ":\n"
                    write(value, indent: indent + 2, into: &out, inline: false)
                }
            }
        } else if let a = v as? [Any] {
            for (i, item) in a.enumerated() {
                out += (inline && i == 0 ? "" : pad) + "- "
                if let s = scalar(item) { out += s + "\n" } else { write(item, indent: indent + 2, into: &out, inline: true) }
            }
        } else {
            out += (inline ? "" : pad) + quote("\(v)") + "\n"
        }
    }
}

/// `--watch` of `node list`, `cluster status` and `job list`.
struct WatchOptions: ParsableArguments {
    @Flag(help: ArgumentHelp("Redraw every --interval seconds until Ctrl-C.",
                             discussion: "With JSON or YAML output, one document per round (JSON: one per line)."))
    var watch = false

    @Option(help: ArgumentHelp("Seconds between rounds of --watch.", valueName: "SECONDS"))
    var interval: Double = 2

    func validate() throws {
        guard interval.isFinite, interval >= 0.2, interval <= 3600 else {
            throw ValidationError("--interval must be between 0.2 and 3600 seconds")
        }
    }
}

/// Runs `body` once, or with `--watch` every interval until interrupted. A table is redrawn on a cleared
/// terminal; an error in one round is shown and the next round tries again (a coordinator restart does not end
/// the watch).
func watching(_ w: WatchOptions, format: OutputFormat, _ body: () async throws -> Void) async throws {
    guard w.watch else { return try await body() }
    OutputStyle.compact = format == .json
    let tty = isatty(1) == 1
    while true {
        if format == .table {
            if tty { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            let clock = DateFormatter.localizedString(from: Date(), dateStyle: .none, timeStyle: .medium)
            print("every \(w.interval) s, \(clock) (Ctrl-C to stop)\n")
        } else if format == .yaml {
            print("---")
        }
        do {
            try await body()
        } catch let e as ChorusError {
            FileHandle.standardError.write(Data("error: \(e.message)\n".utf8))
        }
        fflush(nil)
        try await Task.sleep(for: .milliseconds(Int(w.interval * 1000)))
    }
}
