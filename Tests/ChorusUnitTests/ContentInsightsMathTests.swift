import ChorusAnalytics
import ChorusModel
import XCTest

/// The content regression (Sources/ChorusAnalytics/ContentInsights.swift) on simulated binomial data with known
/// coefficients.
final class ContentInsightsMathTests: XCTestCase {
    /// n posts with three binary attributes (planted log effects `beta`), views uniform in 20...200, and each view
    /// turning into an engagement with probability base · exp(x·β) (binomial: the generator's mechanism).
    func simulate(n: Int, beta: [Double], base: Double, seed: UInt64) -> [PoissonRegression.Row] {
        var g = SplitMix64(seed: seed)
        var rows: [PoissonRegression.Row] = []
        for _ in 0..<n {
            var cols: [Int32] = []
            var eta = 0.0
            for j in 0..<beta.count where g.unit() < 0.3 { cols.append(Int32(j + 1)); eta += beta[j] }
            let views = 20 + g.below(181)
            let p = base * PortableMath.exp(eta)
            var y = 0
            for _ in 0..<views where g.unit() < p { y += 1 }
            rows.append(.init(columns: cols, values: [Double](repeating: 1, count: cols.count), count: Double(y),
                              exposure: Double(views)))
        }
        return rows
    }

    func testRecoversPlantedCoefficients() {
        let beta = [0.35, -0.3, 0.2]
        let rows = simulate(n: 6000, beta: beta, base: 0.05, seed: 7)
        let fit = PoissonRegression.fit(rows, dimension: 4, lambda: 0.1)
        XCTAssertTrue(fit.converged)
        XCTAssertEqual(fit.beta[0], PortableMath.log(0.05), accuracy: 0.03)
        for j in 0..<3 { XCTAssertEqual(fit.beta[j + 1], beta[j], accuracy: 0.04, "coefficient \(j)") }
        // The gradient of the penalized objective is zero at the optimum: a nudge only makes it worse.
        let at = PoissonRegression.objective(rows, fit.beta, lambda: 0.1)
        for j in 0..<4 {
            var b = fit.beta; b[j] += 1e-3
            XCTAssertGreaterThan(PoissonRegression.objective(rows, b, lambda: 0.1), at)
        }
        // A large ridge shrinks every coefficient toward 0.
        let shrunk = PoissonRegression.fit(rows, dimension: 4, lambda: 1e6)
        for j in 1...3 { XCTAssertLessThan(abs(shrunk.beta[j]), abs(fit.beta[j])) }
    }

    func testWeightsActLikeRepeatedRows() {
        let rows = simulate(n: 300, beta: [0.5, -0.2], base: 0.1, seed: 3)
        var w = [Double](repeating: 1, count: rows.count)
        w[0] = 3; w[5] = 0
        var repeated = rows
        repeated.append(rows[0]); repeated.append(rows[0]); repeated.remove(at: 5)
        let a = PoissonRegression.fit(rows, dimension: 3, lambda: 1, weights: w)
        let b = PoissonRegression.fit(repeated, dimension: 3, lambda: 1)
        for j in 0..<3 { XCTAssertEqual(a.beta[j], b.beta[j], accuracy: 1e-7) }
    }

    /// The percentile-bootstrap 95% intervals cover the planted coefficients at about the nominal rate over
    /// repeated simulations (40 data sets × 3 coefficients; 95% of 120 is 114, binomial sd 2.4).
    func testBootstrapIntervalsCoverAtRoughlyTheNominalRate() {
        let beta = [0.3, -0.25, 0.15]
        var covered = 0, total = 0
        for rep in 0..<40 {
            let rows = simulate(n: 500, beta: beta, base: 0.05, seed: 1000 + UInt64(rep))
            let full = PoissonRegression.fit(rows, dimension: 4, lambda: 0.01)
            var draws: [[Double]] = []
            for b in 0..<100 {
                let w = PoissonRegression.resampleWeights(n: rows.count, seed: UInt64(rep), index: b)
                draws.append(PoissonRegression.fit(rows, dimension: 4, lambda: 0.01, weights: w, start: full.beta).beta)
            }
            for j in 0..<3 {
                let s = draws.map { $0[j + 1] }
                let lo = PoissonRegression.quantile(s, 0.025), hi = PoissonRegression.quantile(s, 0.975)
                total += 1
                if lo <= beta[j] && beta[j] <= hi { covered += 1 }
            }
        }
        let rate = Double(covered) / Double(total)
        XCTAssertGreaterThan(rate, 0.87, "coverage \(covered)/\(total)")
        XCTAssertLessThanOrEqual(rate, 1.0)
        XCTAssertLessThan(rate, 0.995, "intervals far too wide: \(covered)/\(total)")
    }

