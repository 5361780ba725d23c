import ChorusData
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Testing

/// Issue 16's `outcomes` record kind: parsing and its rules, the check against the stored plans (CampaignCatalog),
/// identity and placement by user, and the campaign simulator's model.
@Suite struct OutcomeRecordTests {
    static func record(_ o: ParseOutcome) -> OutcomeRecord? {
        if case let .record(.outcome(r)) = o { return r }
        return nil
    }

    static func reason(_ o: ParseOutcome) -> String {
        if case let .reject(r) = o { return r }
        return ""
    }

    @Test func linesParseWithTheirRules() throws {
        var p = RecordParser(kind: .outcomes, format: .jsonl)
        let a = try #require(Self.record(p.parse(#"{"campaign":"w","version":2,"arm":"Holdout","segment":3,"user_id":"u1","event":"assigned","channel":"x","ts":"2026-01-05T09:12:00Z"}"#)))
        #expect(a == OutcomeRecord(campaign: "w", version: 2, arm: "holdout", segment: 3, user: "u1", event: .assigned, channel: "x", ts: 1_767_604_320))
        // A segment as text, a count, a conversion's value.
        #expect(Self.record(p.parse(#"{"campaign":"w","version":"1","arm":"treatment","segment":"-1","user_id":"u1","event":"assigned","ts":1759795060}"#))?.segment == -1)
        #expect(Self.record(p.parse(#"{"campaign":"w","version":1,"arm":"treatment","user_id":"u1","event":"impression","channel":"x","ts":1759795060,"count":4}"#))?.count == 4)
        #expect(Self.record(p.parse(#"{"campaign":"w","version":1,"arm":"treatment","user_id":"u1","event":"CONVERSION","ts":1759795060,"value":"19.90"}"#))?.value == 19.9)
        // The rules.
        let bad: [(String, String)] = [
            (#"{"campaign":"w","version":1,"arm":"treatment","user_id":"u1","event":"assigned","ts":1759795060}"#, "missing required field 'segment'"),
            (#"{"campaign":"w","version":1,"arm":"treatment","user_id":"u1","event":"impression","ts":1759795060}"#, "missing required field 'channel'"),
            (#"{"campaign":"w","version":1,"arm":"treatment","user_id":"u1","event":"click","channel":"x","ts":1759795060,"value":3}"#, "field 'value' is 3.0 on an click"),
            (#"{"campaign":"w","version":0,"arm":"treatment","user_id":"u1","event":"click","channel":"x","ts":1759795060}"#, "field 'version' is 0.0"),
            (#"{"campaign":"w","version":1.5,"arm":"treatment","user_id":"u1","event":"click","channel":"x","ts":1759795060}"#, "field 'version' is 1.5"),
            (#"{"campaign":"w","version":1,"arm":"control","user_id":"u1","event":"click","channel":"x","ts":1759795060}"#, "unknown arm 'control'"),
            (#"{"campaign":"w","version":1,"arm":"treatment","user_id":"u1","event":"view","ts":1759795060}"#, "unknown event 'view'"),
            (#"{"campaign":"w","version":1,"arm":"treatment","segment":2,"user_id":"u1","event":"assigned","ts":1759795060,"count":2}"#, "field 'count' is 2 on an assignment"),
            (#"{"campaign":"w","version":1,"arm":"treatment","user_id":"u1","event":"conversion","ts":1759795060,"value":-1}"#, "field 'value' is -1.0, below 0"),
            (#"{"campaign":"w","version":1,"arm":"treatment","segment":"two","user_id":"u1","event":"assigned","ts":1759795060}"#, "field 'segment' is not a segment number"),
            (#"{"version":1,"arm":"treatment","user_id":"u1","event":"click","channel":"x","ts":1759795060}"#, "missing required field 'campaign'"),
        ]
        for (line, why) in bad { #expect(Self.reason(p.parse(line)).hasPrefix(why), "\(line): \(Self.reason(p.parse(line)))") }
        // CSV gives the same record; the file name gives the kind.
        var c = RecordParser(kind: .outcomes, format: .csv)
        #expect(c.parse("campaign,version,arm,segment,user_id,event,channel,ts,value,count") == .skip)
        #expect(Self.record(c.parse("w,2,holdout,3,u1,assigned,x,2026-01-05T09:12:00Z,,")) == a)
        #expect(RecordKind.infer(fromFileName: "outcomes-2026-01.jsonl") == .outcomes)
    }

    @Test func theCatalogRejectsWhatNoStoredPlanHas() {
        let catalog = CampaignCatalog(campaigns: ["w": [1: .init(segments: [1, 3], channels: ["x", "tiktok"]),
                                                        2: .init(segments: [3], channels: ["x"])]])
        func o(_ campaign: String = "w", _ version: UInt32 = 1, _ arm: String = "treatment", _ segment: Int? = 3,
               _ channel: String = "x") -> Record {
            .outcome(OutcomeRecord(campaign: campaign, version: version, arm: arm, segment: segment, user: "u", event: .assigned, channel: channel, ts: 1))
        }
        #expect(catalog.problem(with: o()) == nil)
        #expect(catalog.problem(with: o("w", 1, "treatment", nil, "")) == nil)
        #expect(catalog.problem(with: o("nope"))?.hasPrefix("unknown campaign 'nope'") == true)
        #expect(catalog.problem(with: o("w", 3)) == "campaign 'w' has no plan version 3 (versions: 1, 2)")
        #expect(catalog.problem(with: o("w", 2, "treatment", 1))?.hasPrefix("campaign 'w' v2 has no segment 1") == true)
        #expect(catalog.problem(with: o("w", 2, "treatment", 3, "tiktok"))?.hasPrefix("campaign 'w' v2 does not run on channel 'tiktok'") == true)
        #expect(catalog.problem(with: o("w", 1, "control"))?.hasPrefix("unknown arm 'control'") == true)
        // Spend: business as usual is never checked; a campaign's needs a version, its arm may be left out.
        #expect(catalog.problem(with: .spend(SpendRecord(channel: "weibo", date: "2025-01-01", spend: 1))) == nil)
        #expect(catalog.problem(with: .spend(SpendRecord(channel: "x", date: "2025-01-01", spend: 1, campaign: "w"))) == "campaign 'w' needs its plan version (field 'version')")
        #expect(catalog.problem(with: .spend(SpendRecord(channel: "x", date: "2025-01-01", spend: 1, campaign: "w", version: 2))) == nil)
        #expect(catalog.problem(with: .spend(SpendRecord(channel: "x", date: "2025-01-01", spend: 1, campaign: "w", segment: "fans", version: 2)))?
            .contains("not a segment number") == true)
        // Other kinds pass.
        #expect(catalog.problem(with: .user(UserRecord(id: "u", channel: "x"))) == nil)
    }

    @Test func anOutcomeIsPlacedByItsUserAndItsIdentityKeepsEventsApart() throws {
        let placement = Placement(partitionCount: 64)
        let r = OutcomeRecord(campaign: "w", version: 1, arm: "treatment", user: "u0000077", event: .impression, channel: "x", ts: 99, count: 4)
        let puts = try Wire.puts(for: .outcome(r), placement: placement)
        #expect(puts.count == 1 && puts[0].role == .outcome && puts[0].counted)
        #expect(puts[0].partition == placement.partition(of: "u0000077"))
        #expect(puts[0].keyID == Data(r.identityKey.utf8) && r.identityKey.hasPrefix("u0000077\u{0}w\u{0}1\u{0}impression"))
        #expect(Wire.decode(try Chorus_V1_Outcome(serializedBytes: puts[0].value)) == r)
        var later = r
        later.ts = 100
        #expect(later.identityKey != r.identityKey)
        // The spend identity gains the version only when it is not 0: business-as-usual keys stay as they were.
        #expect(SpendRecord(channel: "x", date: "2025-01-01", spend: 1).identityKey == "x\u{0}2025-01-01\u{0}day\u{0}\u{0}\u{0}")
        #expect(SpendRecord(channel: "x", date: "2025-01-01", spend: 1, campaign: "w", version: 2).identityKey.hasSuffix("\u{0}2"))
    }

    @Test func theSimulatorPlantsItsLiftAndIsDeterministic() {
        var sim = CampaignSimulator(campaign: "w", version: 1, firstDay: 20_000, lastDay: 20_020)
        sim.budget = ["x": 2100, "tiktok": 4200]
        sim.defaultBaseRate = 0.1
        sim.lifts = ["1:*": 1.0]
        sim.defaultLift = 0
        let members = (0..<4000).map { i in
            CampaignSimulator.Member(user: "u\(i)", segment: i % 2, channel: i % 3 == 0 ? "x" : "tiktok", holdout: i % 4 < 2)
        }
        let out = sim.simulate(members)
        #expect(out.outcomes == sim.simulate(members).outcomes && out.interactions == sim.simulate(members).interactions)
        let lines = out.outcomes.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.filter { $0["event"] as? String == "assigned" }.count == 4000)
        // The holdout is never served.
        #expect(!lines.contains { $0["arm"] as? String == "holdout" && ($0["event"] as? String == "impression" || $0["event"] as? String == "click") })
        // Every event is in the window, after its user's assignment.
        #expect(lines.allSatisfy { (($0["ts"] as? NSNumber)?.int64Value ?? 0) >= 20_000 * 86_400 && (($0["ts"] as? NSNumber)?.int64Value ?? 0) < 20_021 * 86_400 })
        // The truth: segment 1's expected rate nearly doubles (the few users whose probability reaches the 0.95 cap
        // lose a little), segment 0's does not move.
        for t in out.truth {
            if t.segment == 1 { #expect(t.expectedTreated / t.expectedBase > 1.95 && t.expectedTreated / t.expectedBase < 2) } else { #expect(t.expectedTreated == t.expectedBase) }
        }
        // 21 days × 2 channels of spend; the total is the budget within ±5%.
        #expect(out.spend.count == 42)
        let spent = out.spend.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["spend"] as? NSNumber }.reduce(0.0) { $0 + $1.doubleValue }
        #expect(abs(spent - 6300) < 0.05 * 6300)
        // A planted sample-ratio mismatch drops that share of the holdout's assignments.
        sim.dropHoldoutShare = 0.5
        let dropped = sim.simulate(members)
        #expect(abs(Double(dropped.droppedAssignments) - 1000) < 100)
    }
}
