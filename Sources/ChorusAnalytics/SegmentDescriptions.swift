import ChorusModel

/// Words for a segment (docs/audience.md "Segments"): the features that most distinguish it from the whole
/// audience, each with its effect size, and a short name. Pure: no I/O.
public enum SegmentDescriptions {
    /// One distinguishing feature of a segment.
    public struct Trait: Codable, Sendable, Equatable {
        public var feature: String
        public var segment: Double
        public var audience: Double
        /// (segment mean − audience mean) / audience standard deviation.
        public var effectSize: Double
        public var text: String
        enum CodingKeys: String, CodingKey { case feature, segment, audience, effectSize = "effect_size", text }
    }

    /// The `count` features (3–5) with the largest |effect size|, skipping the ALS dimensions (not words) and
    /// features whose audience deviation is 0. `segment` and `audience` are raw means per feature name.
    public static func traits(segment: [String: Double], audience: [String: (mean: Double, std: Double)],
                              count: Int = 5) -> [Trait] {
        var out: [Trait] = []
        for (name, a) in audience where a.std > 0 && !name.hasPrefix("als:") {
            let s = segment[name] ?? 0
            let d = (s - a.mean) / a.std
            guard d.isFinite, abs(d) >= 0.2 else { continue }
            out.append(Trait(feature: name, segment: round4(s), audience: round4(a.mean), effectSize: round2(d),
                             text: text(name, segment: s, audience: a.mean)))
        }
        out.sort { (abs($0.effectSize), $1.feature) > (abs($1.effectSize), $0.feature) }
        return Array(out.prefix(count))
    }

    /// A short name from the segment's most over-represented channel, topic and hour block
    /// ("tiktok · gaming · 20–23h UTC"); "audience-like" when nothing stands out.
    public static func name(_ traits: [Trait], all segment: [String: Double], audience: [String: (mean: Double, std: Double)]) -> String {
        var parts: [String] = []
        for prefix in ["channel:", "topic:", "hours:"] {
            let best = audience.filter { $0.key.hasPrefix(prefix) && $0.value.std > 0 }
                .map { (name: $0.key, d: ((segment[$0.key] ?? 0) - $0.value.mean) / $0.value.std) }
                .filter { $0.d >= 0.5 }
                .max { ($0.d, $1.name) < ($1.d, $0.name) }
            guard let b = best else { continue }
            let bare = String(b.name.dropFirst(prefix.count))
            parts.append(prefix == "hours:" ? hours(bare) + " UTC" : bare)
        }
        if parts.isEmpty, let t = traits.first { parts.append(t.text) }
        return parts.isEmpty ? "audience-like" : parts.joined(separator: " · ")
    }

    static func hours(_ block: String) -> String {
        let p = block.split(separator: "-")
        guard p.count == 2, let a = Int(p[0]), let b = Int(p[1]) else { return block }
        return "\(a)–\(b)h"
    }

    static func percent(_ x: Double) -> String { String(Int((x * 100).rounded())) + "%" }
    static func fixed(_ x: Double, _ digits: Int) -> String {
        let m = digits == 1 ? 10.0 : digits == 2 ? 100.0 : 1.0
        let r = (x * m).rounded() / m
        var s = String(r)
        if digits == 0, s.hasSuffix(".0") { s.removeLast(2) }
        return s
    }
    static func round2(_ x: Double) -> Double { (x * 100).rounded() / 100 }
    static func round4(_ x: Double) -> Double { (x * 10000).rounded() / 10000 }

    /// The words for one feature.
    public static func text(_ name: String, segment s: Double, audience a: Double) -> String {
        func ratio(_ what: String) -> String {
            a > 0 ? fixed(s / a, 1) + "× the audience's " + what : what + " " + fixed(s, 2) + " (audience 0)"
        }
        if name == "engagement_rate" { return ratio("engagement rate") }
        if name.hasPrefix("type:") {
            let t = String(name.dropFirst(5))
            return t == "view" ? "views are \(percent(s)) of activity (audience \(percent(a)))" : ratio(t + " rate")
        }
        if name == "log_interactions" {
            return "typically \(fixed(PortableMath.exp(s) - 1, 0)) interactions (audience \(fixed(PortableMath.exp(a) - 1, 0)))"
        }
        if name == "log_followers" {
            return "typically \(fixed(PortableMath.exp(s) - 1, 0)) followers (audience \(fixed(PortableMath.exp(a) - 1, 0)))"
        }
        if name == "recency_days" { return "last active \(fixed(s, 1)) days before as-of (audience \(fixed(a, 1)))" }
        if name == "frequency" { return "\(fixed(s, 1)) interactions per active day (audience \(fixed(a, 1)))" }
        if name.hasPrefix("channel:") { return "\(percent(s)) of activity on \(name.dropFirst(8)) (audience \(percent(a)))" }
        if name.hasPrefix("hours:") {
            return "\(percent(s)) of activity at \(hours(String(name.dropFirst(6)))) UTC (audience \(percent(a)))"
        }
        if name.hasPrefix("topic:") { return "\(percent(s)) of interest in \(name.dropFirst(6)) (audience \(percent(a)))" }
        if name.hasPrefix("attitude:") {
            let key = name.dropFirst(9)
            let about = key.hasPrefix("topic:") ? String(key.dropFirst(6)) : String(key)
            let sign = { (x: Double) in (x >= 0 ? "+" : "") + fixed(x, 2) }
            return "mean sentiment about \(about) \(sign(s)) (audience \(sign(a)))"
        }
        return "\(name) \(fixed(s, 2)) (audience \(fixed(a, 2)))"
    }
}
