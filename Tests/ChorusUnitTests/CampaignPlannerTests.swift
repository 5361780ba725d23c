import ChorusAnalytics
import ChorusModel
import Foundation
import Testing

/// The pure decisions of a campaign plan: audience choice, content order, the calendar's rules, the even split.
@Suite struct CampaignPlannerTests {
    typealias P = CampaignPlanner

    @Test func audienceIsChosenByExpectedOutcomePerUserWithReasons() {
        let segs = [
            P.SegmentInput(id: 0, name: "a", users: 1000, propensity: 0.10, engagementPerUser: 10),
            P.SegmentInput(id: 1, name: "b", users: 5000, propensity: 0.02, engagementPerUser: 10),
            P.SegmentInput(id: 2, name: "c", users: 800, propensity: 0.08, engagementPerUser: 10),
            P.SegmentInput(id: 3, name: "d", users: 20, propensity: 0.5, engagementPerUser: 10),
            P.SegmentInput(id: 4, name: "e", users: 900, propensity: 0.2, engagementPerUser: 10),
        ]
        let (rows, notes) = P.chooseAudience(segs, objective: .conversions, target: [], excluded: [4], minUsers: 50)
        #expect(notes.isEmpty)
        let chosen = Set(rows.filter(\.chosen).map(\.segment))
        #expect(chosen == [0, 2])  // 0.08 ≥ half of 0.10; 0.02 is not; 3 is too small; 4 is excluded
        #expect(rows.first { $0.segment == 4 }!.reason.contains("excluded by the brief"))
        #expect(rows.first { $0.segment == 3 }!.reason.contains("fewer than 50"))
        #expect(rows.first { $0.segment == 1 }!.reason.contains("below half"))
        #expect(abs(rows.first { $0.segment == 0 }!.expectedOutcome - 100) < 1e-9)
        // Named targets win; awareness reaches every allowed segment.
        #expect(Set(P.chooseAudience(segs, objective: .conversions, target: [1], excluded: [], minUsers: 50).choices.filter(\.chosen).map(\.segment)) == [1])
        #expect(Set(P.chooseAudience(segs, objective: .awareness, target: [], excluded: [4], minUsers: 50).choices.filter(\.chosen).map(\.segment)) == [0, 1, 2])
        // Without propensity the history's conversions stand in, and the plan says so.
        let bare = segs.map { var s = $0; s.propensity = nil; s.conversionsPerUser = 0.01; return s }
        #expect(P.chooseAudience(bare, objective: .conversions, target: [], excluded: [], minUsers: 1).notes.contains { $0.contains("propensity") })
    }

    @Test func contentIsRankedByALSTimesDriversAndFlaggedItemsComeLast() {
        let items = [
            P.ContentCandidate(id: "c1", channel: "x", mediaType: "video", topics: ["tech"], hashtags: []),
            P.ContentCandidate(id: "c2", channel: "x", mediaType: "image", topics: ["tech"], hashtags: ["#Sale"]),
            P.ContentCandidate(id: "c3", channel: "x", mediaType: "image", topics: ["food"], hashtags: []),
            P.ContentCandidate(id: "c4", channel: "x", mediaType: "image", topics: ["tech"], hashtags: []),
        ]
        let als: [String: Double] = ["c1": 0.5, "c2": 0.9, "c3": 0.6]
        let picks = P.pickContent(items, alsScore: { als[$0] }, alsAvailable: true,
                                  drivers: [.init(attribute: "media_type=video", multiplier: 2)],
                                  negativeKeys: ["hashtag:sale": "negative alert at 2025-09-01T00:00:00Z"], n: 4)
        #expect(picks.map(\.contentId) == ["c1", "c3", "c4", "c2"])  // 1.0, 0.6, unknown to ALS, then the flagged one
        #expect(picks[0].reason.contains("media_type=video +100%"))
        #expect(picks[2].reason.contains("not in the ALS model"))
        #expect(picks[3].flags == ["hashtag:sale: negative alert at 2025-09-01T00:00:00Z"])
        // Without a model the drivers alone order them.
        let plain = P.pickContent(items, alsScore: { _ in nil }, alsAvailable: false,
                                  drivers: [.init(attribute: "topic=food", multiplier: 3)], negativeKeys: [:], n: 2)
        #expect(plain.map(\.contentId) == ["c3", "c1"])
    }

    @Test func theCalendarKeepsEveryRule() throws {
        // Two segments on two channels, every hour of the week scored (noon best), 28 days.
        func ranking(_ bias: Int) -> P.SlotRanking {
            P.SlotRanking(slots: (0..<168).map { (slot: $0, score: 10 - Double(abs($0 % 24 - 12 - bias)) / 3) }, source: "test")
        }
        let streams = [
            P.Stream(segment: 1, channel: "x", ranking: ranking(0), content: ["a", "b", "c"], weight: 3),
            P.Stream(segment: 1, channel: "weibo", ranking: ranking(1), content: ["d"], weight: 2),
            P.Stream(segment: 2, channel: "x", ranking: ranking(-1), content: ["e", "f"], weight: 2),
            P.Stream(segment: 2, channel: "weibo", ranking: ranking(2), content: ["g"], weight: 1),
        ]
        let start = try #require(CampaignBrief.dayNumber("2026-01-05"))  // a Monday
        let rules = P.ScheduleRules(postsPerDay: 3, postsPerChannelPerDay: 2, minSpacingHours: 3, frequencyCap: (impressions: 4, days: 7))
        let (posts, skipped) = P.schedule(streams: streams, startDay: start, days: 28, rules: rules)
        #expect(!posts.isEmpty && !skipped.isEmpty)
        #expect(posts == posts.sorted { $0.at < $1.at || ($0.at == $1.at && $0.channel <= $1.channel) })
        let byDay = Dictionary(grouping: posts, by: \.date)
        for (_, ps) in byDay {
            #expect(ps.count <= 3)
            for (_, onChannel) in Dictionary(grouping: ps, by: \.channel) {
                #expect(onChannel.count <= 2)
                let hours = onChannel.map(\.hour).sorted()
                for (a, b) in zip(hours, hours.dropFirst()) { #expect(b - a >= 3) }
            }
        }
        for seg in [1, 2] {
            let days = posts.filter { $0.segment == seg }.map { Int($0.at / 86_400) }
            for w in (start - 6)...(start + 27) { #expect(days.filter { $0 >= w && $0 < w + 7 }.count <= 4, "segment \(seg) window \(w)") }
        }
        #expect(posts.allSatisfy { $0.at >= Int64(start) * 86_400 && $0.at < Int64(start + 28) * 86_400 })
        // Content cycles in calendar order.
        #expect(posts.filter { $0.segment == 1 && $0.channel == "x" }.prefix(3).map(\.contentId) == ["a", "b", "c"])
        // The same input, the same calendar.
        #expect(P.schedule(streams: streams, startDay: start, days: 28, rules: rules).posts == posts)
    }
}
