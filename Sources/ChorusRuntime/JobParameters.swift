import ChorusAnalytics
import ChorusData
import ChorusModel

/// One declared job parameter: its name, what values it takes, its default as documented, and a line of help.
public struct JobParameter: Sendable {
    public enum Values: Sendable {
        /// A whole number in the range (written as digits; `1e3` is not an integer here).
        case integer(ClosedRange<Int64>)
        /// A power of two in the range (e.g. a hashed table's size).
        case powerOfTwo(ClosedRange<Int64>)
        /// A finite number in the range.
        case number(ClosedRange<Double>)
        case boolean
        case choice([String])
        /// Free text up to the byte limit.
        case text(maxBytes: Int)
        /// A time: unix seconds or ISO 8601 (stored as unix seconds).
        case time
        /// A sentiment key `topic:X`, `hashtag:X` or `brand:X`.
        case key
    }

    public let name: String
    public let values: Values
    /// The default as people read it ("" = none, or computed).
    public let defaultValue: String
    public let help: String
    /// Set by the CLI wrappers, not meant to be typed (kept out of `job submit --help`).
    public let internalUse: Bool

    public init(_ name: String, _ values: Values, _ defaultValue: String = "", _ help: String,
                internalUse: Bool = false) {
        self.name = name; self.values = values; self.defaultValue = defaultValue; self.help = help
        self.internalUse = internalUse
    }

    /// What the values look like, for help and errors.
    public var shape: String {
        switch values {
        case let .integer(r): return "a whole number in \(r.lowerBound)...\(r.upperBound)"
        case let .powerOfTwo(r): return "a power of two in \(r.lowerBound)...\(r.upperBound)"
        case let .number(r): return "a number in \(Self.show(r.lowerBound))...\(Self.show(r.upperBound))"
        case .boolean: return "true or false"
        case let .choice(c): return c.joined(separator: " or ")
        case let .text(n): return "text of at most \(n) bytes"
        case .time: return "unix seconds or ISO 8601 (2025-09-29T00:00:00Z)"
        case .key: return "topic:NAME, hashtag:NAME or brand:NAME"
        }
    }

    /// The same, short, for the help list.
    public var shortShape: String {
        switch values {
        case let .integer(r): return r.upperBound == Int64.max ? "integer ≥ \(r.lowerBound)" : "\(r.lowerBound)...\(r.upperBound)"
        case let .powerOfTwo(r): return "\(r.lowerBound)...\(r.upperBound)"
        case let .number(r): return "\(Self.show(r.lowerBound))...\(Self.show(r.upperBound))"
        case .boolean: return "true|false"
        case let .choice(c): return c.joined(separator: "|")
        case .text: return "text"
        case .time: return "unix seconds or ISO 8601"
        case .key: return "topic:|hashtag:|brand:NAME"
        }
    }

    static func show(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
    }

    /// Checks one value; returns it normalized (times as unix seconds), or a usage error naming the parameter.
    func check(_ kind: String, _ raw: String) throws -> String {
        func bad(_ why: String? = nil) -> ChorusError {
            ChorusError(.usage, "\(kind): parameter \(name)=\(raw.prefix(60)) is not valid: \(why ?? "expected \(shape)")",
                        hint: "\(name): \(help)" + (defaultValue.isEmpty ? "" : " (default \(defaultValue))"))
        }
        let v = raw.trimmingCharacters(in: .whitespaces)
        switch values {
        case let .integer(r):
            guard let n = Int64(v), r.contains(n) else { throw bad() }
            return String(n)
        case let .powerOfTwo(r):
            guard let n = Int64(v), r.contains(n) else { throw bad() }
            // Any other size used to pass the range check and trap every worker (a hashed table's size).
            guard n & (n - 1) == 0 else {
                throw ChorusError(.usage, "\(kind): \(name) must be a power of two, not \(n)",
                                  hint: "e.g. --param \(name)=\(defaultValue)")
            }
            return String(n)
        case let .number(r):
            guard let d = Double(v), d.isFinite, r.contains(d) else { throw bad() }
            return v
        case .boolean:
            guard v == "true" || v == "false" else { throw bad() }
            return v
        case let .choice(c):
            guard c.contains(v) else { throw bad() }
            return v
        case let .text(n):
            guard v.utf8.count <= n else { throw bad("longer than \(n) bytes") }
            guard !v.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) else {
                throw bad("holds a control character")
            }
            return raw
        case .time:
            guard let t = Timestamp.parse(v) else { throw bad() }
            return String(t)
        case .key:
            let parts = v.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, ["topic", "hashtag", "brand"].contains(String(parts[0])), !parts[1].isEmpty else {
                throw bad("a key is KIND:NAME, e.g. topic:tech, hashtag:techdaily or brand:acme "
                          + "(see `chorus sentiment keys`)")
            }
            return v
        }
    }
}

/// The parameters every job kind takes, declared once: `job submit` checks them before the job is created (an
/// unknown key or a bad value is a usage error, exit 64), `job submit --help` and docs/cli.md list them, and the
/// job code reads only declared keys.
public enum JobParameters {
    /// Taken by every kind.
    public static let common: [JobParameter] = [
        .init("task_timeout_s", .integer(1...604_800), "1800", "seconds one task may run before it is retried"),
        .init("debug_task_delay_ms", .integer(0...60_000), "0", "test knob: every task sleeps this long first",
              internalUse: true),
    ]

