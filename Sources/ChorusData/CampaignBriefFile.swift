import ChorusModel
import Foundation

/// Reads a campaign brief file (YAML or JSON; docs/campaigns.md "The brief"). Every problem is reported at once,
/// each with its field, the reason and what to do: a wrong type, an unknown field (with the nearest known one), a
/// value out of range (`CampaignBrief.problems`).
public enum CampaignBriefFile {
    public static func parse(_ data: Data, source: String) throws -> CampaignBrief {
        let tree = try tree(data, source: source)
        var problems: [CampaignBrief.Problem] = []
        let brief = decode(tree, &problems)
        if let brief { problems += brief.problems() }
        guard problems.isEmpty, let brief else { throw error(source, problems) }
        return brief
    }

    public static func error(_ source: String, _ problems: [CampaignBrief.Problem]) -> ChorusError {
        let lines = problems.map { "  \($0.field): \($0.reason) (\($0.fix))" }
        return ChorusError(.invalidInput, "brief \(source) has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n" + lines.joined(separator: "\n"),
                           hint: "the brief format is in docs/campaigns.md; docs/examples/campaign-brief.yaml is a complete example")
    }

    static func tree(_ data: Data, source: String) throws -> PipelineValue {
        guard let text = String(data: data, encoding: .utf8) else { throw ChorusError(.invalidInput, "brief \(source): not UTF-8 text") }
        switch PipelineSpec.format(path: source, data: data) {
        case .json:
            do { return PipelineValue(json: .object(try JSONParser.parseObject(text))) } catch let e {
                let line = text.utf8.prefix(e.offset).filter { $0 == UInt8(ascii: "\n") }.count + 1
                throw ChorusError(.invalidInput, "brief \(source): line \(line): not valid JSON: \(e.reason)")
            }
        case .yaml:
            do { return try MiniYAML.parse(text) } catch let e as MiniYAML.SyntaxError {
                throw ChorusError(.invalidInput, "brief \(source): line \(e.line): \(e.reason)",
                                  hint: "the brief format is in docs/campaigns.md")
            }
        }
    }

    // MARK: decoding, collecting problems

    struct Fields {
        let path: String
        var map: [(String, PipelineValue)]
        var used = Set<String>()

        mutating func take(_ k: String) -> PipelineValue? {
            used.insert(k)
            return map.first { $0.0 == k }?.1
        }

        func unknown(_ known: [String], _ problems: inout [CampaignBrief.Problem]) {
            for (k, _) in map where !used.contains(k) {
                let near = known.min { distance($0, k) < distance($1, k) }
                let hint = near.map { distance($0, k) <= 3 ? "did you mean '\($0)'?" : nil } ?? nil
                problems.append(.init(path.isEmpty ? k : "\(path).\(k)", "unknown field",
                                      hint ?? "known fields here: \(known.joined(separator: ", "))"))
            }
        }
    }

