import ChorusData
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Testing

/// Issue 15's `spend` record kind: parsing and validation (JSONL and CSV), dates, identity, placement and the
/// wire form.
@Suite struct SpendRecordTests {
    static func record(_ o: ParseOutcome) -> SpendRecord? {
        if case let .record(.spend(s)) = o { return s }
        return nil
    }

    @Test func aFullLineAndItsDefaults() throws {
        var p = RecordParser(kind: .spend, format: .jsonl)
        let full = try #require(Self.record(p.parse(#"{"channel":"tiktok","date":"2025-09-01","period":"week","spend":1234.5,"currency":"EUR","impressions":100000,"clicks":"2000","conversions":40,"revenue":1800.25,"campaign":"autumn-25","arm":"Holdout","segment":"night-gamers"}"#)))
        #expect(full == SpendRecord(channel: "tiktok", date: "2025-09-01", period: .week, spend: 1234.5, currency: "EUR",
                                    impressions: 100_000, clicks: 2000, conversions: 40, revenue: 1800.25,
                                    campaign: "autumn-25", arm: "holdout", segment: "night-gamers"))
        // Only channel, date and spend are required: a day, USD, outcomes 0, business as usual.
        let minimal = try #require(Self.record(p.parse(#"{"channel":" x ","date":"2024-02-29","spend":0}"#)))
        #expect(minimal == SpendRecord(channel: "x", date: "2024-02-29", period: .day, spend: 0))
        #expect(minimal.currency == "USD" && minimal.campaign.isEmpty && minimal.arm.isEmpty)
        #expect(minimal.startTime == 1_709_164_800)  // 2024-02-29T00:00:00Z
    }

    @Test func csvGivesTheSameRecordAsJSONL() throws {
        var j = RecordParser(kind: .spend, format: .jsonl)
        var c = RecordParser(kind: .spend, format: .csv)
        #expect(c.parse("channel,date,period,spend,clicks,conversions,revenue,campaign,arm") == .skip)
        let a = j.parse(#"{"channel":"weibo","date":"2025-01-06","period":"week","spend":"500.5","clicks":30,"conversions":2,"revenue":90,"campaign":"c1","arm":"treatment"}"#)
        let b = c.parse("weibo,2025-01-06,week,500.5,30,2,90,c1,treatment")
        #expect(Self.record(a) != nil && a == b)
        // Empty cells are missing: the defaults apply.
        #expect(Self.record(c.parse("weibo,2025-01-06,,7,,,,,")) == SpendRecord(channel: "weibo", date: "2025-01-06", spend: 7))
        #expect(c.parse("weibo,2025-01-06,week") == .reject("expected 9 columns (as in the header), got 3"))
    }

    @Test func everyBadLineIsRejectedWithItsReason() {
        let cases: [(String, String)] = [
            (#"{"date":"2025-09-01","spend":1}"#, "missing required field 'channel'"),
            (#"{"channel":"x","spend":1}"#, "missing required field 'date'"),
            (#"{"channel":"x","date":"2025-09-01"}"#, "missing required field 'spend'"),
            (#"{"channel":"x","date":"2025-9-1","spend":1}"#, "bad date in 'date': '2025-9-1' (expected YYYY-MM-DD, the period's first day in UTC, from 1990-01-01 to 2099-12-31)"),
            (#"{"channel":"x","date":"2025-02-29","spend":1}"#, "bad date in 'date': '2025-02-29' (expected YYYY-MM-DD, the period's first day in UTC, from 1990-01-01 to 2099-12-31)"),
            (#"{"channel":"x","date":"1989-12-31","spend":1}"#, "bad date in 'date': '1989-12-31' (expected YYYY-MM-DD, the period's first day in UTC, from 1990-01-01 to 2099-12-31)"),
            (#"{"channel":"x","date":"2025-09-01T00:00:00Z","spend":1}"#, "bad date in 'date': '2025-09-01T00:00:00Z' (expected YYYY-MM-DD, the period's first day in UTC, from 1990-01-01 to 2099-12-31)"),
            (#"{"channel":"x","date":20250901,"spend":1}"#, "field 'date' must be a string, got number"),
            (#"{"channel":"x","date":"2025-09-01","period":"month","spend":1}"#, "unknown period 'month' (expected day or week)"),
            (#"{"channel":"x","date":"2025-09-01","spend":-5}"#, "field 'spend' is -5.0, below 0"),
            (#"{"channel":"x","date":"2025-09-01","spend":"lots"}"#, "field 'spend' must be a number, got 'lots'"),
            (#"{"channel":"x","date":"2025-09-01","spend":true}"#, "field 'spend' must be a number, got boolean"),
            (#"{"channel":"x","date":"2025-09-01","spend":2e12}"#, "field 'spend' is 2000000000000.0, above 1e12"),
            (#"{"channel":"x","date":"2025-09-01","spend":1,"clicks":-1}"#, "field 'clicks' is -1.0, below 0"),
            (#"{"channel":"x","date":"2025-09-01","spend":1,"revenue":"inf"}"#, "field 'revenue' must be a number, got 'inf'"),
            (#"{"channel":"x","date":"2025-09-01","spend":1,"currency":"usd"}"#, "field 'currency' is 'usd' (expected an ISO 4217 code of 3 capital letters, e.g. USD)"),
            (#"{"channel":"x","date":"2025-09-01","spend":1,"currency":"DOLLARS"}"#, "field 'currency' is 'DOLLARS' (expected an ISO 4217 code of 3 capital letters, e.g. USD)"),
            (#"{"channel":"x","date":"2025-09-01","spend":1,"campaign":"c1","arm":"control"}"#, "unknown arm 'control' (expected treatment or holdout, or none)"),
            (#"{"channel":"x","date":"2025-09-01","spend":1,"arm":"holdout"}"#, "field 'arm' is 'holdout' but 'campaign' is missing (an arm belongs to a campaign)"),
            (#"{"channel":"x","date":"2025-09-01","spend":1,"segment":"a\u0001b"}"#, "field 'segment' holds a control character"),
            (#"{"channel":"x","date":"2025-09-01","spend":1,"campaign":"a\u0000b"}"#, "field 'campaign' holds a control character"),
            (#"{"channel":"x","date":"2025-09-01","spend":1e999}"#, ""),  // bad JSON: the reason comes from the JSON reader
        ]
        for (line, reason) in cases {
            var p = RecordParser(kind: .spend, format: .jsonl)
            let out = p.parse(line)
            guard case let .reject(r) = out else { Issue.record("accepted: \(line)"); continue }
            if reason.isEmpty { #expect(r.hasPrefix("bad JSON"), "\(line): \(r)") } else { #expect(r == reason, "\(line)") }
        }
        var c = RecordParser(kind: .spend, format: .csv)
        _ = c.parse("channel,date,spend")
        #expect(c.parse("x,2025-09-01,nan") == .reject("field 'spend' must be a number, got 'nan'"))
        #expect(c.parse("x,31/12/2025,1") == .reject("bad date in 'date': '31/12/2025' (expected YYYY-MM-DD, the period's first day in UTC, from 1990-01-01 to 2099-12-31)"))
    }

    @Test func fieldMappingRenamesAndFillsDefaults() throws {
        let m = FieldMapping(name: "ads", fields: ["cost": "spend", "day": "date", "network": "channel"],
                             values: ["channel": ["TT": "tiktok"]], defaults: ["currency": "CNY", "period": "week"])
        var p = RecordParser(kind: .spend, format: .csv, mapping: m)
        _ = p.parse("network,day,cost,conversions")
        let r = try #require(Self.record(p.parse("TT,2025-09-08,99.9,3")))
        #expect(r == SpendRecord(channel: "tiktok", date: "2025-09-08", period: .week, spend: 99.9, currency: "CNY",
                                 conversions: 3))
    }

    @Test func kindFromFileName() {
        #expect(RecordKind.infer(fromFileName: "spend.jsonl") == .spend)
        #expect(RecordKind.infer(fromFileName: "spend_2025_weekly.csv") == .spend)
        #expect(RecordKind(rawValue: "spend") == .spend)
    }

    @Test func datesRoundTripOverTheWholeRange() {
        #expect(SpendRecord.day(of: "1990-01-01") == 7305)
        #expect(SpendRecord.day(of: "2025-09-01") == Int64(20332))  // 1_756_684_800 / 86_400
        #expect(SpendRecord.day(of: "2100-01-01") == nil && SpendRecord.day(of: "2000-02-30") == nil)
        #expect(SpendRecord.day(of: "2000-02-29") != nil && SpendRecord.day(of: "1900-02-29") == nil)
        var d: Int64 = 7305
        while d < 47482 {  // 1990-01-01 ..< 2100-01-01, every day
            let text = SpendRecord.date(ofDay: d)
            if SpendRecord.day(of: text) != d { Issue.record("day \(d) -> \(text)"); break }
            d += 1
        }
    }

    @Test func identityPlacementAndWire() throws {
        let a = SpendRecord(channel: "x", date: "2025-09-01", period: .week, spend: 10, campaign: "c1", arm: "holdout",
                            segment: "s1")
        var b = a
        b.spend = 11  // another version of the same record
        var c = a
        c.arm = "treatment"  // another record
        #expect(a.identityKey == b.identityKey && a.identityKey != c.identityKey)
        #expect(a.identityKey == "x\u{0}2025-09-01\u{0}week\u{0}c1\u{0}holdout\u{0}s1")
        let placement = Placement(partitionCount: 64)
        let puts = try Wire.puts(for: .spend(a), placement: placement)
        #expect(puts.count == 1 && puts[0].role == .spend && puts[0].counted)
        #expect(puts[0].partition == UInt32(StableHash.fnv1a64(Array(a.identityKey.utf8)) % 64))
        #expect(puts[0].keyID == Data(a.identityKey.utf8))
        #expect(ShardKeys.role(.spend) == 8)
        let back = Wire.decode(try Chorus_V1_Spend(serializedBytes: puts[0].value))
        #expect(back == a)
        var m = Wire.encode(a)
        m.period = .unspecified
        #expect(Wire.decode(m) == nil)
    }
}