    /// The declared parameters of a kind (its own and the common ones), or nil for a kind the registry lacks.
    public static func declared(_ kind: String, registry: JobRegistry = .empty) -> [JobParameter]? {
        registry[kind].map { $0.parameters + common }
    }

    /// Every kind, in registration order.
    public static func allKinds(_ registry: JobRegistry) -> [String] {
        registry.kinds
    }

    /// Checks a submission's parameters: the kind exists, every key is declared for it, every value has the
    /// declared shape, and required ones are there. Returns them normalized.
    public static func validate(kind: String, params: [String: String],
                                registry: JobRegistry = .empty) throws -> [String: String] {
        guard let decl = declared(kind, registry: registry) else {
            throw ChorusError(.usage, "unknown job kind '\(kind)'",
                              hint: "known kinds: \(allKinds(registry).joined(separator: ", ")); see `chorus job kinds`")
        }
        var out: [String: String] = [:]
        for (key, value) in params.sorted(by: { $0.key < $1.key }) {
            guard let p = decl.first(where: { $0.name == key }) else {
                let names = decl.filter { !$0.internalUse }.map(\.name)
                let near = names.min { editDistance($0, key) < editDistance($1, key) }
                let suggestion = near.flatMap { editDistance($0, key) <= 3 ? " (did you mean \($0)?)" : nil } ?? ""
                throw ChorusError(.usage, "\(kind): unknown parameter '\(key)'\(suggestion)",
                                  hint: "\(kind) takes: \(names.joined(separator: ", ")); see `chorus job submit --help`")
            }
            out[key] = try p.check(kind, value)
        }
        for p in decl where p.defaultValue == "(required)" && out[p.name] == nil {
            throw ChorusError(.usage, "\(kind): parameter \(p.name) is required: \(p.shape)",
                              hint: "\(p.name): \(p.help); e.g. --param \(p.name)=\(exampleValue(p))")
        }
        return out
    }

    static func exampleValue(_ p: JobParameter) -> String {
        switch p.values {
        case let .choice(c): return c.first ?? ""
        case .key: return "topic:tech"
        default: return p.defaultValue
        }
    }

    /// Levenshtein distance, for "did you mean".
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8), y = Array(b.utf8)
        if x.isEmpty { return y.count }
        var prev = Array(0...y.count)
        for i in 1...x.count {
            var cur = [i] + Array(repeating: 0, count: y.count)
            for j in 1...max(1, y.count) where j <= y.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[y.count]
    }

    /// What a kind computes, in one line.
    public static func about(_ kind: String, registry: JobRegistry = .empty) -> String {
        registry[kind]?.about ?? ""
    }

    /// The parameter list of every kind (or of `kinds`), for `job submit --help` and `job kinds KIND` (80 columns).
    public static func helpText(_ registry: JobRegistry = .empty, kinds: [String]? = nil) -> String {
        var lines: [String] = []
        for kind in kinds ?? allKinds(registry) {
            guard let decl = registry[kind]?.parameters else { continue }
            lines.append("\(kind) parameters (--param KEY=VALUE):")
            for p in decl where !p.internalUse && !(p.name == "as_of" && p.help.hasPrefix("accepted for every kind")) {
                let head = "\(p.name)=" + (p.defaultValue.isEmpty ? "…" : p.defaultValue) + ": "
                var wrapped = wrap(head + p.help + " [" + p.shortShape + "]", indent: 6, width: 78)
                if !wrapped.isEmpty { wrapped[0] = "  " + wrapped[0].dropFirst(6) }
                lines += wrapped
            }
            lines.append("")
        }
        lines.append("every kind: task_timeout_s=1800 (seconds one task may run before it is retried)")
        return lines.joined(separator: "\n")
    }

    static func wrap(_ text: String, indent: Int, width: Int) -> [String] {
        var out: [String] = [], line = ""
        // A word too long for a line (a long choice list "a|b|c|…") is cut after one of its "|".
        var words: [Substring] = []
        for w in text.split(separator: " ") {
            guard w.count > width - indent - 8, w.contains("|") else { words.append(w); continue }
            var rest = w
            while rest.count > width - indent - 8, let cut = rest.prefix(width - indent - 8).lastIndex(of: "|") {
                words.append(rest[...cut])
                rest = rest[rest.index(after: cut)...]
            }
            words.append(rest)
        }
        for word in words {
            if !line.isEmpty, indent + line.count + 1 + word.count > width {
                out.append(String(repeating: " ", count: indent) + line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { out.append(String(repeating: " ", count: indent) + line) }
        return out
    }
}

extension RequestValidation {
    /// The values of a registered kind's declared parameters in a task or a broadcast. They were checked at submit,
    /// but a message from the wire is remote input (a value a job would trap on, e.g. a non-power-of-two table
    /// size, must not reach it). Keys the kind does not declare are left alone.
    public static func declaredParams(_ params: [String: String], _ declared: [JobParameter], kind: String,
                                      field: String) throws {
        for p in declared {
            guard let v = params[p.name] else { continue }
            do {
                _ = try p.check(kind, v)
            } catch {
                throw invalid("\(field).\(p.name)", "'\(v.prefix(40))' is not \(p.shape)")
            }
        }
    }
}
