import ChorusData
import ChorusModel
import Testing

@Suite struct ParsingTests {
    @Test func jsonObjects() throws {
        let f = try JSONParser.parseObject(#"{"a":"x\"y\u00e9\ud83d\ude00","b":-1.5e2,"c":[true,false,null],"d":{}}"#)
        #expect(f.map(\.0) == ["a", "b", "c", "d"])
        #expect(f[0].1 == .string("x\"yé😀"))
        #expect(f[1].1 == .number(-150))
        #expect(f[2].1 == .array([.bool(true), .bool(false), .null]))
    }

    @Test(arguments: [
        (#"{"a":1"#, "unterminated object"),
        (#"{"a":tru}"#, "invalid literal"),
        (#"[1,2]"#, "expected a JSON object '{'"),
        (#"{"a":1} x"#, "unexpected text after the JSON object"),
        (#"{"a":"\x"}"#, "invalid escape '\\x'"),
        (#"{"a":01.}"#, "invalid number"),
    ])
    func jsonErrors(_ input: String, _ reason: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parseObject(input) }
        do { _ = try JSONParser.parseObject(input) } catch { #expect(error.reason == reason) }
    }

    @Test func csvSplit() throws {
        #expect(try CSVLine.split("a,b,,c") == ["a", "b", "", "c"])
        #expect(try CSVLine.split(#""x,y","say ""hi""",z"#) == ["x,y", "say \"hi\"", "z"])
        #expect(throws: JSONSyntaxError.self) { try CSVLine.split(#""open,b"#) }
    }

    @Test func timestamps() {
        #expect(Timestamp.parse("2025-09-01T00:00:00Z") == 1_756_684_800)
        #expect(Timestamp.parse("2025-09-01T08:00:00+08:00") == 1_756_684_800)
        #expect(Timestamp.parse("2025-09-01 00:00:00") == 1_756_684_800)
        #expect(Timestamp.parse("2025-09-01T00:00:00.250Z") == 1_756_684_800)
        #expect(Timestamp.parse("1756684800") == 1_756_684_800)
        #expect(Timestamp.parse("1756684800000") == 1_756_684_800)  // milliseconds
        #expect(Timestamp.parse("2025-02-30T00:00:00Z") == nil)
        #expect(Timestamp.parse("yesterday") == nil)
        #expect(Timestamp.parse("1899-01-01T00:00:00Z") == nil)
        #expect(Timestamp.iso(1_756_684_800) == "2025-09-01T00:00:00Z")
    }

    @Test func validInteraction() {
        var p = RecordParser(kind: .interactions, format: .jsonl)
        let r = p.parse(#"{"interaction_id":"i1","user_id":"u1","content_id":"c1","type":"like","channel":"x","ts":"2025-09-01T10:00:00Z"}"#)
        #expect(r == .record(.interaction(InteractionRecord(id: "i1", userId: "u1", contentId: "c1", kind: .like,
                                                             channel: "x", ts: 1_756_720_800))))
    }

    @Test func derivedIdIsStable() {
        var p = RecordParser(kind: .interactions, format: .jsonl)
        let line = #"{"user_id":"u1","content_id":"c1","type":"view","channel":"x","ts":1756720800}"#
        guard case let .record(.interaction(a)) = p.parse(line), case let .record(.interaction(b)) = p.parse(line) else {
            Issue.record("not parsed"); return
        }
        #expect(a.id == b.id)
        #expect(a.id.hasPrefix("i-") && a.id.count == 18)
    }

    @Test(arguments: [
        (#"{"user_id":"u1","content_id":"c1","type":"like","channel":"x"}"#, "missing required field 'ts'"),
        (#"{"user_id":7,"content_id":"c1","type":"like","channel":"x","ts":1756720800}"#,
         "field 'user_id' must be a string, got number"),
        (#"{"user_id":"u1","content_id":"c1","type":"poke","channel":"x","ts":1756720800}"#,
         "unknown interaction type 'poke' (expected view, like, comment, share, click, conversion or rating)"),
        (#"{"user_id":"u1","content_id":"c1","type":"like","channel":"x","ts":"tomorrow"}"#,
         "bad timestamp in 'ts': 'tomorrow' (expected ISO 8601 like 2025-03-01T14:05:09Z, or unix seconds)"),
        (#"{"user_id":"","content_id":"c1","type":"like","channel":"x","ts":1756720800}"#,
         "missing required field 'user_id' (empty)"),
        (#"{"user_id":"u1","#, "bad JSON at column 17: expected a field name in quotes"),
    ])
    func rejects(_ line: String, _ reason: String) {
        var p = RecordParser(kind: .interactions, format: .jsonl)
        #expect(p.parse(line) == .reject(reason))
    }

    @Test func invalidUTF8AndSize() {
        var p = RecordParser(kind: .users, format: .jsonl)
        let bad: [UInt8] = Array(#"{"user_id":""#.utf8) + [0xFF, 0xFE] + Array(#"","channel":"x"}"#.utf8)
        #expect(bad.withUnsafeBufferPointer { p.parse($0) }
                == .reject("invalid UTF-8 at column 13 (save the file as UTF-8)"))
        let big = #"{"user_id":"u","channel":"x","name":""# + String(repeating: "a", count: RecordParser.maxLineBytes) + "\"}"
        guard case let .reject(reason) = p.parse(big) else { Issue.record("accepted a huge line"); return }
        #expect(reason.hasPrefix("record too large"))
    }

    @Test func csvWithHeaderAndMapping() {
        let mapping = FieldMapping(name: "weibo", fields: ["uid": "user_id", "mid": "content_id", "action": "type",
                                                           "time": "ts"],
                                   values: ["type": ["repost": "share"]], defaults: ["channel": "weibo"])
        var p = RecordParser(kind: .interactions, format: .csv, mapping: mapping)
        #expect(p.parse("uid,mid,action,time") == .skip)
        guard case let .record(.interaction(i)) = p.parse("u9,c3,repost,2025-09-02T01:02:03Z") else {
            Issue.record("not parsed"); return
        }
        #expect(i.userId == "u9" && i.contentId == "c3" && i.kind == .share && i.channel == "weibo")
        #expect(p.parse("u9,c3") == .reject("expected 4 columns (as in the header), got 2"))
    }

    @Test func contentListsFromJSONAndCSV() {
        var j = RecordParser(kind: .content, format: .jsonl)
        var c = RecordParser(kind: .content, format: .csv)
        _ = c.parse("content_id,author_id,channel,topics,hashtags")
        let a = j.parse(##"{"content_id":"c1","author_id":"u1","channel":"x","topics":["a","b"],"hashtags":["#t"]}"##)
        let b = c.parse("c1,u1,x,a|b,#t")
        #expect(a == b)
        #expect(j.parse(#"{"content_id":"c1","author_id":"u1","channel":"x","topics":5}"#)
                == .reject("field 'topics' must be an array of strings, got number"))
    }

    @Test func kindFromFileName() {
        #expect(RecordKind.infer(fromFileName: "users.jsonl") == .users)
        #expect(RecordKind.infer(fromFileName: "interactions_weibo.csv") == .interactions)
        #expect(RecordKind.infer(fromFileName: "follows.jsonl") == .follows)
        #expect(RecordKind.infer(fromFileName: "data.jsonl") == nil)
        #expect(Glob.matches("weibo_*.csv", "weibo_2025.csv"))
        #expect(!Glob.matches("weibo_*.csv", "x_2025.csv"))
    }

    // MARK: issue 11: numbers that must never trap, BOMs, NULs, fractional seconds

    /// Every numeric field of every record kind, fed hostile numbers in JSON and CSV: each line is either a record
    /// or a reject with a reason, never a trap (the parser runs in-process here, so a trap fails the whole run).
    @Test func numericFieldsFuzz() {
        let hostile = ["1e30", "-1e19", "99999999999999999999999", "-99999999999999999999999", "1e308", "-1e308",
                       "1e400", "NaN", "nan", "inf", "-inf", "Infinity", "1756735509.5", "1756735509.999999",
                       "-1756735509", "0", "-0", "0.5", "1e11", "1.0000001e11", "9.2233720368547758e18",
                       "-9.2233720368547758e18", "1.8446744073709552e19", "4102444800", "4102444801",
                       "631151999", "631152000", "1.7e9", "1.7E+9", "17e8", "0x10", "1_000", "١٢٣",
                       "1756735509000", "1756735509000.5", "-1756735509000", "1e-300", "5e-324", ".5", "5.", "+1.7e9"]
        // (kind, line template, numeric fields). The template's {v} is replaced by the value, raw and as a string.
        let kinds: [(RecordKind, [String: String], [String])] = [
            (.users, ["user_id": "\"u1\"", "channel": "\"x\""], ["created_at"]),
            (.content, ["content_id": "\"c1\"", "author_id": "\"u1\"", "channel": "\"x\""], ["created_at"]),
            (.interactions, ["user_id": "\"u1\"", "content_id": "\"c1\"", "type": "\"like\"", "channel": "\"x\"",
                             "ts": "1756720800"], ["ts", "value"]),
            (.follows, ["follower_id": "\"u1\"", "followee_id": "\"u2\"", "channel": "\"x\""], ["ts"]),
            (.spend, ["channel": "\"x\"", "date": "\"2025-09-01\"", "spend": "10"],
             ["spend", "impressions", "clicks", "conversions", "revenue"]),
        ]
        var outcomes = 0
        for (kind, base, numeric) in kinds {
            for field in numeric {
                for v in hostile {
                    for quoted in [false, true] {
                        var f = base
                        f[field] = quoted ? "\"\(v)\"" : v
                        let json = "{" + f.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }
                            .joined(separator: ",") + "}"
                        var p = RecordParser(kind: kind, format: .jsonl)
                        switch p.parse(json) {
                        case let .record(r): outcomes += 1; Self.checkInRange(r)
                        case let .reject(reason): outcomes += 1; #expect(reason.contains(field) || reason.hasPrefix("bad JSON"))
                        case .skip: Issue.record("skipped: \(json)")
                        }
                    }
                    var c = RecordParser(kind: kind, format: .csv)
                    var f = base.mapValues { $0.replacingOccurrences(of: "\"", with: "") }
                    f[field] = v
                    let keys = f.keys.sorted()
                    _ = c.parse(keys.joined(separator: ","))
                    switch c.parse(keys.map { f[$0]! }.joined(separator: ",")) {
                    case let .record(r): outcomes += 1; Self.checkInRange(r)
                    case let .reject(reason): outcomes += 1; #expect(reason.contains(field))
                    case .skip: Issue.record("skipped CSV row for \(field)=\(v)")
                    }
                }
            }
        }
        #expect(outcomes == 10 * hostile.count * 3)
    }

    static func checkInRange(_ r: Record) {
        let range = Timestamp.minimum...Timestamp.maximum
        switch r {
        case let .user(u): #expect(u.createdAt == 0 || range.contains(u.createdAt))
        case let .content(c): #expect(c.createdAt == 0 || range.contains(c.createdAt))
        case let .interaction(i): #expect(range.contains(i.ts) && i.value.isFinite && abs(i.value) <= RecordParser.maxValue)
        case let .follow(f): #expect(f.ts == 0 || range.contains(f.ts))
        case let .spend(s):
            for v in [s.spend, s.impressions, s.clicks, s.conversions, s.revenue] {
                #expect(v.isFinite && v >= 0 && v <= RecordParser.maxValue)
            }
        case let .outcome(o): #expect(range.contains(o.ts) && o.value.isFinite && abs(o.value) <= RecordParser.maxValue)
        }
    }

    @Test func timestampNumbers() {
        #expect(Timestamp.fromNumber(1e30) == nil)
        #expect(Timestamp.fromNumber(-1e19) == nil)
        #expect(Timestamp.fromNumber(.nan) == nil)
        #expect(Timestamp.fromNumber(1_756_735_509.5) == 1_756_735_509)      // fractional seconds are dropped
        #expect(Timestamp.fromNumber(1_756_735_509_500.0) == 1_756_735_509)  // milliseconds
        #expect(Timestamp.fromNumber(700_000_000) == 700_000_000)            // 1992: inside 1990-2100
        #expect(Timestamp.fromNumber(631_151_999) == nil)
        #expect(Timestamp.parse("1756735509.5") == 1_756_735_509)
        #expect(Timestamp.parse("99999999999999999999999") == nil)
        #expect(Timestamp.parse("2025-03-01") != nil)
        var p = RecordParser(kind: .interactions, format: .jsonl)
        #expect(p.parse(#"{"user_id":"u1","content_id":"c1","type":"like","channel":"x","ts":1e30}"#)
                == .reject("bad timestamp in 'ts': 1e+30 is outside 1990-01-01 to 2100-01-01 "
                           + "(unix seconds, or milliseconds when above 10^11)"))
    }

    @Test func byteOrderMarkIsDropped() {
        var j = RecordParser(kind: .users, format: .jsonl)
        #expect(j.parse("\u{FEFF}" + #"{"user_id":"u1","channel":"x"}"#)
                == .record(.user(UserRecord(id: "u1", channel: "x"))))
        var c = RecordParser(kind: .users, format: .csv)
        #expect(c.parse("\u{FEFF}user_id,channel") == .skip)
        #expect(c.parse("u1,x") == .record(.user(UserRecord(id: "u1", channel: "x"))))
    }

    @Test func nulBytesAreRejectedInBothFormats() {
        var j = RecordParser(kind: .users, format: .jsonl)
        var c = RecordParser(kind: .users, format: .csv)
        _ = c.parse("user_id,channel,name")
        let jl: [UInt8] = Array(#"{"user_id":"u1","channel":"x","name":"a"#.utf8) + [0] + Array(#""}"#.utf8)
        let cl: [UInt8] = Array("u1,x,a".utf8) + [0]
        #expect(jl.withUnsafeBufferPointer { j.parse($0) } == .reject(
            "NUL byte at column 40 (write text without NUL; in JSON a NUL must be escaped)"))
        #expect(cl.withUnsafeBufferPointer { c.parse($0) } == .reject(
            "NUL byte at column 7 (write text without NUL; in JSON a NUL must be escaped)"))
    }
}
