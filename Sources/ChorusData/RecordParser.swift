import ChorusModel

/// The input formats ingest reads.
public enum InputFormat: String, Sendable {
    case jsonl, csv
}

/// What one input line turned into.
public enum ParseOutcome: Sendable, Equatable {
    case record(Record)
    /// A malformed record: the reason is shown to the user with the file and line.
    case reject(String)
    /// A CSV header line or a blank line: not a record.
    case skip
}

/// Validates and converts input lines into records. Pure: no I/O.
public struct RecordParser: Sendable {
    /// Longest accepted line (1 MiB); longer lines are rejected as "record too large".
    public static let maxLineBytes = 1 << 20
    public static let maxIdBytes = 256
    public static let maxTextBytes = 64 << 10
    /// Largest magnitude of an interaction's `value` (money or stars): larger sums would lose all precision.
    public static let maxValue = 1e12

    enum Field {
        case str(String)
        case num(Double)
        case bool(Bool)
        case list([String])
        case null
        case other(String)
    }

    public let kind: RecordKind
    public let format: InputFormat
    public let mapping: FieldMapping?
    private var header: [String]?
    private var firstLine = true
    /// Replaces every user id (and drops the user's name) with its pseudonym, before a record leaves the client
    /// (docs/security.md, "Pseudonymous ids").
    public var pseudonymizer: Pseudonymizer?

    public init(kind: RecordKind, format: InputFormat, mapping: FieldMapping? = nil) {
        self.kind = kind
        self.format = format
        self.mapping = mapping
    }

    /// Parses one line (without its newline). For CSV the first non-blank line is the header.
    public mutating func parse(_ line: UnsafeBufferPointer<UInt8>) -> ParseOutcome {
        let outcome = parseRecord(line)
        guard let p = pseudonymizer, case let .record(r) = outcome else { return outcome }
        return .record(Self.pseudonymize(r, p))
    }

    /// The record with its user ids replaced by pseudonyms: a user's id (and its `name`, dropped), a content
    /// item's author, an interaction's user, both ends of a follow, and an outcome's user.
    public static func pseudonymize(_ r: Record, _ p: Pseudonymizer) -> Record {
        switch r {
        case var .user(u):
            u.id = p.pseudonym(u.id)
            u.name = ""
            return .user(u)
        case var .content(c):
            if !c.authorId.isEmpty { c.authorId = p.pseudonym(c.authorId) }
            return .content(c)
        case var .interaction(i):
            // An interaction id that spells the user id out would give it away.
            if !i.id.isEmpty, !i.userId.isEmpty, i.id.contains(i.userId) { i.id = p.pseudonym("interaction\u{0}" + i.id) }
            i.userId = p.pseudonym(i.userId)
            return .interaction(i)
        case var .follow(f):
            f.followerId = p.pseudonym(f.followerId)
            f.followeeId = p.pseudonym(f.followeeId)
            return .follow(f)
        case var .outcome(o):
            if !o.user.isEmpty { o.user = p.pseudonym(o.user) }
            return .outcome(o)
        case .spend:
            return r
        }
    }