    static func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : "\(a).\(b)" }

    static func fields(_ v: PipelineValue?, _ path: String, _ problems: inout [CampaignBrief.Problem]) -> Fields? {
        guard let v else { return nil }
        if case .null = v { return nil }
        guard case let .map(m) = v else {
            problems.append(.init(path, "not a mapping", "write it as keys and values (see docs/campaigns.md)"))
            return nil
        }
        return Fields(path: path, map: m)
    }

    static func string(_ v: PipelineValue?, _ path: String, _ problems: inout [CampaignBrief.Problem]) -> String? {
        switch v {
        case nil, .null?: return nil
        case let .scalar(s)?: return s
        default:
            problems.append(.init(path, "not a single value", "write one value"))
            return nil
        }
    }

    static func number(_ v: PipelineValue?, _ path: String, _ problems: inout [CampaignBrief.Problem]) -> Double? {
        guard let s = string(v, path, &problems) else { return nil }
        let cleaned = s.replacingOccurrences(of: "_", with: "")
        guard let d = Double(cleaned), d.isFinite else {
            problems.append(.init(path, "'\(s)' is not a number", "write a plain number such as 12000 or 0.1"))
            return nil
        }
        return d
    }

    static func integer(_ v: PipelineValue?, _ path: String, _ problems: inout [CampaignBrief.Problem]) -> Int? {
        guard let s = string(v, path, &problems) else { return nil }
        guard let i = Int(s) else {
            problems.append(.init(path, "'\(s)' is not a whole number", "write a whole number such as 3"))
            return nil
        }
        return i
    }

    static func list(_ v: PipelineValue?, _ path: String, _ problems: inout [CampaignBrief.Problem]) -> [String]? {
        switch v {
        case nil, .null?: return nil
        case let .scalar(s)?: return s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case let .list(xs)?:
            var out: [String] = []
            for (i, x) in xs.enumerated() {
                if case let .scalar(s) = x { out.append(s) } else {
                    problems.append(.init("\(path)[\(i)]", "not a single value", "list plain values"))
                }
            }
            return out
        case .map?:
            problems.append(.init(path, "a mapping where a list is expected", "write a list, e.g. [a, b]"))
            return nil
        }
    }

    static func decode(_ tree: PipelineValue, _ problems: inout [CampaignBrief.Problem]) -> CampaignBrief? {
        guard var top = fields(tree, "", &problems) else {
            problems.append(.init("(top level)", "the brief is empty or not a mapping", "start from docs/examples/campaign-brief.yaml"))
            return nil
        }
        let name = string(top.take("name"), "name", &problems) ?? ""
        var objective: CampaignBrief.Objective?
        if let o = string(top.take("objective"), "objective", &problems) {
            objective = .init(rawValue: o.lowercased())
            if objective == nil {
                problems.append(.init("objective", "'\(o)' is not an objective", "use awareness, engagement or conversions"))
            }
        } else {
            problems.append(.init("objective", "missing", "say what the campaign is for: awareness, engagement or conversions"))
        }
        let kpi = string(top.take("kpi"), "kpi", &problems)
        var total: Double?, currency = "USD"
        switch top.take("budget") {
        case let .scalar(s)?:
            total = number(.scalar(s), "budget", &problems)
        case let b?:
            if var f = fields(b, "budget", &problems) {
                total = number(f.take("total"), "budget.total", &problems)
                currency = string(f.take("currency"), "budget.currency", &problems) ?? currency
                f.unknown(["total", "currency"], &problems)
            }
        case nil: break
        }
        if let c = string(top.take("currency"), "currency", &problems) { currency = c }
        if total == nil, !problems.contains(where: { $0.field.hasPrefix("budget") }) {
            problems.append(.init("budget.total", "missing", "give the total budget, e.g. budget: {total: 50000, currency: USD}"))
        }
        var start: String?, end: String?
        if var w = fields(top.take("window"), "window", &problems) {
            start = string(w.take("start"), "window.start", &problems)
            end = string(w.take("end"), "window.end", &problems)
            w.unknown(["start", "end"], &problems)
        }
        start = start ?? string(top.take("start"), "start", &problems)
        end = end ?? string(top.take("end"), "end", &problems)
        if start == nil { problems.append(.init("window.start", "missing", "give the first day, e.g. window: {start: 2026-12-07, end: 2026-12-27}")) }
        if end == nil { problems.append(.init("window.end", "missing", "give the last day (inclusive)")) }
        let channels = list(top.take("channels"), "channels", &problems)
        if channels == nil { problems.append(.init("channels", "missing", "list the channels the campaign may use, e.g. [weibo, tiktok]")) }

        var target = CampaignBrief.Target()
        if var t = fields(top.take("target"), "target", &problems) {
            for (i, s) in (list(t.take("segments"), "target.segments", &problems) ?? []).enumerated() {
                if let g = Int(s) { target.segments.append(g) } else {
                    problems.append(.init("target.segments[\(i)]", "'\(s)' is not a segment id", "use the ids of `chorus segments list`"))
                }
            }
            target.countries = list(t.take("countries"), "target.countries", &problems) ?? []
            target.languages = list(t.take("languages"), "target.languages", &problems) ?? []
            target.topics = list(t.take("topics"), "target.topics", &problems) ?? []
            t.unknown(["segments", "countries", "languages", "topics"], &problems)
        }

        var content = CampaignBrief.ContentPool()
        switch top.take("content") {
        case let .scalar(s)?: content.pool = s
        case let c?:
            if var f = fields(c, "content", &problems) {
                content.ids = list(f.take("ids"), "content.ids", &problems) ?? []
                content.tags = list(f.take("tags"), "content.tags", &problems) ?? []
                content.pool = string(f.take("pool"), "content.pool", &problems)
                    ?? (!content.ids.isEmpty ? "ids" : !content.tags.isEmpty ? "tags" : "recommend")
                content.perSegment = integer(f.take("per_segment"), "content.per_segment", &problems) ?? content.perSegment
                f.unknown(["pool", "ids", "tags", "per_segment"], &problems)
            }
        case nil: break
        }

        var cons = CampaignBrief.Constraints()
        if var c = fields(top.take("constraints"), "constraints", &problems) {
            if let s = fields(c.take("spend"), "constraints.spend", &problems) {
                for (ch, v) in s.map {
                    let p = "constraints.spend.\(ch)"
                    if var l = fields(v, p, &problems) {
                        cons.spend[ch] = .init(min: number(l.take("min"), p + ".min", &problems), max: number(l.take("max"), p + ".max", &problems))
                        l.unknown(["min", "max"], &problems)
                    }
                }
            }
            cons.postsPerDay = integer(c.take("posts_per_day"), "constraints.posts_per_day", &problems) ?? cons.postsPerDay
            cons.postsPerChannelPerDay = integer(c.take("posts_per_channel_per_day"), "constraints.posts_per_channel_per_day", &problems)
                ?? cons.postsPerChannelPerDay
            cons.minSpacingHours = number(c.take("min_spacing_hours"), "constraints.min_spacing_hours", &problems) ?? cons.minSpacingHours
            if var f = fields(c.take("frequency_cap"), "constraints.frequency_cap", &problems) {
                let n = integer(f.take("impressions"), "constraints.frequency_cap.impressions", &problems)
                let d = integer(f.take("days"), "constraints.frequency_cap.days", &problems)
                if let n, let d { cons.frequencyCap = .init(impressions: n, days: d) } else if n == nil && d == nil {
                    problems.append(.init("constraints.frequency_cap", "needs impressions and days", "e.g. frequency_cap: {impressions: 3, days: 7}"))
                }
                f.unknown(["impressions", "days"], &problems)
            }
            cons.exclude = list(c.take("exclude"), "constraints.exclude", &problems) ?? []
            cons.watch = list(c.take("watch"), "constraints.watch", &problems) ?? []
            c.unknown(["spend", "posts_per_day", "posts_per_channel_per_day", "min_spacing_hours", "frequency_cap", "exclude", "watch"], &problems)
        }

        var m = CampaignBrief.Measurement()
        if var f = fields(top.take("measurement"), "measurement", &problems) {
            if let h = string(f.take("holdout_share"), "measurement.holdout_share", &problems), h != "auto" {
                m.holdoutShare = number(.scalar(h), "measurement.holdout_share", &problems)
            }
            m.alpha = number(f.take("alpha"), "measurement.alpha", &problems) ?? m.alpha
            m.power = number(f.take("power"), "measurement.power", &problems) ?? m.power
            m.targetLift = number(f.take("target_lift"), "measurement.target_lift", &problems) ?? m.targetLift
            m.key = string(f.take("key"), "measurement.key", &problems)
            f.unknown(["holdout_share", "alpha", "power", "target_lift", "key"], &problems)
        }
        top.unknown(["name", "objective", "kpi", "budget", "currency", "window", "start", "end", "channels", "target",
                     "content", "constraints", "measurement"], &problems)

        var b = CampaignBrief(name: name, objective: objective ?? .awareness, kpi: objective == nil ? nil : kpi, budget: total ?? 1,
                              currency: currency, start: start ?? "1970-01-01", end: end ?? start ?? "1970-01-01",
                              channels: channels ?? [])
        b.target = target; b.content = content; b.constraints = cons; b.measurement = m
        guard objective != nil, total != nil, start != nil, end != nil, channels != nil else {
            // Still check everything else, so every problem is reported at once; the fields already reported (and
            // those that depend on them) are left out.
            var skip: [String] = []
            if objective == nil { skip.append("kpi") }
            if total == nil { skip += ["budget", "constraints.spend"] }
            if start == nil || end == nil { skip.append("window") }
            if channels == nil { skip += ["channels", "constraints.spend"] }
            problems += b.problems().filter { p in !skip.contains { p.field.hasPrefix($0) } }
            return nil
        }
        return b
    }

    /// Levenshtein distance, for "did you mean".
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        var row = Array(0...y.count)
        for i in 1...max(1, x.count) where !x.isEmpty {
            var prev = row[0]
            row[0] = i
            for j in 1...max(1, y.count) where !y.isEmpty {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (x[i - 1] == y[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return row[y.count]
    }
}
