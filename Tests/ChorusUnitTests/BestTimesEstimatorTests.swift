import ChorusAnalytics
import ChorusModel
import Foundation
import Testing

/// The estimator of the `best-times` job: slots of the week, shrinkage toward the profile, interval coverage on a
/// known process, the "no clear best time" rule on flat data, segments shrunk toward their channel, users' hours.
@Suite struct BestTimesEstimatorTests {
    /// A simulated channel: posts per slot, heavy-tailed views (5 + 200·u³, mean 55), per-post over-dispersion
    /// (log-normal, σ 0.3) and engagements ~ Binomial(views, base · exp(effect[slot]) · multiplier).
    static func simulate(seed: UInt64, postsPerSlot: (Int) -> Int, effect: (Int) -> Double, base: Double = 0.08)
        -> [BestTimes.Moments] {
        var g = SplitMix64(seed: seed)
        var m = [BestTimes.Moments](repeating: .init(), count: 168)
        for s in 0..<168 {
            for _ in 0..<postsPerSlot(s) {
                let u = g.unit()
                let views = 5 + Int(200 * u * u * u)
                let p = min(0.95, base * exp(effect(s)) * exp(0.3 * g.gaussian() - 0.045))
                var e = 0
                for _ in 0..<views where g.unit() < p { e += 1 }
                m[s].add(engagements: UInt64(e), exposure: UInt64(views))
            }
        }
        return m
    }

    /// The planted shape of the generator's weibo channel (day 2, hour 20), as a function of the slot.
    static func planted(_ s: Int) -> Double {
        let d = s / 24, h = s % 24
        let dist = Double(min(abs(h - 20), 24 - abs(h - 20)))
        return 0.5 * exp(-dist * dist / 8) + (d == 2 ? 0.25 : 0) + (d == 2 && h == 20 ? 0.3 : 0)
    }

    @Test func slotsAreDayAndHourFromMondayInUTC() {
        let monday: Int64 = 1_756_684_800  // 2025-09-01T00:00:00Z
        #expect(BestTimes.dayHour(monday) == (0, 0))
        #expect(BestTimes.slot(monday + 2 * 86400 + 20 * 3600 + 59) == 2 * 24 + 20)
        #expect(BestTimes.slot(monday + 6 * 86400 + 23 * 3600 + 3599) == 167)
        #expect(BestTimes.slot(monday + 7 * 86400) == 0)
        #expect(BestTimes.dayHour(-1) == (2, 23))  // 1969-12-31T23:59:59Z, a Wednesday
        #expect(BestTimes.slotName(68) == "Wed 20:00")
        #expect(abs(BestTimes.normalQuantile(0.95) - 1.644853626951) < 1e-9)
    }

    @Test func thinSlotsAreShrunkTowardTheProfileAndWellMeasuredOnesKeepTheirValue() throws {
        // Flat week, 30 posts per slot, except one slot with a single, extremely engaging post.
        var m = Self.simulate(seed: 3, postsPerSlot: { _ in 30 }, effect: { _ in 0 })
        m[100] = .init()
        m[100].add(engagements: 60, exposure: 60)  // raw rate 1.0 against 0.08
        let fit = try #require(BestTimes.fit(m, perView: true))
        // min_posts 1: the rule alone, without the floor on posts, must not pick it.
        let week = BestTimes.week(fit, slots: m, level: 0.9, top: 3, minPosts: 1)
        #expect(!BestTimes.week(fit, slots: m, level: 0.9, top: 3).recommended.contains(100))
        let raw = log(60.5 / (60 + 0.5 / exp(fit.rate.mean)))
        // Pulled most of the way back to the channel, and not recommended.
        #expect(fit.rate.slot[100] - fit.rate.mean < 0.5 * (raw - fit.rate.mean))
        #expect(!week.recommended.contains(100))
        // A real effect on a well-measured slot (300 posts) is kept close to its raw value.
        let big = Self.simulate(seed: 4, postsPerSlot: { $0 == 50 ? 300 : 30 }, effect: { $0 == 50 ? 0.7 : 0 })
        let f2 = try #require(BestTimes.fit(big, perView: true))
        let raw50 = try #require(f2.rate.raw[50])
        #expect(abs(f2.rate.slot[50] - raw50) < 0.1, "shrunk \(f2.rate.slot[50]) vs raw \(raw50)")
        #expect(BestTimes.week(f2, slots: big, level: 0.9, top: 3).recommended.first == 50)
    }

    @Test func shrinkWithNoSpreadGivesThePriorAndWithSpreadKeepsTheData() {
        // Deviations the size of their noise: τ² = 0, every posterior is its prior mean.
        let y: [Double?] = [0.1, -0.1, 0.05, -0.05, nil]
        let flat = BestTimes.shrink(y: y, s2: [1, 1, 1, 1, .infinity], mu: [0, 0, 0, 0, 0], w: [0, 0, 0, 0, 0])
        #expect(flat.tau2 == 0)
        #expect(flat.theta.allSatisfy { $0 == 0 })
        // Deviations far above their noise: τ² large, posteriors near the data, the missing one at the prior.
        let wide = BestTimes.shrink(y: [3, -3, 2, -2, nil], s2: [0.01, 0.01, 0.01, 0.01, .infinity], mu: [0, 0, 0, 0, 0],
                                    w: [0, 0, 0, 0, 0])
        #expect(wide.tau2 > 5)
        #expect(abs(wide.theta[0] - 3) < 0.01 && abs(wide.theta[3] + 2) < 0.01)
        #expect(wide.theta[4] == 0 && abs(wide.v[4] - wide.tau2) < 1e-12)
    }