    private mutating func parseRecord(_ line: UnsafeBufferPointer<UInt8>) -> ParseOutcome {
        var bytes = line
        if let last = bytes.last, last == 0x0D { bytes = UnsafeBufferPointer(rebasing: bytes.dropLast()) }
        if firstLine {
            firstLine = false
            if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
                bytes = UnsafeBufferPointer(rebasing: bytes.dropFirst(3))  // a UTF-8 byte order mark
            }
        }
        if bytes.count > Self.maxLineBytes {
            return .reject("record too large (\(bytes.count) bytes, limit \(Self.maxLineBytes))")
        }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return .skip }
        if let nul = bytes.firstIndex(of: 0) {
            return .reject("NUL byte at column \(nul + 1) (write text without NUL; in JSON a NUL must be escaped)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .reject("invalid UTF-8 at column \(Self.firstInvalidUTF8(bytes) + 1) (save the file as UTF-8)")
        }
        var fields: [String: Field] = [:]
        switch format {
        case .jsonl:
            let obj: [(String, JSONValue)]
            do { obj = try JSONParser.parseObject(bytes) } catch {
                return .reject("bad JSON at column \(error.offset + 1): \(error.reason)")
            }
            for (k, v) in obj { fields[k] = Self.field(v) }
        case .csv:
            let cols: [String]
            do { cols = try CSVLine.split(Substring(text)) } catch {
                return .reject("bad CSV at column \(error.offset): \(error.reason)")
            }
            guard let header else {
                self.header = cols.map { $0.trimmingSpaces() }
                return .skip
            }
            if cols.count != header.count {
                return .reject("expected \(header.count) columns (as in the header), got \(cols.count)")
            }
            for (k, v) in zip(header, cols) where !v.isEmpty { fields[k] = .str(v) }
        }
        if let mapping { fields = Self.apply(mapping, to: fields) }
        do {
            return .record(try build(fields))
        } catch {
            return .reject(error.reason)
        }
    }

    /// The byte offset of the first byte that does not start or continue a valid UTF-8 sequence.
    static func firstInvalidUTF8(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        var i = 0
        while i < b.count {
            let c = b[i]
            let len: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch c {
            case 0x00...0x7F: i += 1; continue
            case 0xC2...0xDF: len = 2
            case 0xE0: len = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: len = 3
            case 0xED: len = 3; hi = 0x9F
            case 0xF0: len = 4; lo = 0x90
            case 0xF1...0xF3: len = 4
            case 0xF4: len = 4; hi = 0x8F
            default: return i
            }
            guard i + len <= b.count else { return i }
            for k in 1..<len {
                let x = b[i + k]
                if k == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF) { return i }
            }
            i += len
        }
        return i
    }

    public mutating func parse(_ line: String) -> ParseOutcome {
        var s = line
        return s.withUTF8 { parse($0) }
    }

    static func field(_ v: JSONValue) -> Field {
        switch v {
        case let .string(s): return .str(s)
        case let .number(d): return .num(d)
        case let .bool(b): return .bool(b)
        case .null: return .null
        case let .array(items):
            var out: [String] = []
            for item in items {
                guard case let .string(s) = item else { return .other("array with non-string items") }
                out.append(s)
            }
            return .list(out)
        case .object: return .other("object")
        }
    }

    static func apply(_ m: FieldMapping, to fields: [String: Field]) -> [String: Field] {
        var out: [String: Field] = [:]
        for (k, v) in fields { out[m.fields?[k] ?? k] = v }
        if let values = m.values {
            for (field, table) in values {
                if case let .str(s)? = out[field], let mapped = table[s] { out[field] = .str(mapped) }
            }
        }
        for (k, v) in m.defaults ?? [:] where out[k] == nil { out[k] = .str(v) }
        return out
    }

    struct Invalid: Error { let reason: String }

    private func build(_ f: [String: Field]) throws(Invalid) -> Record {
        switch kind {
        case .users:
            return .user(UserRecord(
                id: try id(f, "user_id"), channel: try id(f, "channel"),
                country: try optString(f, "country"), language: try optString(f, "language"),
                ageBand: try optString(f, "age_band"), createdAt: try optTime(f, "created_at") ?? 0,
                name: try optString(f, "name")))
        case .content:
            return .content(ContentRecord(
                id: try id(f, "content_id"), authorId: try id(f, "author_id"), channel: try id(f, "channel"),
                mediaType: try optString(f, "media_type"), topics: try list(f, "topics"),
                hashtags: try list(f, "hashtags"), createdAt: try optTime(f, "created_at") ?? 0,
                text: try optString(f, "text", limit: Self.maxTextBytes)))
        case .interactions:
            let user = try id(f, "user_id"), content = try id(f, "content_id")
            let typeName = try id(f, "type")
            guard let type = InteractionKind(name: typeName.lowercased()) else {
                throw Invalid(reason: "unknown interaction type '\(typeName)' "
                              + "(expected view, like, comment, share, click, conversion or rating)")
            }
            let channel = try id(f, "channel")
            guard let ts = try optTime(f, "ts") else { throw Invalid(reason: "missing required field 'ts'") }
            let text = try optString(f, "text", limit: Self.maxTextBytes)
            let value = try optNumber(f, "value") ?? 0
            if abs(value) > Self.maxValue {
                throw Invalid(reason: "field 'value' is \(value), outside -1e12...1e12")
            }
            let given = try optString(f, "interaction_id")
            if given.utf8.count > Self.maxIdBytes || given.utf8.contains(0) {
                throw Invalid(reason: "field 'interaction_id' is too long or holds a NUL byte")
            }
            let iid = given.isEmpty ? Self.derivedInteractionId(user: user, content: content, type: type,
                                                                ts: ts, channel: channel, text: text) : given
            return .interaction(InteractionRecord(id: iid, userId: user, contentId: content, kind: type,
                                                  channel: channel, ts: ts, text: text, value: value))
        case .follows:
            let a = try id(f, "follower_id"), b = try id(f, "followee_id")
            if a == b { throw Invalid(reason: "a user cannot follow itself ('\(a)')") }
            return .follow(FollowRecord(followerId: a, followeeId: b, channel: try id(f, "channel"),
                                        ts: try optTime(f, "ts") ?? 0))
        case .spend:
            return .spend(try spend(f))
        case .outcomes:
            return .outcome(try outcome(f))
        }
    }

    /// An `outcomes` record: campaign, version, arm, user, event, ts, and segment (required on `assigned`), channel
    /// (required on impressions and clicks), value (conversions), count and id (docs/data-format.md).
    private func outcome(_ f: [String: Field]) throws(Invalid) -> OutcomeRecord {
        let campaign = try id(f, "campaign")
        let version = try positiveInteger(f, "version", max: 1_000_000)
        let arm = try id(f, "arm").lowercased()
        guard SpendRecord.arms.contains(arm) else {
            throw Invalid(reason: "unknown arm '\(arm.prefix(40))' (expected treatment or holdout)")
        }
        let user = try id(f, "user_id")
        let eventName = try id(f, "event").lowercased()
        guard let event = OutcomeEvent(rawValue: eventName) else {
            throw Invalid(reason: "unknown event '\(eventName.prefix(40))' (expected assigned, impression, click or conversion)")
        }
        guard let ts = try optTime(f, "ts") else { throw Invalid(reason: "missing required field 'ts'") }
        let channel = try optId(f, "channel")
        if channel.isEmpty && (event == .impression || event == .click) {
            throw Invalid(reason: "missing required field 'channel' (an \(event.rawValue) happens on a channel)")
        }
        var segment: Int?
        if optionalPresent(f, "segment") {
            // A number, or its decimal text.
            let g: Int?
            switch f["segment"] {
            case let .num(d)?: g = d == d.rounded() && abs(d) <= 1_000_000 ? Int(d) : nil
            case let .str(t)?: g = Int(t.trimmingSpaces()).flatMap { abs($0) <= 1_000_000 ? $0 : nil }
            default: g = nil
            }
            guard let g else {
                throw Invalid(reason: "field 'segment' is not a segment number (expected the plan's segment, e.g. 3)")
            }
            segment = g
        } else if event == .assigned {
            throw Invalid(reason: "missing required field 'segment' (an assignment names the plan's segment)")
        }
        let value = try optNumber(f, "value") ?? 0
        try Self.amount(value, "value")
        if value != 0 && event != .conversion {
            throw Invalid(reason: "field 'value' is \(value) on an \(event.rawValue) (only a conversion has a value)")
        }
        let count = optionalPresent(f, "count") ? try positiveInteger(f, "count", max: 1_000_000_000) : 1
        if count != 1 && event == .assigned {
            throw Invalid(reason: "field 'count' is \(count) on an assignment (a user is assigned once)")
        }
        let eid = try optId(f, "event_id")
        return OutcomeRecord(campaign: campaign, version: UInt32(version), arm: arm, segment: segment, user: user,
                             event: event, channel: channel, ts: ts, value: value, count: UInt32(count), id: eid)
    }

    private func optionalPresent(_ f: [String: Field], _ name: String) -> Bool {
        guard let v = f[name] else { return false }
        if case .null = v { return false }
        if case let .str(s) = v, s.trimmingSpaces().isEmpty { return false }
        return true
    }

    /// A required whole number in 1...max (a JSON number or a decimal string).
    private func positiveInteger(_ f: [String: Field], _ name: String, max: Int) throws(Invalid) -> Int {
        guard let v = try optNumber(f, name) else { throw Invalid(reason: "missing required field '\(name)'") }
        guard v == v.rounded(), v >= 1, v <= Double(max) else {
            throw Invalid(reason: "field '\(name)' is \(v) (expected a whole number from 1 to \(max))")
        }
        return Int(v)
    }

    /// A `spend` record: channel, date (YYYY-MM-DD), period (day or week), spend, currency, the outcomes, and the
    /// optional campaign, arm and segment (docs/data-format.md).
    private func spend(_ f: [String: Field]) throws(Invalid) -> SpendRecord {
        let channel = try id(f, "channel")
        let date = try id(f, "date")
        guard SpendRecord.day(of: date) != nil else {
            throw Invalid(reason: "bad date in 'date': '\(date.prefix(40))' (expected YYYY-MM-DD, the period's first "
                          + "day in UTC, from 1990-01-01 to 2099-12-31)")
        }
        let periodText = try optString(f, "period").trimmingSpaces()
        let period: SpendPeriod
        if periodText.isEmpty { period = .day } else {
            guard let p = SpendPeriod(rawValue: periodText.lowercased()) else {
                throw Invalid(reason: "unknown period '\(periodText.prefix(40))' (expected day or week)")
            }
            period = p
        }
        guard let spend = try optNumber(f, "spend") else { throw Invalid(reason: "missing required field 'spend'") }
        try Self.amount(spend, "spend")
        var currency = try optString(f, "currency").trimmingSpaces()
        if currency.isEmpty { currency = "USD" }
        guard currency.utf8.count == 3, currency.utf8.allSatisfy({ (0x41...0x5A).contains($0) }) else {
            throw Invalid(reason: "field 'currency' is '\(currency.prefix(40))' (expected an ISO 4217 code of 3 "
                          + "capital letters, e.g. USD)")
        }
        var outcomes: [Double] = []
        for name in ["impressions", "clicks", "conversions", "revenue"] {
            let v = try optNumber(f, name) ?? 0
            try Self.amount(v, name)
            outcomes.append(v)
        }
        let campaign = try optId(f, "campaign"), segment = try optId(f, "segment")
        var version: UInt32 = 0
        if optionalPresent(f, "version") {
            version = UInt32(try positiveInteger(f, "version", max: 1_000_000))
            if campaign.isEmpty {
                throw Invalid(reason: "field 'version' is \(version) but 'campaign' is missing (a version is a campaign plan's)")
            }
        }
        let arm = try optString(f, "arm").trimmingSpaces().lowercased()
        if !arm.isEmpty && !SpendRecord.arms.contains(arm) {
            throw Invalid(reason: "unknown arm '\(arm.prefix(40))' (expected treatment or holdout, or none)")
        }
        if !arm.isEmpty && campaign.isEmpty {
            throw Invalid(reason: "field 'arm' is '\(arm)' but 'campaign' is missing (an arm belongs to a campaign)")
        }
        return SpendRecord(channel: channel, date: date, period: period, spend: spend, currency: currency,
                           impressions: outcomes[0], clicks: outcomes[1], conversions: outcomes[2],
                           revenue: outcomes[3], campaign: campaign, arm: arm, segment: segment, version: version)
    }

    /// A money amount or a count: finite, never negative, at most `maxValue`.
    static func amount(_ v: Double, _ name: String) throws(Invalid) {
        if v < 0 { throw Invalid(reason: "field '\(name)' is \(v), below 0") }
        if v > Self.maxValue { throw Invalid(reason: "field '\(name)' is \(v), above 1e12") }
    }

    /// An optional id-like string: trimmed, at most 256 bytes, no control characters; "" when missing.
    private func optId(_ f: [String: Field], _ name: String) throws(Invalid) -> String {
        let t = try optString(f, name).trimmingSpaces()
        if t.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw Invalid(reason: "field '\(name)' holds a control character")
        }
        return t
    }

    /// The id given to an interaction that has none: `i-` + FNV-1a 64 (hex) of its fields joined by U+001F.
    public static func derivedInteractionId(user: String, content: String, type: InteractionKind, ts: Int64,
                                            channel: String, text: String) -> String {
        let canon = [user, content, type.name, String(ts), channel, text].joined(separator: "\u{1F}")
        let h = StableHash.fnv1a64(canon)
        let hex = String(h, radix: 16)
        return "i-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    private func id(_ f: [String: Field], _ name: String) throws(Invalid) -> String {
        guard let v = f[name] else { throw Invalid(reason: "missing required field '\(name)'") }
        switch v {
        case let .str(s):
            let t = s.trimmingSpaces()
            if t.isEmpty { throw Invalid(reason: "missing required field '\(name)' (empty)") }
            if t.utf8.count > Self.maxIdBytes {
                throw Invalid(reason: "field '\(name)' is too long (\(t.utf8.count) bytes, limit \(Self.maxIdBytes))")
            }
            if t.unicodeScalars.contains(where: { $0.value < 0x20 }) {
                throw Invalid(reason: "field '\(name)' holds a control character")
            }
            return t
        case .null: throw Invalid(reason: "missing required field '\(name)' (null)")
        default: throw Invalid(reason: "field '\(name)' must be a string, got \(Self.typeName(v))")
        }
    }

    private func optString(_ f: [String: Field], _ name: String, limit: Int = maxIdBytes) throws(Invalid) -> String {
        guard let v = f[name] else { return "" }
        switch v {
        case let .str(s):
            if s.utf8.count > limit {
                throw Invalid(reason: "field '\(name)' is too long (\(s.utf8.count) bytes, limit \(limit))")
            }
            return s
        case .null: return ""
        default: throw Invalid(reason: "field '\(name)' must be a string, got \(Self.typeName(v))")
        }
    }

    private func optNumber(_ f: [String: Field], _ name: String) throws(Invalid) -> Double? {
        guard let v = f[name] else { return nil }
        switch v {
        case let .num(d): return d
        case let .str(s):
            guard let d = Double(s.trimmingSpaces()), d.isFinite else {
                throw Invalid(reason: "field '\(name)' must be a number, got '\(s.prefix(40))'")
            }
            return d
        case .null: return nil
        default: throw Invalid(reason: "field '\(name)' must be a number, got \(Self.typeName(v))")
        }
    }

    private func optTime(_ f: [String: Field], _ name: String) throws(Invalid) -> Int64? {
        guard let v = f[name] else { return nil }
        switch v {
        case let .num(d): return try Self.time(number: d, name: name)
        case let .str(s):
            let t = s.trimmingSpaces()
            if let d = Timestamp.numericText(t) { return try Self.time(number: d, name: name) }
            guard let v = Timestamp.parse(t) else {
                throw Invalid(reason: "bad timestamp in '\(name)': '\(s.prefix(40))' "
                              + "(expected ISO 8601 like 2025-03-01T14:05:09Z, or unix seconds)")
            }
            return v
        case .null: return nil
        default: throw Invalid(reason: "bad timestamp in '\(name)': got \(Self.typeName(v))")
        }
    }

    static func time(number d: Double, name: String) throws(Invalid) -> Int64 {
        switch Timestamp.checkedNumber(d) {
        case let .success(t): return t
        case .failure(.notFinite):
            throw Invalid(reason: "bad timestamp in '\(name)': \(d) is not a finite number")
        case .failure(.outOfRange):
            throw Invalid(reason: "bad timestamp in '\(name)': \(d) is outside \(Timestamp.rangeText) "
                          + "(unix seconds, or milliseconds when above 10^11)")
        }
    }

    private func list(_ f: [String: Field], _ name: String) throws(Invalid) -> [String] {
        guard let v = f[name] else { return [] }
        let items: [String]
        switch v {
        case let .list(l): items = l
        case let .str(s): items = s.split(separator: "|").map { String($0).trimmingSpaces() }
        case .null: return []
        default: throw Invalid(reason: "field '\(name)' must be an array of strings, got \(Self.typeName(v))")
        }
        let cleaned = items.filter { !$0.isEmpty }
        if cleaned.count > 64 { throw Invalid(reason: "field '\(name)' has more than 64 items") }
        if cleaned.contains(where: { $0.utf8.count > Self.maxIdBytes }) {
            throw Invalid(reason: "an item of '\(name)' is longer than \(Self.maxIdBytes) bytes")
        }
        return cleaned
    }

    static func typeName(_ v: Field) -> String {
        switch v {
        case .str: return "string"
        case .num: return "number"
        case .bool: return "boolean"
        case .list: return "array"
        case .null: return "null"
        case let .other(s): return s
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

extension RecordKind {
    /// The kind a file name implies: users*, content*, interactions*, follows*, spend* (case-insensitive).
    public static func infer(fromFileName name: String) -> RecordKind? {
        let n = name.lowercased()
        if n.hasPrefix("spend") { return .spend }
        if n.hasPrefix("outcome") { return .outcomes }
        if n.hasPrefix("users") || n.hasPrefix("user") { return .users }
        if n.hasPrefix("content") || n.hasPrefix("posts") { return .content }
        if n.hasPrefix("interactions") || n.hasPrefix("interaction") { return .interactions }
        if n.hasPrefix("follows") || n.hasPrefix("follow") || n.hasPrefix("edges") { return .follows }
        return nil
    }
}