    func testResampleIsDeterministicAndSumsToN() {
        let a = PoissonRegression.resampleWeights(n: 100, seed: 5, index: 2)
        XCTAssertEqual(a, PoissonRegression.resampleWeights(n: 100, seed: 5, index: 2))
        XCTAssertNotEqual(a, PoissonRegression.resampleWeights(n: 100, seed: 5, index: 3))
        XCTAssertEqual(a.reduce(0, +), 100)
        XCTAssertEqual(PoissonRegression.quantile([3, 1, 2, 4], 0.5), 2.5)
    }

    func testSlotAndLengthBuckets() {
        // 2025-09-01T00:00:00Z is a Monday; +2 days 20:30 is Wednesday 20:00–20:59.
        let monday: Int64 = 1_756_684_800
        XCTAssertEqual(PostAttributes.slot(of: monday).day, 0)
        XCTAssertEqual(PostAttributes.slot(of: monday).hour, 0)
        let s = PostAttributes.slot(of: monday + 2 * 86400 + 20 * 3600 + 1800)
        XCTAssertEqual(s.day, 2); XCTAssertEqual(s.hour, 20)
        XCTAssertEqual(PostAttributes.slot(of: monday - 1).day, 6)  // Sunday 23:59:59
        XCTAssertEqual(PostAttributes.slot(of: monday - 1).hour, 23)
        XCTAssertEqual(PostAttributes.lengthBucket(nil), "none")
        XCTAssertEqual(PostAttributes.lengthBucket(79), "short")
        XCTAssertEqual(PostAttributes.lengthBucket(80), "medium")
        XCTAssertEqual(PostAttributes.lengthBucket(140), "long")
    }

    func post(_ i: Int, media: String, tags: [String] = [], length: Int? = 20, channel: String = "x") -> PostAttributes {
        PostAttributes(id: "c\(1000 + i)", channel: channel, topic: i % 2 == 0 ? "tech" : "food", hashtags: tags,
                       mediaType: media, hour: i % 24, day: i % 7, textLength: length, views: 10, engagements: 1)
    }

    func testDesignReferencesAndPooling() {
        var posts: [PostAttributes] = []
        for i in 0..<300 { posts.append(post(i, media: i % 3 == 0 ? "video" : "image", tags: i % 4 == 0 ? ["#A"] : [])) }
        for i in 300..<305 { posts.append(post(i, media: "live")) }  // too few: pooled with image
        posts.append(PostAttributes(id: "c0", channel: "x", topic: "tech", hashtags: [], mediaType: "video", hour: 1,
                                    day: 1, textLength: nil, views: 0, engagements: 0))  // no views: left out
        let d = ContentDesign.build(posts, topHashtags: 5, minPosts: 30)
        XCTAssertEqual(d.rows.count, 305)
        XCTAssertFalse(d.postIDs.contains("c0"))
        XCTAssertEqual(d.postIDs, d.postIDs.sorted())
        let media = d.features.filter { $0.group == "media_type" }
        XCTAssertEqual(media.map(\.level), ["video"])
        XCTAssertEqual(media.first?.reference, "image")
        XCTAssertEqual(d.features.filter { $0.group == "hashtag" }.map(\.level), ["#A"])
        XCTAssertTrue(d.features.filter { $0.group == "day" }.allSatisfy { $0.reference == "Monday" && $0.channel.isEmpty })
        XCTAssertTrue(d.features.filter { $0.group == "text_length" }.isEmpty, "one bucket only")
        XCTAssertTrue(d.features.filter { $0.group == "sentiment" || $0.group == "author_influence" }.isEmpty)
        // Every column of a row is a real feature, and rows are sorted by column.
        for r in d.rows { XCTAssertEqual(r.columns, r.columns.sorted()); XCTAssertTrue(r.columns.allSatisfy { $0 >= 1 && Int($0) < d.dimension }) }
    }