    /// On a known process (the generator's planted shape, 6–30 posts per slot), the 90% intervals cover the true
    /// expected engagements per post of close to 90% of the slots, over 10 simulated weeks, and the planted best slot
    /// is recommended in each.
    @Test func intervalsCoverTheTruthAtAboutTheirLevel() throws {
        var covered = 0, total = 0
        for seed in 1...10 {
            let posts: (Int) -> Int = { s in 6 + (s * 7 + Int(seed)) % 25 }
            let m = Self.simulate(seed: UInt64(seed), postsPerSlot: posts, effect: Self.planted)
            let fit = try #require(BestTimes.fit(m, perView: true))
            let week = BestTimes.week(fit, slots: m, level: 0.9, top: 3)
            for s in week.slots {
                // E[views] = 5 + 200/4; E[multiplier] = 1 (the −0.045 centres the log-normal).
                let truth = 55 * 0.08 * exp(Self.planted(s.slot))
                if s.lower <= truth && truth <= s.upper { covered += 1 }
                total += 1
            }
            #expect(week.recommended.contains(2 * 24 + 20), "seed \(seed): \(week.recommended)")
        }
        let coverage = Double(covered) / Double(total)
        #expect(coverage > 0.82 && coverage < 0.98, "coverage \(coverage)")
    }

    /// Flat data (no slot has an effect): the rule recommends nothing in at least 18 of 20 simulated weeks (its
    /// family-wise error is at most 10% by construction; shrinkage makes it smaller).
    @Test func flatDataGiveNoClearBestTime() throws {
        var claimed = 0
        for seed in 1...20 {
            let m = Self.simulate(seed: UInt64(100 + seed), postsPerSlot: { s in 5 + (s * 11 + seed) % 20 }, effect: { _ in 0 })
            let fit = try #require(BestTimes.fit(m, perView: true))
            if !BestTimes.week(fit, slots: m, level: 0.9, top: 3).recommended.isEmpty { claimed += 1 }
        }
        #expect(claimed <= 2, "\(claimed) of 20 flat weeks claimed a best time")
    }

    @Test func withoutViewsTheScoreIsEngagementsPerPost() throws {
        var m = [BestTimes.Moments](repeating: .init(), count: 168)
        for s in 0..<168 { for k in 0..<10 { m[s].add(engagements: UInt64(s == 7 ? 40 + k : 4 + k % 3), exposure: 1) } }
        let fit = try #require(BestTimes.fit(m, perView: false))
        let week = BestTimes.week(fit, slots: m, level: 0.9, top: 3)
        #expect(week.recommended == [7])
        // Shrunk toward its day + hour profile, but far above every other slot (5 per post).
        #expect(week.slots[7].score > 0.8 * 44.5 && week.slots[7].score < 44.5, "\(week.slots[7].score)")
        #expect(week.slots.filter { $0.slot != 7 }.allSatisfy { $0.score < 0.5 * week.slots[7].score })
        #expect(week.slots.allSatisfy { $0.viewsPerPost == 1 })
    }

    @Test func aThinSegmentFollowsItsChannelShapeAtItsOwnLevel() throws {
        let channel = Self.simulate(seed: 7, postsPerSlot: { _ in 25 }, effect: Self.planted)
        let parent = try #require(BestTimes.fit(channel, perView: true))
        // The segment: half the rate, the same shape, and thin (2 posts per slot).
        let seg = Self.simulate(seed: 8, postsPerSlot: { _ in 2 }, effect: Self.planted, base: 0.04)
        let fit = try #require(BestTimes.fit(seg, perView: true, parent: parent))
        #expect(abs((fit.rate.mean - parent.rate.mean) - log(0.5)) < 0.15)
        // Its best slot is the channel's.
        let week = BestTimes.week(fit, slots: seg, level: 0.9, top: 3)
        let best = week.slots.max { $0.logScore < $1.logScore }!.slot
        #expect(best == 2 * 24 + 20)
    }

    @Test func moments() {
        var a = BestTimes.Moments(), b = BestTimes.Moments()
        a.add(engagements: 3, exposure: 10)
        b.add(engagements: 1, exposure: 4)
        b.addEmpty(2)
        var ab = a; ab.merge(b)
        var ba = b; ba.merge(a)
        #expect(ab == ba)
        #expect(ab == BestTimes.Moments(n: 4, e: 4, x: 14, ee: 10, xx: 116, ex: 34))
    }

    @Test func usersBestHoursAreTheirOwnWhenTheyEngageAndTheChannelsOtherwise() {
        var share = [Double](repeating: 0.5 / 21, count: 24)
        share[18] = 0.2; share[19] = 0.15; share[20] = 0.15
        var inter = [UInt32](repeating: 0, count: 24), eng = [UInt32](repeating: 0, count: 24)
        let none = BestTimes.userHours(interactions: inter, engagements: eng, channelShare: share)
        #expect(none.active.isEmpty && none.best == [18, 19, 20])
        inter[7] = 9; inter[8] = 4; inter[22] = 2; eng[7] = 6; eng[8] = 3
        let own = BestTimes.userHours(interactions: inter, engagements: eng, channelShare: share)
        #expect(own.active == [7, 8, 22])
        #expect(own.best.first == 7)
        #expect(own.bestShare[0] > share[18])
    }
}
