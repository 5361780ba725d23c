import ChorusModel
import Foundation

/// A pipeline: a graph of jobs submitted as one unit (docs/pipelines.md). Each step names a job kind, its
/// parameters and the steps that must succeed before it starts.
///
/// The same rules apply to a file (`PipelineSpec.parse`) and to a `SubmitPipeline` request from the wire
/// (`validate`), so the CLI reports a bad file with its name before anything is sent, and the coordinator still
/// refuses a bad graph from any other client.
public struct PipelineSpec: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var name: String
        public var kind: String
        public var params: [String: String]
        /// Names of other steps of the same pipeline.
        public var after: [String]
        public init(name: String, kind: String, params: [String: String] = [:], after: [String] = []) {
            self.name = name; self.kind = kind; self.params = params; self.after = after
        }
    }

    public var name: String
    public var steps: [Step]

    public init(name: String = "", steps: [Step]) {
        self.name = name
        self.steps = steps
    }

    public static let maxSteps = 256

    /// An error in a pipeline file or request: `invalidInput` (exit 65), prefixed with the file name.
    static func error(_ source: String, _ reason: String) -> ChorusError {
        ChorusError(.invalidInput, "\(source): \(reason)", hint: "the pipeline file format is in docs/pipelines.md")
    }

    // MARK: parsing

    public enum Format: String, Sendable { case json, yaml }

    /// The format of a file: by its extension (.json, .yaml, .yml), else JSON when it starts with `{`.
    public static func format(path: String, data: Data) -> Format {
        let ext = (path as NSString).pathExtension.lowercased()
        if ext == "json" { return .json }
        if ext == "yaml" || ext == "yml" { return .yaml }
        let first = String(decoding: data.prefix(4096), as: UTF8.self).first { !$0.isWhitespace }
        return first == "{" ? .json : .yaml
    }

    /// Reads and validates a pipeline file. `source` names it in errors (the path as given).
    public static func parse(_ data: Data, source: String, format: Format? = nil) throws -> PipelineSpec {
        let tree: PipelineValue
        switch format ?? Self.format(path: source, data: data) {
        case .json:
            guard let text = String(data: data, encoding: .utf8) else { throw error(source, "not UTF-8 text") }
            do {
                tree = PipelineValue(json: .object(try JSONParser.parseObject(text)))
            } catch let e {
                let line = text.utf8.prefix(e.offset).filter { $0 == UInt8(ascii: "\n") }.count + 1
                throw error(source, "line \(line): not valid JSON: \(e.reason)")
            }
        case .yaml:
            guard let text = String(data: data, encoding: .utf8) else { throw error(source, "not UTF-8 text") }
            do {
                tree = try MiniYAML.parse(text)
            } catch let e as MiniYAML.SyntaxError {
                throw error(source, "line \(e.line): \(e.reason)")
            }
        }
        var spec = try decode(tree, source: source)
        if spec.name.isEmpty { spec.name = ((source as NSString).lastPathComponent as NSString).deletingPathExtension }
        try spec.validate(source: source)
        return spec
    }

    static func decode(_ tree: PipelineValue, source: String) throws -> PipelineSpec {
        guard case let .map(top) = tree else { throw error(source, "the top level must be a mapping with `steps`") }
        var name = ""
        var steps: [Step]?
        for (k, v) in top {
            switch k {
            case "name":
                guard case let .scalar(s) = v else { throw error(source, "`name` must be a string") }
                name = s
            case "steps":
                guard case let .list(items) = v else { throw error(source, "`steps` must be a list of steps") }
                steps = try items.enumerated().map { try step($1, index: $0, source: source) }
            default:
                throw error(source, "unknown key '\(k)' at the top level (expected name, steps)")
            }
        }
        guard let steps else { throw error(source, "no `steps`") }
        return PipelineSpec(name: name, steps: steps)
    }

    static func step(_ v: PipelineValue, index: Int, source: String) throws -> Step {
        let at = "steps[\(index)]"
        guard case let .map(fields) = v else {
            throw error(source, "\(at) must be a mapping with name, kind, params and after")
        }
        var s = Step(name: "", kind: "")
        for (k, v) in fields {
            switch k {
            case "name", "kind":
                guard case let .scalar(x) = v else { throw error(source, "\(at).\(k) must be a string") }
                if k == "name" { s.name = x } else { s.kind = x }
            case "params":
                switch v {
                case .null: break
                case let .map(ps):
                    for (pk, pv) in ps {
                        guard case let .scalar(x) = pv else {
                            throw error(source, "\(at).params.\(pk) must be a string, number or boolean")
                        }
                        s.params[pk] = x
                    }
                default: throw error(source, "\(at).params must be a mapping of parameter names to values")
                }
            case "after":
                switch v {
                case .null: break
                case let .scalar(x): s.after = [x]
                case let .list(xs):
                    s.after = try xs.map {
                        guard case let .scalar(x) = $0 else { throw error(source, "\(at).after must list step names") }
                        return x
                    }
                default: throw error(source, "\(at).after must be a step name or a list of step names")
                }
            default:
                throw error(source, "\(at): unknown key '\(k)' (expected name, kind, params, after)")
            }
        }
        return s
    }

    // MARK: validation

    /// Names, kinds and the graph: at least one step, unique names, `after` naming steps of this pipeline, no
    /// cycle. Job kinds and parameters are checked by the coordinator (JobParameters), which knows them.
    public func validate(source: String = "pipeline") throws {
        guard !steps.isEmpty else { throw Self.error(source, "no steps") }
        guard steps.count <= Self.maxSteps else {
            throw Self.error(source, "\(steps.count) steps, more than \(Self.maxSteps)")
        }
        var seen: [String: Int] = [:]
        for (i, s) in steps.enumerated() {
            let at = "steps[\(i)]"
            guard !s.name.isEmpty else { throw Self.error(source, "\(at) has no name") }
            guard s.name.utf8.count <= 100, s.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
            else {
                throw Self.error(source, "\(at): step name '\(s.name.prefix(100))' must be 1-100 letters, digits, '-', '_' or '.'")
            }
            if let j = seen[s.name] {
                throw Self.error(source, "duplicate step name '\(s.name)' (steps[\(j)] and \(at))")
            }
            seen[s.name] = i
            guard !s.kind.isEmpty else { throw Self.error(source, "step '\(s.name)' has no kind") }
        }
        for s in steps {
            for a in s.after where seen[a] == nil {
                throw Self.error(source, "step '\(s.name)' runs after '\(a)', which is not a step of this pipeline "
                                 + "(steps: \(steps.map(\.name).joined(separator: ", ")))")
            }
        }
        _ = try order(source: source)
    }

    /// Step indexes in an order where every step comes after the steps it names (file order among the ready
    /// ones). Throws on a cycle, naming it.
    public func order(source: String = "pipeline") throws -> [Int] {
        let index = Dictionary(steps.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        let deps = steps.map { Set($0.after.compactMap { index[$0] }) }
        var done = Set<Int>()
        var out: [Int] = []
        while out.count < steps.count {
            guard let next = steps.indices.first(where: { !done.contains($0) && deps[$0].isSubset(of: done) }) else {
                throw Self.error(source, "the steps' `after` form a cycle: " + cycle(deps, among: done).joined(separator: " -> "))
            }
            done.insert(next)
            out.append(next)
        }
        return out
    }

    /// One cycle among the steps not in `done`, as names, first name repeated at the end.
    func cycle(_ deps: [Set<Int>], among done: Set<Int>) -> [String] {
        var path: [Int] = []
        var at = steps.indices.first { !done.contains($0) } ?? 0
        while !path.contains(at) {
            path.append(at)
            at = deps[at].subtracting(done).min() ?? at
        }
        let loop = path[path.firstIndex(of: at)!...]
        return loop.map { steps[$0].name } + [steps[at].name]
    }

    // MARK: the pipeline of `chorus local`

    /// The steps `chorus local` runs on its sample (docs/examples/local-pipeline.yaml is this with the defaults,
    /// `--users 2000 --seed 7`): features, then ALS on the implicit feedback, then the audience jobs, forecasts, best
    /// times and content drivers, and sentiment when a model is there.
    public static func local(users: Int, seed: UInt64, sentiment: Bool) -> PipelineSpec {
        // The sample's clock ends on 2025-09-29; recency is measured from there.
        let asOf = SyntheticNetwork(users: users, seed: seed).startTime + 28 * 86400
        var steps = [
            Step(name: "features", kind: "features", params: ["as_of": String(asOf)]),
            Step(name: "als", kind: "als", params: [
                "mode": "implicit", "rank": "16", "iterations": "10", "lambda": "0.1", "alpha": "10", "seed": String(seed)],
                 after: ["features"]),
        ]
        // The audience jobs (docs/audience.md): segments on the profiles and the ALS embedding.
        steps.append(Step(name: "segments", kind: "segments", params: ["seed": String(seed)], after: ["als"]))
        steps.append(Step(name: "influence", kind: "influence", params: [:], after: ["features"]))
        // Propensity after segments, so its top list carries each user's segment.
        steps.append(Step(name: "propensity", kind: "propensity", params: [:], after: ["segments"]))
        // Forecasts, best times and content drivers (docs/forecasting.md), after segments so that they have
        // segment series and weeks; content-insights also after influence (the author's influence).
        steps.append(Step(name: "forecast", kind: "forecast", params: ["as_of": String(asOf)], after: ["segments"]))
        steps.append(Step(name: "best-times", kind: "best-times", params: [:], after: ["segments"]))
        steps.append(Step(name: "content-insights", kind: "content-insights", params: [:], after: ["segments", "influence"]))
        if sentiment { steps.append(Step(name: "sentiment", kind: "sentiment", params: ["keywords": "nova"], after: ["als"])) }
        return PipelineSpec(name: "local", steps: steps)
    }
}

/// The tree a pipeline file is read into, from JSON or YAML. Numbers and booleans become their text (`16`,
/// `0.1`, `true`): job parameters are strings.
public indirect enum PipelineValue: Sendable, Equatable {
    case null
    case scalar(String)
    case list([PipelineValue])
    case map([(String, PipelineValue)])

    public static func == (a: PipelineValue, b: PipelineValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.scalar(x), .scalar(y)): return x == y
        case let (.list(x), .list(y)): return x == y
        case let (.map(x), .map(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    init(json: JSONValue) {
        switch json {
        case .null: self = .null
        case let .string(x): self = .scalar(x)
        case let .bool(b): self = .scalar(b ? "true" : "false")
        case let .number(d): self = .scalar(d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d))
        case let .array(xs): self = .list(xs.map(PipelineValue.init(json:)))
        case let .object(fs): self = .map(fs.map { ($0.0, PipelineValue(json: $0.1)) })
        }
    }
}
