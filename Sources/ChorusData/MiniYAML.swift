/// The YAML subset pipeline files use (docs/pipelines.md), in pure Swift: block mappings and block sequences by
/// indentation (spaces), `- key: value` items, flow lists `[a, b]` and flow mappings `{k: v, l: [a]}` on one line,
/// plain, 'single' and "double" quoted scalars, `#` comments, and a leading `---`. Scalars are kept as written
/// (`16`, `0.10`, `true`); `~`, `null` and an empty value are null. Anchors, aliases, tags, multi-line
/// (`|`, `>`) scalars and several documents are refused with their line, never misread.
public enum MiniYAML {
    public struct SyntaxError: Error, Equatable, Sendable {
        public var line: Int
        public var reason: String
    }

    struct Line {
        var number: Int
        var indent: Int
        var text: String
    }

    public static func parse(_ source: String) throws -> PipelineValue {
        var lines: [Line] = []
        var seenDocument = false
        for (i, raw) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let n = i + 1
            var s = String(raw)
            if s.hasSuffix("\r") { s.removeLast() }
            let indent = s.prefix { $0 == " " }.count
            let rest = s.dropFirst(indent)
            if rest.first == "\t" { throw SyntaxError(line: n, reason: "a tab in the indentation (use spaces)") }
            let text = try stripComment(String(rest), line: n).trimmingTrailingSpaces()
            if text.isEmpty { continue }
            if indent == 0 && (text == "---" || text.hasPrefix("--- ")) {
                if seenDocument || !lines.isEmpty { throw SyntaxError(line: n, reason: "more than one document (---)") }
                seenDocument = true
                if text != "---" { throw SyntaxError(line: n, reason: "content after --- (start the document on the next line)") }
                continue
            }
            if indent == 0 && text == "..." { break }
            lines.append(Line(number: n, indent: indent, text: text))
        }
        guard !lines.isEmpty else { return .null }
        var p = Parser(lines: lines)
        let v = try p.block(indent: lines[0].indent)
        if p.i < p.lines.count {
            throw SyntaxError(line: p.lines[p.i].number, reason: "unexpected indentation")
        }
        return v
    }

    /// The text before a comment: `#` at the start or after a space, outside quotes.
    static func stripComment(_ s: String, line: Int) throws -> String {
        let chars = Array(s)
        var quote: Character?
        var k = 0
        while k < chars.count {
            let c = chars[k]
            if let q = quote {
                if c == "\\" && q == "\"" {
                    k += 1  // an escaped character inside "…"
                } else if c == q {
                    if q == "'" && k + 1 < chars.count && chars[k + 1] == "'" { k += 1 } else { quote = nil }
                }
            } else if c == "\"" || c == "'" {
                let prev = k == 0 ? " " : chars[k - 1]
                if " [{,:-".contains(prev) { quote = c }
            } else if c == "#" && (k == 0 || chars[k - 1] == " ") {
                return String(chars[..<k])
            }
            k += 1
        }
        return s
    }

    struct Parser {
        var lines: [Line]
        var i = 0

        mutating func block(indent: Int) throws -> PipelineValue {
            let l = lines[i]
            if l.text == "-" || l.text.hasPrefix("- ") { return try sequence(indent: indent) }
            return try mapping(indent: indent)
        }

        mutating func sequence(indent: Int) throws -> PipelineValue {
            var items: [PipelineValue] = []
            while i < lines.count, lines[i].indent == indent, lines[i].text == "-" || lines[i].text.hasPrefix("- ") {
                let l = lines[i]
                let rest = l.text.dropFirst().drop { $0 == " " }
                if rest.isEmpty {
                    i += 1
                    if i < lines.count, lines[i].indent > indent {
                        items.append(try block(indent: lines[i].indent))
                    } else {
                        items.append(.null)
                    }
                } else if MiniYAML.keySplit(String(rest)) != nil {
                    // "- key: value": a mapping whose first line starts where the key does.
                    let column = indent + (l.text.count - rest.count)
                    lines[i] = Line(number: l.number, indent: column, text: String(rest))
                    items.append(try mapping(indent: column))
                } else {
                    items.append(try MiniYAML.inline(String(rest), line: l.number))
                    i += 1
                }
            }
            if i < lines.count, lines[i].indent > indent {
                throw SyntaxError(line: lines[i].number, reason: "unexpected indentation")
            }
            return .list(items)
        }

        mutating func mapping(indent: Int) throws -> PipelineValue {
            var entries: [(String, PipelineValue)] = []
            while i < lines.count, lines[i].indent == indent {
                let l = lines[i]
                if l.text == "-" || l.text.hasPrefix("- ") {
                    throw SyntaxError(line: l.number, reason: "a list item where a `key: value` was expected")
                }
                guard let (rawKey, value) = MiniYAML.keySplit(l.text) else {
                    throw SyntaxError(line: l.number, reason: "expected `key: value`, got '\(l.text.prefix(60))'")
                }
                let key = try MiniYAML.scalarText(rawKey, line: l.number)
                if entries.contains(where: { $0.0 == key }) {
                    throw SyntaxError(line: l.number, reason: "duplicate key '\(key)'")
                }
                i += 1
                if value.isEmpty {
                    if i < lines.count, lines[i].indent > indent {
                        entries.append((key, try block(indent: lines[i].indent)))
                    } else if i < lines.count, lines[i].indent == indent,
                              lines[i].text == "-" || lines[i].text.hasPrefix("- ") {
                        entries.append((key, try sequence(indent: indent)))  // "key:\n- a" at the key's indent
                    } else {
                        entries.append((key, .null))
                    }
                } else {
                    entries.append((key, try MiniYAML.inline(value, line: l.number)))
                }
                if i < lines.count, lines[i].indent > indent {
                    throw SyntaxError(line: lines[i].number, reason: "unexpected indentation")
                }
            }
            return .map(entries)
        }
    }

    /// "key: value" / "key:" split at the first `:` outside quotes followed by a space or the end.
    static func keySplit(_ s: String) -> (String, String)? {
        let chars = Array(s)
        var quote: Character?
        if let f = chars.first, f == "[" || f == "{" { return nil }
        for (k, c) in chars.enumerated() {
            if let q = quote {
                if c == q { quote = nil }
                continue
            }
            if k == 0, c == "\"" || c == "'" { quote = c; continue }
            if c == ":" && (k + 1 == chars.count || chars[k + 1] == " ") {
                let key = String(chars[..<k]).trimmingTrailingSpaces()
                if key.isEmpty { return nil }
                let value = String(chars[(k + 1)...]).drop { $0 == " " }
                return (key, String(value))
            }
        }
        return nil
    }

    /// A value on the same line as its key or dash.
    static func inline(_ s: String, line: Int) throws -> PipelineValue {
        if s.hasPrefix("[") {
            guard s.hasSuffix("]") else { throw SyntaxError(line: line, reason: "a flow list must end on its line with ]") }
            let body = String(s.dropFirst().dropLast())
            return .list(try splitFlow(body, line: line).map { try inline($0, line: line) })
        }
        if s.hasPrefix("{") {
            guard s.hasSuffix("}") else { throw SyntaxError(line: line, reason: "a flow mapping must end on its line with }") }
            let body = String(s.dropFirst().dropLast())
            var entries: [(String, PipelineValue)] = []
            for part in try splitFlow(body, line: line) {
                guard let (k, v) = keySplit(part) else {
                    throw SyntaxError(line: line, reason: "expected `key: value` in {…}, got '\(part.prefix(60))'")
                }
                let key = try scalarText(k, line: line)
                if entries.contains(where: { $0.0 == key }) { throw SyntaxError(line: line, reason: "duplicate key '\(key)'") }
                entries.append((key, v.isEmpty ? .null : try inline(v, line: line)))
            }
            return .map(entries)
        }
        return try scalar(s, line: line)
    }

    /// The comma-separated parts of a flow collection's body (commas inside quotes or nested brackets do not
    /// split).
    static func splitFlow(_ body: String, line: Int) throws -> [String] {
        var parts: [String] = []
        var cur = ""
        var quote: Character?
        var depth: [Character] = []
        for c in body {
            if let q = quote {
                if c == q { quote = nil }
                cur.append(c)
            } else if c == "\"" || c == "'", ": [{".contains(cur.last ?? " ") {
                quote = c
                cur.append(c)
            } else if c == "[" || c == "{" {
                depth.append(c == "[" ? "]" : "}")
                cur.append(c)
            } else if c == "]" || c == "}" {
                guard depth.popLast() == c else {
                    throw SyntaxError(line: line, reason: "unbalanced \(c) in a flow collection")
                }
                cur.append(c)
            } else if c == "," && depth.isEmpty {
                parts.append(cur)
                cur = ""
            } else {
                cur.append(c)
            }
        }
        if quote != nil { throw SyntaxError(line: line, reason: "an unterminated quoted string") }
        if !depth.isEmpty { throw SyntaxError(line: line, reason: "an unclosed [ or { in a flow collection") }
        parts.append(cur)
        let trimmed = parts.map { $0.drop { $0 == " " }.trimmingTrailingSpaces() }
        if trimmed.count == 1 && trimmed[0].isEmpty { return [] }
        if let k = trimmed.firstIndex(where: \.isEmpty) {
            if k == trimmed.count - 1 { return Array(trimmed.dropLast()) }  // a trailing comma
            throw SyntaxError(line: line, reason: "an empty entry in a flow collection")
        }
        return trimmed
    }

    static func scalar(_ s: String, line: Int) throws -> PipelineValue {
        if s == "~" || s == "null" || s == "Null" || s == "NULL" { return .null }
        return .scalar(try scalarText(s, line: line))
    }

    static func scalarText(_ s: String, line: Int) throws -> String {
        guard let f = s.first else { return "" }
        switch f {
        case "\"":
            guard s.count >= 2, s.hasSuffix("\"") else { throw SyntaxError(line: line, reason: "an unterminated \"string\"") }
            var out = ""
            var escape = false
            for c in s.dropFirst().dropLast() {
                if escape {
                    switch c {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "\\", "\"", "/": out.append(c)
                    default: throw SyntaxError(line: line, reason: "unsupported escape \\\(c)")
                    }
                    escape = false
                } else if c == "\\" {
                    escape = true
                } else if c == "\"" {
                    throw SyntaxError(line: line, reason: "text after a closing quote")
                } else {
                    out.append(c)
                }
            }
            if escape { throw SyntaxError(line: line, reason: "an unterminated \"string\"") }
            return out
        case "'":
            guard s.count >= 2, s.hasSuffix("'") else { throw SyntaxError(line: line, reason: "an unterminated 'string'") }
            let body = String(s.dropFirst().dropLast())
            if body.replacingOccurrences(of: "''", with: "").contains("'") {
                throw SyntaxError(line: line, reason: "text after a closing quote")
            }
            return body.replacingOccurrences(of: "''", with: "'")
        case "&", "*", "!":
            throw SyntaxError(line: line, reason: "anchors, aliases and tags are not supported")
        case "|", ">":
            throw SyntaxError(line: line, reason: "multi-line scalars (| and >) are not supported: write the value on one line")
        case "@", "`":
            throw SyntaxError(line: line, reason: "a plain value cannot start with \(f): quote it")
        default:
            return s
        }
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}

extension Substring {
    func trimmingTrailingSpaces() -> String { String(self).trimmingTrailingSpaces() }
}