    /// End to end on posts simulated like the generator: the planted media and hashtag effects are recovered with
    /// intervals covering them, the words say so, and λ was chosen on the grid.
    func testRunOnSimulatedPosts() {
        var g = SplitMix64(seed: 11)
        var posts: [PostAttributes] = []
        let medias = ["image", "video", "text"], effect = ["image": 0.0, "video": 0.35, "text": -0.3]
        for i in 0..<4000 {
            let m = medias[g.below(3)]
            let tagged = g.unit() < 0.2
            let views = 30 + g.below(100)
            let pr = 0.04 * PortableMath.exp(effect[m]! + (tagged ? 0.25 : 0))
            var y = 0
            for _ in 0..<views where g.unit() < pr { y += 1 }
            posts.append(PostAttributes(id: "c\(i)", channel: "x", topic: "tech", hashtags: tagged ? ["#T"] : [],
                                        mediaType: m, hour: g.below(24), day: g.below(7), textLength: 10,
                                        views: Double(views), engagements: Double(y)))
        }
        let design = ContentDesign.build(posts, topHashtags: 5, minPosts: 30)
        let r = ContentInsights.run(design, lambda: 0.1, chooseLambda: false, bootstrap: 100, level: 0.95, seed: 1)
        XCTAssertEqual(r.grid.count, ContentInsights.lambdaGrid.count)
        XCTAssertEqual(r.lambda, 0.1)
        XCTAssertTrue(ContentInsights.lambdaGrid.contains(r.devLambda ?? -1))
        let chosen = ContentInsights.run(design, lambda: 0.1, chooseLambda: true, bootstrap: 0, level: 0.95, seed: 1)
        XCTAssertEqual(chosen.lambda, r.devLambda)
        func effectOf(_ group: String, _ level: String) -> ContentInsights.Effect? {
            r.effects.first { $0.feature.group == group && $0.feature.level == level }
        }
        for (g, l, planted) in [("media_type", "video", 0.35), ("media_type", "text", -0.3), ("hashtag", "#T", 0.25)] {
            guard let e = effectOf(g, l) else { return XCTFail("no \(g) \(l)") }
            XCTAssertLessThanOrEqual(e.low, planted, "\(l): \(e.words)")
            XCTAssertGreaterThanOrEqual(e.high, planted, "\(l): \(e.words)")
            XCTAssertEqual(e.estimate.sign, planted.sign)
        }
        XCTAssertTrue(effectOf("media_type", "video")!.words.hasPrefix("video posts: +"))
        XCTAssertTrue(effectOf("media_type", "video")!.words.hasSuffix("vs image"))
        let d = ContentInsights.drivers(r.effects, n: 3)
        XCTAssertEqual(d.positive.first?.feature.level, "video")
        XCTAssertEqual(d.negative.first?.feature.level, "text")
        // The same inputs give the same result, also with the resamples run concurrently.
        let again = ContentInsights.run(design, lambda: 0.1, chooseLambda: false, bootstrap: 100, level: 0.95, seed: 1) { n, body in
            DispatchQueue.concurrentPerform(iterations: n, execute: body)
        }
        XCTAssertEqual(r.effects.map(\.low), again.effects.map(\.low))
        XCTAssertEqual(r.effects.map(\.estimate), again.effects.map(\.estimate))
    }

    func testPercentWords() {
        XCTAssertEqual(ContentInsights.percent(PortableMath.log(1.38)), "+38%")
        XCTAssertEqual(ContentInsights.percent(PortableMath.log(0.8)), "−20%")
        XCTAssertEqual(ContentInsights.percent(0), "0%")
        let f = ContentDesign.Feature(group: "media_type", level: "video", reference: "image", channel: "")
        XCTAssertEqual(ContentInsights.describe(f, PortableMath.log(1.38), PortableMath.log(1.29), PortableMath.log(1.47)),
                       "video posts: +38% engagement rate [+29%, +47%] vs image")
    }
}
