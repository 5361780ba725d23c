import ChorusData
import ChorusModel
import Foundation
import Testing

/// The campaign brief: the example parses, YAML and JSON give the same brief, and bad briefs are refused with
/// the field, the reason and what to do.
@Suite struct CampaignBriefTests {
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/examples/campaign-brief.yaml")

    func parse(_ yaml: String, source: String = "brief.yaml") throws -> CampaignBrief {
        try CampaignBriefFile.parse(Data(yaml.utf8), source: source)
    }

    func problems(_ yaml: String) -> String {
        do { _ = try parse(yaml); return "" } catch let e as ChorusError {
            #expect(e.code == .invalidInput)
            return e.message
        } catch { return "\(error)" }
    }

    static let minimal = """
        name: t
        objective: engagement
        budget: 1000
        window: {start: 2026-03-01, end: 2026-03-07}
        channels: [x]
        """

    @Test func theExampleParses() throws {
        let b = try CampaignBriefFile.parse(try Data(contentsOf: Self.example), source: "campaign-brief.yaml")
        #expect(b.name == "Winter launch")
        #expect(b.objective == .conversions && b.kpi == "conversions")
        #expect(b.budget == 50000 && b.currency == "USD")
        #expect(b.days == 21)
        #expect(b.channels == ["weibo", "tiktok", "instagram", "x", "wechat"])
        #expect(b.constraints.spend["tiktok"] == .init(min: 5000, max: 20000))
        #expect(b.constraints.spend["wechat"] == .init(min: nil, max: 8000))
        #expect(b.constraints.frequencyCap == .init(impressions: 3, days: 7))
        #expect(b.constraints.watch == ["brand:nova"])
        #expect(b.measurement.holdoutShare == nil && b.measurement.power == 0.8)
        #expect(b.problems().isEmpty)
    }

    @Test func defaultsAndJSON() throws {
        let y = try parse(Self.minimal)
        #expect(y.kpi == "engagements" && y.currency == "USD" && y.content.pool == "recommend" && y.content.perSegment == 5)
        let j = try CampaignBriefFile.parse(Data("""
            {"name": "t", "objective": "engagement", "budget": 1000,
             "window": {"start": "2026-03-01", "end": "2026-03-07"}, "channels": ["x"]}
            """.utf8), source: "brief.json")
        #expect(j == y)
        // The canonical JSON the job receives decodes to the same brief.
        let round = try JSONDecoder().decode(CampaignBrief.self, from: try JSONEncoder().encode(y))
        #expect(round == y)
    }

    @Test func badBriefsSayWhatIsWrongAndWhatToDo() {
        // Missing essentials, all reported at once.
        let m = problems("name: t\n")
        for f in ["objective: missing", "budget.total: missing", "window.start: missing", "window.end: missing", "channels: missing"] {
            #expect(m.contains(f), "\(m)")
        }
        #expect(m.contains("5 problems"), "\(m)")
        // Wrong values.
        var bad = Self.minimal.replacingOccurrences(of: "objective: engagement", with: "objective: sales")
        #expect(problems(bad).contains("objective: 'sales' is not an objective (use awareness, engagement or conversions)"))
        bad = Self.minimal + "\nkpi: revenue"
        #expect(problems(bad).contains("kpi: 'revenue' does not measure engagement (use one of: engagements, clicks)"))
        bad = Self.minimal.replacingOccurrences(of: "budget: 1000", with: "budget: lots")
        #expect(problems(bad).contains("budget: 'lots' is not a number"))
        bad = Self.minimal.replacingOccurrences(of: "budget: 1000", with: "budget: -5")
        #expect(problems(bad).contains("budget.total: -5.0 is not a positive amount"))
        bad = Self.minimal.replacingOccurrences(of: "end: 2026-03-07", with: "end: 2026-02-30")
        #expect(problems(bad).contains("window.end: '2026-02-30' is not a date (write it as YYYY-MM-DD)"))
        bad = Self.minimal.replacingOccurrences(of: "end: 2026-03-07", with: "end: 2026-02-01")
        #expect(problems(bad).contains("window.end: 2026-02-01 is before the start 2026-03-01"))
        // A typo gets a suggestion; limits on a channel the brief does not use are refused.
        bad = Self.minimal + "\nbudgte: 3"
        #expect(problems(bad).contains("budgte: unknown field (did you mean 'budget'?)"), "\(problems(bad))")
        bad = Self.minimal + "\nconstraints:\n  spend:\n    tiktok: {min: 10, max: 5}\n  posts_per_day: 0\n  exclude: [segment:x]\n  watch: [nova]"
        let p = problems(bad)
        #expect(p.contains("constraints.spend.tiktok: 'tiktok' is not one of the brief's channels"), "\(p)")
        #expect(p.contains("constraints.spend.tiktok: min 10.0 is above max 5.0"), "\(p)")
        #expect(p.contains("constraints.posts_per_day: 0 is outside 1...96"), "\(p)")
        #expect(p.contains("constraints.exclude[0]: 'segment:x' is not an audience"), "\(p)")
        #expect(p.contains("constraints.watch[0]: 'nova' is not a key"), "\(p)")
        bad = Self.minimal + "\nconstraints:\n  spend:\n    x: {min: 2000}"
        #expect(problems(bad).contains("the channel minimums add up to 2000.0, more than the budget 1000.0"))
        bad = Self.minimal + "\nmeasurement: {holdout_share: 0.9, power: 2}"
        #expect(problems(bad).contains("measurement.holdout_share: 0.9 is outside (0, 0.5]"))
        #expect(problems(bad).contains("measurement.power: 2.0 is outside (0.5, 1)"))
        bad = Self.minimal + "\ncontent: {pool: ids}"
        #expect(problems(bad).contains("content.ids: the pool is 'ids' but no id is given"))
        // Syntax errors name the line.
        #expect(problems("name: t\n  bad indent: [").contains("line"))
        #expect(problems("").contains("the brief is empty or not a mapping"))
    }

    @Test func datesRoundTrip() {
        for s in ["1970-01-01", "2000-02-29", "2026-12-31", "2024-03-01"] {
            #expect(CampaignBrief.date(dayNumber: CampaignBrief.dayNumber(s)!) == s)
        }
        #expect(CampaignBrief.dayNumber("2026-12-02") == 20_789)
        #expect(CampaignBrief.dayNumber("2023-02-29") == nil)
    }
}
