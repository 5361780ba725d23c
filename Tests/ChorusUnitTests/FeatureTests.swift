import ChorusAnalytics
import ChorusData
import ChorusModel
import Testing

@Suite struct FeatureTests {
    let t0: Int64 = 1_756_684_800  // Monday 2025-09-01 00:00 UTC

    func catalog() -> FeatureCatalog {
        var c = FeatureCatalog()
        c.contents["c1"] = .init(topics: ["sports"], hashtags: ["#Goal"])
        c.contents["c2"] = .init(topics: ["music", "sports"], hashtags: ["#Live"])
        c.users["u1"] = .init(channel: "x", country: "US")
        c.users["u2"] = .init(channel: "weibo", country: "CN")
        return c
    }

    @Test func calendarHelpers() {
        #expect(FeatureMath.weekday(t0) == 0)  // Monday
        #expect(FeatureMath.weekday(t0 + 6 * 86400) == 6)  // Sunday
        #expect(FeatureMath.hour(t0 + 13 * 3600 + 59) == 13)
    }

    @Test func userFeaturesByHand() {
        let its = [
            InteractionRecord(id: "1", userId: "u1", contentId: "c1", kind: .view, channel: "x", ts: t0 + 3600),
            InteractionRecord(id: "2", userId: "u1", contentId: "c1", kind: .like, channel: "x", ts: t0 + 3700),
            InteractionRecord(id: "3", userId: "u1", contentId: "c2", kind: .view, channel: "x", ts: t0 + 86400 + 7200),
            InteractionRecord(id: "4", userId: "u1", contentId: "c2", kind: .share, channel: "instagram",
                              ts: t0 + 86400 + 7300),
            InteractionRecord(id: "5", userId: "u1", contentId: "zz", kind: .view, channel: "x", ts: t0 + 5 * 86400),
        ]
        let user = UserRecord(id: "u1", channel: "x", country: "US", language: "en", ageBand: "25-34")
        let f = FeatureMath.userFeatures(userId: "u1", user: user, interactions: its, followers: 3, following: 2,
                                         catalog: catalog(), asOf: t0 + 10 * 86400)
        #expect(f.interactions == 5)
        #expect(f.countsByType == ["view": 3, "like": 1, "comment": 0, "share": 1, "click": 0, "conversion": 0, "rating": 0])
        #expect(f.countsByChannel == ["x": 4, "instagram": 1])
        #expect(f.engagements == 2)
        #expect(f.engagementRate == 2.0 / 3.0)
        #expect(f.activeHours[1] == 2 && f.activeHours[2] == 2 && f.activeHours[0] == 1)
        #expect(f.weekdays == [2, 2, 0, 0, 0, 1, 0])
        #expect(f.firstTs == t0 + 3600 && f.lastTs == t0 + 5 * 86400)
        #expect(f.recencyDays == 5)
        #expect(f.activeDays == 3)
        #expect(f.frequency == 5.0 / 3.0)
        // sports: view c1 (1) + like c1 (2) + view c2 (1) + share c2 (4) = 8; music: 1 + 4 = 5.
        #expect(f.topTopics == [WeightedTerm(name: "sports", weight: 8), WeightedTerm(name: "music", weight: 5)])
        #expect(f.topHashtags == [WeightedTerm(name: "#Live", weight: 5), WeightedTerm(name: "#Goal", weight: 3)])
        #expect(f.followers == 3 && f.following == 2 && f.knownUser)
    }

    @Test func userWithoutInteractions() {
        let f = FeatureMath.userFeatures(userId: "u9", user: nil, interactions: [], followers: 1, following: 0,
                                         catalog: catalog(), asOf: t0)
        #expect(!f.knownUser && f.interactions == 0 && f.engagementRate == 0 && f.recencyDays == 0 && f.frequency == 0)
        #expect(f.activeHours == Array(repeating: 0, count: 24))
    }

    @Test func contentFeaturesByHand() {
        let its = [
            InteractionRecord(id: "1", userId: "u1", contentId: "c1", kind: .view, channel: "x", ts: t0),
            InteractionRecord(id: "2", userId: "u1", contentId: "c1", kind: .like, channel: "x", ts: t0),
            InteractionRecord(id: "3", userId: "u2", contentId: "c1", kind: .view, channel: "weibo", ts: t0),
            InteractionRecord(id: "4", userId: "u3", contentId: "c1", kind: .comment, channel: "x", ts: t0),
        ]
        let f = FeatureMath.contentFeatures(contentId: "c1", content: ContentRecord(id: "c1", authorId: "u2",
                                                                                    channel: "weibo"),
                                            interactions: its, catalog: catalog())
        #expect(f.impressions == 2 && f.engagements == 2 && f.engagementRate == 1)
        #expect(f.uniqueUsers == 3)
        #expect(f.audienceByChannel == ["x": 1, "weibo": 1, "unknown": 1])
        #expect(f.audienceByCountry == ["US": 1, "CN": 1, "unknown": 1])
    }

    @Test func summaryMergeIsAssociative() {
        let f1 = FeatureMath.userFeatures(userId: "u1", user: UserRecord(id: "u1", channel: "x"),
                                          interactions: [InteractionRecord(id: "1", userId: "u1", contentId: "c1",
                                                                           kind: .view, channel: "x", ts: t0)],
                                          followers: 0, following: 1, catalog: catalog(), asOf: t0)
        var a = GlobalSummary(), b = GlobalSummary(), all = GlobalSummary()
        a.add(f1); all.add(f1)
        a.addInterest(.view, catalog().contents["c1"]!); all.addInterest(.view, catalog().contents["c1"]!)
        b.add(f1); all.add(f1)
        b.addInterest(.view, catalog().contents["c1"]!); all.addInterest(.view, catalog().contents["c1"]!)
        var merged = GlobalSummary()
        merged.merge(a); merged.merge(b)
        #expect(merged == all)
        #expect(merged.report.users == 2 && merged.report.interactionsByChannel == ["x": 2])
    }

    @Test func topIsDeterministic() {
        let t = FeatureMath.top(["b": 2, "a": 2, "c": 3], 2)
        #expect(t == [WeightedTerm(name: "c", weight: 3), WeightedTerm(name: "a", weight: 2)])
    }
}
