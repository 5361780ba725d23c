import ChorusModel
import Foundation

/// Per-channel field mapping: lets exports whose column names and values differ from platform to platform load
/// without hand-editing. See docs/data-format.md for the file format.
public struct FieldMapping: Sendable, Codable, Equatable {
    /// Profile name, e.g. "weibo-export".
    public var name: String
    /// File-name globs (`*` and `?`) this profile applies to, e.g. ["weibo_*.csv"].
    public var match: [String]?
    /// The record kind of matching files, when the file name does not say it.
    public var kind: RecordKind?
    /// Source field name -> Chorus field name, e.g. {"uid": "user_id"}.
    public var fields: [String: String]?
    /// Chorus field name -> (source value -> Chorus value), e.g. {"type": {"repost": "share"}}.
    public var values: [String: [String: String]]?
    /// Chorus field name -> value used when the record has none, e.g. {"channel": "weibo"}.
    public var defaults: [String: String]?

    public init(name: String, match: [String]? = nil, kind: RecordKind? = nil, fields: [String: String]? = nil,
                values: [String: [String: String]]? = nil, defaults: [String: String]? = nil) {
        self.name = name; self.match = match; self.kind = kind; self.fields = fields
        self.values = values; self.defaults = defaults
    }
}

/// A mapping file: `{"profiles": [FieldMapping, ...]}`.
public struct MappingConfig: Sendable, Codable, Equatable {
    public var profiles: [FieldMapping]

    public init(profiles: [FieldMapping]) { self.profiles = profiles }

    public static func decode(_ data: Data) throws -> MappingConfig {
        do {
            return try JSONDecoder().decode(MappingConfig.self, from: data)
        } catch {
            throw ChorusError(.usage, "mapping file is not valid: \(error)",
                              hint: "see docs/data-format.md, section 'Field mapping'")
        }
    }

    /// The first profile whose glob matches the file's base name.
    public func profile(forFile baseName: String) -> FieldMapping? {
        profiles.first { p in (p.match ?? []).contains { Glob.matches($0, baseName) } }
    }

    public func profile(named name: String) -> FieldMapping? { profiles.first { $0.name == name } }
}

public enum Glob {
    /// Shell-style glob with `*` and `?` over Unicode scalars.
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.unicodeScalars), t = Array(text.unicodeScalars)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] { pi += 1; ti += 1 }
            else if pi < p.count, p[pi] == "*" { star = pi; mark = ti; pi += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
            else { return false }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
