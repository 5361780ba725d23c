import ChorusAnalytics
import ChorusModel
import Testing

/// Alerts (rolling baseline, sensitivity, cooldown, "why" terms) and complaint themes.
@Suite struct SentimentInsightsTests {
    /// A steady brand series with one planted spike of negative comments about a battery.
    static func plantedSeries() -> (hourly: [Int64: SentimentBucket], texts: [Int64: [String]]) {
        var rng = SplitMix64(seed: 3)
        var hourly: [Int64: SentimentBucket] = [:]
        var texts: [Int64: [String]] = [:]
        let normal = ["love the new camera", "shipping was quick", "great screen", "nice colours", "the app is fine",
                      "decent price", "good support", "works well for me"]
        for h in Int64(1000)..<Int64(1100) {
            var b = SentimentBucket()
            var ts: [String] = []
            let base = 20 + rng.below(8)
            for _ in 0..<base {
                let t = normal[rng.below(normal.count)]
                ts.append(t)
                b.add(label: rng.below(10) < 2 ? 0 : 2, score: 0.5)
            }
            // The planted incident: hours 1060-1062 carry a burst of angry battery comments.
            if (1060...1062).contains(h) {
                for i in 0..<60 {
                    ts.append(["battery exploded while charging", "battery overheats and burns", "my battery died and overheats"][i % 3])
                    b.add(label: 0, score: -0.9)
                }
            }
            hourly[h] = b
            texts[h] = ts
        }
        return (hourly, texts)
    }

    @Test func aPlantedSpikeFiresOnceWithItsCooldownAndTheRightWhyTerms() {
        let (hourly, texts) = Self.plantedSeries()
        let alerts = AlertDetector(.init(window: 24, sensitivity: 3, minCount: 20, cooldown: 6)).detect(hourly)
        let spikes = alerts.filter { $0.kind == .volumeSpike }, dips = alerts.filter { $0.kind == .sentimentDip }
        // Three hot hours in a row, but the cooldown keeps it to one alert of each kind, at the first hour.
        #expect(spikes.map(\.hour) == [1060], "\(alerts)")
        #expect(dips.map(\.hour) == [1060], "\(alerts)")
        #expect(alerts.count == 2)
        // Without the cooldown the next hot hours alert too.
        let noCooldown = AlertDetector(.init(window: 24, sensitivity: 3, minCount: 20, cooldown: 0)).detect(hourly)
        #expect(noCooldown.filter { $0.kind == .volumeSpike }.count >= 2)
        // Lower sensitivity (a higher multiplier) silences it.
        #expect(AlertDetector(.init(sensitivity: 40)).detect(hourly).isEmpty)
        // Why: the window's terms against the 24 hours before it.
        var window: [String: Int] = [:], baseline: [String: Int] = [:]
        for t in texts[1060]! { for w in SentimentTerms.terms(t) { window[w, default: 0] += 1 } }
        for h in Int64(1036)..<1060 { for t in texts[h]! { for w in SentimentTerms.terms(t) { baseline[w, default: 0] += 1 } } }
        let top = TermContrast.top(window: window, baseline: baseline, k: 3).map(\.term)
        #expect(top.first == "battery", "\(top)")
        #expect(Set(top).isSubset(of: ["battery", "overheats", "exploded", "charging", "burns", "died"]), "\(top)")
    }

    @Test func aQuietSeriesNeverAlerts() {
        var hourly: [Int64: SentimentBucket] = [:]
        for h in Int64(0)..<200 {
            var b = SentimentBucket()
            for i in 0..<(h % 3 == 0 ? 2 : 1) { b.add(label: i % 3, score: 0) }
            hourly[h] = b
        }
        #expect(AlertDetector().detect(hourly).isEmpty)
        #expect(AlertDetector().detect([:]).isEmpty)
    }

    @Test func termsDropStopWordsAndUseChineseBigrams() {
        #expect(SentimentTerms.terms("The battery is not what I wanted #fail") == ["battery", "wanted", "#fail"])
        #expect(SentimentTerms.terms("质量太差") == ["质量", "量太", "太差"])
    }

    @Test func complaintThemesSeparateRecurringProblems() {
        let texts = (0..<12).map { ["delivery was late again \($0 % 3)", "late delivery, courier lost it", "the delivery took weeks"][$0 % 3] }
            + (0..<9).map { ["refund never arrived", "still waiting for my refund", "refund request ignored"][$0 % 3] }
            + (0..<6).map { ["app crashes on login", "the app crashes constantly"][$0 % 2] }
        let themes = ThemeClustering.cluster(texts.map(SentimentTerms.terms), k: 3)
        #expect(themes.count == 3)
        #expect(themes.map(\.size) == [12, 9, 6], "\(themes)")
        #expect(themes[0].terms.contains("delivery") && themes[1].terms.contains("refund") && themes[2].terms.contains("app"),
                "\(themes.map(\.terms))")
        #expect(themes[1].examples.allSatisfy { texts[$0].contains("refund") })
        // Deterministic.
        #expect(ThemeClustering.cluster(texts.map(SentimentTerms.terms), k: 3) == themes)
    }

    @Test func incidentsGroupAlertsThatShareTheirComments() {
        func sketch(_ ids: Range<Int>, _ prefix: String = "c") -> MinHashSketch {
            var s = MinHashSketch()
            for i in ids { s.add("\(prefix)\(i)") }
            return s
        }
        // A burst of 60 comments seen as topic (60 + 15 ordinary), brand (the 60) and hashtag (40 of them); an
        // unrelated alert in the same hour; and the same burst's ids a day later (not the same incident).
        let alerts: [IncidentGrouping.Input] = [
            .init(hour: 100, sketch: { var s = sketch(0..<60); s.merge(sketch(0..<15, "x")); return s }()),
            .init(hour: 100, sketch: sketch(0..<60)),
            .init(hour: 100, sketch: sketch(200..<260)),
            .init(hour: 101, sketch: sketch(10..<50)),
            .init(hour: 124, sketch: sketch(0..<60)),
        ]
        #expect(IncidentGrouping.groups(alerts) == [[0, 1, 3], [2], [4]])
        // Sketches of parts merge into the sketch of the whole.
        var parts = sketch(0..<30)
        parts.merge(sketch(30..<60))
        #expect(parts.minima == sketch(0..<60).minima)
        #expect(sketch(0..<60).jaccard(sketch(0..<60)) == 1)
        #expect(sketch(0..<60).containment(sketch(500..<560)) < 0.2)
    }

    @Test func examplesAreDistinct() {
        let texts = ["Battery died", "battery  died", "BATTERY DIED", "screen cracked", "battery died!"]
        #expect(DistinctExamples.pick(texts, text: { $0 }, limit: 3) == ["Battery died", "screen cracked", "battery died!"])
        let docs = Array(repeating: ["battery", "exploded"], count: 5) + [["screen", "cracked"], ["battery", "hot"]]
        for theme in ThemeClustering.cluster(docs, k: 2) {
            let shown = theme.examples.map { docs[$0] }
            #expect(Set(shown).count == shown.count)
        }
    }
}
